"""`pglab runs`: the table of runs below a folder, from real runs and from runs cut short."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.helpers import read_json
from tests.test_report import write_run


@pytest.fixture
def folder(tmp_path: Path, run_cli) -> Path:
    """A real finished run, a finished run that reached its target, a failed one, one killed before its
    summary (its last metrics row cut short), one resumed and under way, and an attempt moved aside."""
    root = tmp_path / "runs"
    code, _, err = run_cli(
        "train", "--env", "pglab/CategoricalBandit-v0", "--agent", "reinforce-value", "--seed", "4",
        "--total-steps", "512", "--run-dir", str(root / "real"), "--wandb-mode", "disabled", "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    rows = [{"global_step": s} for s in (100, 200)]
    write_run(root, "CartPole-v1", "beta", 1, 55.5, rows, solved_at_step=200, wall_s=3.25, target_return=50.0)
    write_run(root, "CartPole-v1", "alpha", 2, 1.0, rows, status="failed")
    killed = write_run(root, "Acrobot-v1", "alpha", 0, 0.0, rows)
    (killed / "summary.json").unlink()
    with (killed / "metrics.jsonl").open("a") as handle:
        handle.write('{"global_step": 300, "charts/epi')  # the row a SIGKILL cut short
    resumed = write_run(root, "Acrobot-v1", "alpha", 1, 0.0, rows)
    with (resumed / "metrics.jsonl").open("a") as handle:
        handle.write(json.dumps({"global_step": 400}) + "\n")  # past the old summary: under way again
    write_run(root / "grid" / "attempts", "CartPole-v1", "beta", 9, 0.0, rows)
    return root


def test_the_table_lists_every_run_with_its_state(folder: Path, run_cli):
    code, out, _ = run_cli("runs", str(folder))
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:4] == ["env", "agent", "seed", "status"] and header.rstrip().endswith("directory")
    assert len(lines) == 5  # the attempt moved aside is not a run
    cells = [line.split() for line in lines]
    assert [c[:3] for c in cells] == [
        ["Acrobot-v1", "alpha", "0"],
        ["Acrobot-v1", "alpha", "1"],
        ["CartPole-v1", "alpha", "2"],
        ["CartPole-v1", "beta", "1"],
        ["pglab/CategoricalBandit-v0", "reinforce-value", "4"],
    ]
    killed, resumed, failed, solved, real = lines
    assert "no summary" in killed and " 200 " in killed  # the last complete row, not the cut one
    assert "no summary" in resumed and " 400 " in resumed
    assert " failed " in failed
    assert solved.split()[3:9] == ["finished", "200", "55.5", "200", "3.2", str(folder / "CartPole-v1__beta__1")]
    assert " finished " in real and real.endswith(str(folder / "real"))


def test_json_and_csv_carry_the_summaries_numbers(folder: Path, run_cli):
    code, out_json, _ = run_cli("runs", str(folder), "--json")
    assert code == 0
    runs = {(r["env"], r["seed"]): r for r in json.loads(out_json)}
    real = read_json(folder / "real" / "summary.json")
    mine = runs["pglab/CategoricalBandit-v0", 4]
    assert mine["steps"] == real["global_step"] >= 512 and mine["status"] == "finished"
    assert mine["return_last100"] == real["return_mean_last100"] and mine["wall_s"] == real["wall_s"]
    assert runs["Acrobot-v1", 0]["return_last100"] is None and runs["Acrobot-v1", 0]["steps"] == 200

    code, out, _ = run_cli("runs", str(folder), "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["env"], int(r["seed"])) for r in rows] == [(r["env"], r["seed"]) for r in json.loads(out_json)]
    solved = next(r for r in rows if r["agent"] == "beta")
    assert solved["solved_at_step"] == "200" and solved["return_last100"] == "55.5" and solved["wall_s"] == "3.25"


def test_filters_keep_only_the_runs_they_name(folder: Path, run_cli):
    def listed(*flags: str) -> list[tuple[str, str, int]]:
        code, out, _ = run_cli("runs", str(folder), "--json", *flags)
        assert code == 0
        return [(r["env"], r["agent"], r["seed"]) for r in json.loads(out)]

    assert listed("--env", "Acrobot-v1") == [("Acrobot-v1", "alpha", 0), ("Acrobot-v1", "alpha", 1)]
    assert listed("--agent", "alpha", "--status", "failed") == [("CartPole-v1", "alpha", 2)]
    assert listed("--status", "finished", "--status", "no summary", "--env", "CartPole-v1") == [
        ("CartPole-v1", "beta", 1)
    ]
    assert listed("--agent", "nobody") == []
    code, out, err = run_cli("runs", str(folder), "--agent", "nobody")
    assert code == 0 and out == "" and "no run below" in err


def test_a_run_directory_lists_itself_and_bad_input_is_one_line(folder: Path, run_cli):
    code, out, _ = run_cli("runs", str(folder / "real"), "--json")
    assert code == 0 and [r["seed"] for r in json.loads(out)] == [4]
    code, _, err = run_cli("runs", str(folder / "missing"))
    assert code == 2 and err.count("\n") == 1 and "is not a directory" in err
    code, _, err = run_cli("runs", str(folder), "--json", "--csv")
    assert code == 2 and "--json and --csv" in err


def test_a_run_whose_lock_is_held_is_listed_in_use_and_not_once_released(folder: Path):
    from pglab.io.rundir import DirectoryLock
    from pglab.lab.runlist import run_info

    real = folder / "real"
    assert run_info(real).status == "finished"
    with DirectoryLock(real, "train"):
        assert run_info(real).status == "in use"
    assert run_info(real).status == "finished"
