"""`pglab compare --sweep`: an equal tuning budget, end to end and its criteria on known curves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pglab.lab.tuning import PointScore, at_the_edge, choose, criterion_value, parse_sweep, sweep_points
from tests.helpers import read_json


def write_run(run: Path, rows: list[dict], **summary) -> Path:
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"agent": "a", "env": "E-v0", "seed": 0}))
    base = {"agent": "a", "env": "E-v0", "seed": 0, "status": "finished", "return_mean_last100": 25.0,
            "solved_at_step": None}  # fmt: skip
    (run / "summary.json").write_text(json.dumps({**base, **summary}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


def test_each_criterion_on_a_known_curve(tmp_path: Path):
    rows = [{"global_step": 1000, "charts/episodic_return": 10.0}, {"global_step": 2000},
            {"global_step": 2000, "charts/episodic_return": 30.0}]  # fmt: skip
    run = write_run(tmp_path / "run", rows, solved_at_step=2000)
    # held at 10 before step 1000, linear to 30 at 2000, held at 30 to the budget: 90000 / 4000 = 22.5
    assert criterion_value(run, "auc", 4000) == pytest.approx(22.5, abs=0.05)
    assert criterion_value(run, "final", 4000) == 25.0
    assert criterion_value(run, "steps-to-target", 4000) == 2000.0
    unsolved = write_run(tmp_path / "unsolved", rows)
    assert criterion_value(unsolved, "steps-to-target", 4000) == 4000.0  # never reached: the whole budget
    failed = write_run(tmp_path / "failed", rows, status="failed")
    assert criterion_value(failed, "auc", 4000) is None


def test_the_best_mean_is_chosen_and_fewer_steps_are_better():
    scores = [PointScore({"lr": str(lr)}, [m], m, m, m) for lr, m in ((1, 5.0), (2, 9.0), (3, 7.0))]
    assert choose(scores, "auc").point == {"lr": "2"}
    assert choose(scores, "steps-to-target").point == {"lr": "1"}
    scores.append(PointScore({"lr": "4"}, [], float("nan"), float("nan"), float("nan")))  # no finished run
    assert choose(scores, "final").point == {"lr": "2"}


def test_a_choice_at_the_edge_of_a_sweep_is_named():
    sweep = {"lr": ["1e-4", "1e-3", "1e-2"], "ent_coef": ["0", "0.01"]}
    chosen = {"E|a": {"lr": "1e-2", "ent_coef": "0"}, "E|b": {"lr": "1e-3", "ent_coef": "0.01"}}
    assert at_the_edge(sweep, chosen) == ["E / a: lr=1e-2"]  # two values have no inside to compare with


def test_sweep_points_are_the_product_of_the_sweeps():
    sweep = parse_sweep(["lr=1e-3,3e-3", "ent_coef=0,0.01"])
    assert sweep_points(sweep) == (
        {"lr": "1e-3", "ent_coef": "0"}, {"lr": "1e-3", "ent_coef": "0.01"},
        {"lr": "3e-3", "ent_coef": "0"}, {"lr": "3e-3", "ent_coef": "0.01"},
    )  # fmt: skip


def test_an_equal_tuning_budget_tunes_every_agent_alike_then_evaluates_each_choice(tmp_path: Path, run_cli):
    out = tmp_path / "sweep"
    args = ["compare", "--agents", "reinforce,reinforce-rloo", "--envs", "CartPole-v1", "--seeds", "0",
            "--tune-seeds", "7", "--sweep", "lr=1e-4,3e-2", "--criterion", "final", "--total-steps", "2048",
            "--workers", "2", "--out", str(out), "--wandb-mode", "disabled", "--no-progress"]  # fmt: skip
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stderr
    tuning = read_json(out / "tuning.json")
    for agent in ("reinforce", "reinforce-rloo"):
        finals = {lr: read_json(out / "tune" / "runs" / f"CartPole-v1__{agent}__7__lr={lr}" / "summary.json")[
            "return_mean_last100"] for lr in ("1e-4", "3e-2")}  # fmt: skip
        best = max(finals, key=finals.get)
        assert tuning["chosen"][f"CartPole-v1|{agent}"] == {"lr": best}
        assert [s["values"] for s in tuning["scores"][f"CartPole-v1|{agent}"]] == [[finals["1e-4"]], [finals["3e-2"]]]
        config = read_json(out / "eval" / "runs" / f"CartPole-v1__{agent}__0__lr={best}" / "config.json")
        assert config["seed"] == 0 and config["hyperparameters"]["lr"] == float(best)
        assert config["wandb_group"] == "sweep" and config["protocol"] == "matched"
    assert len(list((out / "eval" / "runs").iterdir())) == 2 and "chosen points:" in stdout
    assert "Caveat: 1 tuning seeds" in (out / "tuning.md").read_text()

    code, _, _ = run_cli("report", str(out))  # the comparison is the evaluation runs'; the tuning runs chose
    text = (out / "report" / "report.md").read_text()
    assert code == 0 and "2 finished runs of 2" in text and "## Equal tuning budget" in text

    code, _, _ = run_cli(*args)  # resumable: nothing runs again
    assert code == 0
    statuses = [*read_json(out / "tune" / "status.json").values(), *read_json(out / "eval" / "status.json").values()]
    assert {s["action"] for s in statuses} == {"skipped"}


def test_a_tie_goes_to_the_first_point_in_sweep_order_and_is_reported(tmp_path: Path):
    """Equal means: the tuning runs cannot tell the points apart; the first listed is chosen, whatever the
    spread, and tuning.json and tuning.md say it was a tie (a bold cell alone would read as a win)."""
    from pglab.lab.experiments import GridSpec
    from pglab.lab.tuning import SweepSpec, write_tuning

    def point(lr: str, values: list[float]) -> PointScore:
        mean = sum(values) / len(values)
        return PointScore({"lr": lr}, values, mean, min(values), max(values))

    scores = [point("1e-3", [400.0, 500.0]), point("3e-3", [500.0, 500.0]), point("1e-2", [450.0, 450.0])]
    assert scores[0].mean == scores[2].mean == 450.0
    assert choose(scores, "final").point == {"lr": "3e-3"}  # the best mean wins outright
    tied = [scores[0], scores[2]]
    assert choose(tied, "final").point == {"lr": "1e-3"}
    assert choose(tied[::-1], "final").point == {"lr": "1e-2"}  # the order of the sweep decides, not the spread
    assert choose(tied, "steps-to-target").point == {"lr": "1e-3"}

    spec = SweepSpec(GridSpec(agents=("a",), envs=("E-v0",), seeds=(0,), out=tmp_path), {"lr": ("1e-3", "1e-2")},
                     (100, 101), "final")  # fmt: skip
    write_tuning(spec, {"E-v0|a": tied}, {"E-v0|a": choose(tied, "final").point})
    assert read_json(tmp_path / "tuning.json")["ties"] == {"E-v0|a": [{"lr": "1e-3"}, {"lr": "1e-2"}]}
    text = (tmp_path / "tuning.md").read_text()
    assert "Tie: E-v0 / a has the same mean at lr=1e-3 and lr=1e-2" in text and "first in sweep order" in text
    write_tuning(spec, {"E-v0|a": scores[:2]}, {"E-v0|a": {"lr": "3e-3"}})
    assert read_json(tmp_path / "tuning.json")["ties"] == {} and "Tie:" not in (tmp_path / "tuning.md").read_text()


def test_an_interrupted_tuning_run_chooses_nothing_and_evaluates_nothing(tmp_path: Path, run_cli):
    """Choosing from a tuning run stopped short of its budget would compare the points on unequal budgets."""
    out = tmp_path / "sweep"
    code, _, stderr = run_cli("compare", "--agents", "reinforce", "--envs",
                              "tests.grid_envs:pglab-test/InterruptedOnSeed1-v0", "--seeds", "0", "--tune-seeds", "1",
                              "--sweep", "lr=1e-3", "--total-steps", "2048", "--set", "num_envs=1", "--out", str(out),
                              "--wandb-mode", "disabled", "--no-progress")  # fmt: skip
    assert code == 1
    assert stderr.strip().splitlines()[-1] == (
        f"1 of 1 runs were interrupted before their budget (see {out}/tune/status.json and {out}/eval/status.json); "
        "rerun the same command to continue them from their checkpoints; the tuned points are chosen once every "
        "tuning run has finished"
    )
    assert not (out / "tuning.json").exists() and not (out / "eval").exists()
