"""Bad input of every kind (issue 11): one line on stderr and exit code 2, never a traceback or a hang;
and files other tools read are strict JSON.

README's "Bad input" table names the test behind each of its rows.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

import pglab
from tests.helpers import read_json, run_pglab_subprocess


def one_line_error(code: int, err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict_json(text: str) -> Any:
    """Parse as a strict parser would: NaN, Infinity and -Infinity are errors, not numbers."""
    return json.loads(text, parse_constant=_refuse_constant)


def strict_files(run_dir: Path) -> dict[str, list[Any]]:
    """Every .json and .jsonl file pglab wrote in ``run_dir`` (W&B's own files aside), parsed strictly."""
    parsed = {}
    for path in sorted(run_dir.rglob("*.json*")):
        if "wandb" in path.relative_to(run_dir).parts:
            continue
        text = path.read_text()
        lines = text.splitlines() if path.suffix == ".jsonl" else [text]
        parsed[path.name] = [strict_json(line) for line in lines if line]
    return parsed


def one_type_per_key(rows: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Key -> the JSON types it holds across ``rows`` (null aside; int and float are both 'number')."""
    kinds: dict[str, set[str]] = {}
    for row in rows:
        for key, value in row.items():
            if value is not None:
                kinds.setdefault(key, set()).add("number" if isinstance(value, (int, float)) else type(value).__name__)
    return {key: kind for key, kind in kinds.items() if len(kind) > 1}


@pytest.fixture(scope="module")
def bandit_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short run on a bandit whose arms all pay 0: every gradient estimate is 0, its SNR 0/0."""
    run_dir = tmp_path_factory.mktemp("bandit") / "run"
    pglab.train(
        agent="reinforce", env="pglab/CategoricalBandit-v0", env_kwargs={"rewards": [0.0, 0.0]}, total_steps=2048,
        grad_diagnostics_every=1, run_dir=str(run_dir), wandb_mode="disabled", progress=False,
    )  # fmt: skip
    return run_dir


def test_every_file_is_strict_json_with_one_type_per_key(bandit_run: Path, run_cli):
    """Issue 11.14: a zero-variance estimator (SNR undefined) and a 1-episode eval (spread undefined) write null."""
    code, out, err = run_cli("eval", str(bandit_run), "--episodes", "1")
    assert code == 0, err
    assert "over 1 episode (no spread or CI from one episode)" in out
    files = strict_files(bandit_run)
    assert {"config.json", "metrics.jsonl", "summary.json", "eval-sampled.json"} <= set(files)
    rows = files["metrics.jsonl"]
    assert all(row["grads/estimator_snr"] is None for row in rows)  # not the string "inf"
    assert one_type_per_key(rows) == {}
    evaluation = files["eval-sampled.json"][0]
    assert evaluation["std"] is None and evaluation["ci95"] == [None, None] and len(evaluation["returns"]) == 1


def test_eval_of_an_env_without_render_mode(bandit_run: Path, run_cli):
    """Issue 11.10: the bandit's constructor takes no render_mode: eval works, only --video is refused."""
    code, out, err = run_cli("eval", str(bandit_run), "--episodes", "3", "--json", str(bandit_run.parent / "e.json"))
    assert code == 0 and "over 3 episodes" in out, err
    code, _, err = run_cli("eval", str(bandit_run), "--video", str(bandit_run.parent / "v.mp4"))
    assert "cannot render (its constructor takes no render_mode); drop --video" in one_line_error(code, err)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("train", "--seed", "abc"), "error: Invalid value for '--seed': 'abc' is not a valid integer."),
        (("trian",), "error: No such command 'trian'. Did you mean 'train'?"),
        (("eval",), "error: Missing argument 'SOURCE'."),
    ],
)
def test_a_flag_click_rejects_gives_one_line(run_cli, args, expected):
    assert one_line_error(*run_cli(*args)[::2]).startswith(expected)


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("cartpole") / "run"
    pglab.train(
        agent="reinforce", env="CartPole-v1", total_steps=512, overrides={"num_envs": 2, "num_steps": 256},
        run_dir=str(run_dir), wandb_mode="disabled", progress=False,
    )  # fmt: skip
    return run_dir


def copy_run(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to)
    return to


def test_a_run_directory_never_makes_pglab_import_its_module(cartpole_run: Path, tmp_path: Path, run_cli, monkeypatch):
    """Issue 11.5: a weights-only-valid checkpoint naming helpers:CartPole-v1, a helpers.py beside it that
    would leave a marker file: eval, resume, grads, report and runs open the directory and run nothing."""
    run_dir = copy_run(cartpole_run, tmp_path / "run")
    marker = tmp_path / "pwned"
    (run_dir / "helpers.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
    config = read_json(run_dir / "config.json")
    (run_dir / "config.json").write_text(json.dumps({**config, "env": "helpers:CartPole-v1"}))
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    saved = json.loads(checkpoint["config_json"])
    checkpoint.update(env="helpers:CartPole-v1", config_json=json.dumps({**saved, "env": "helpers:CartPole-v1"}))
    torch.save(checkpoint, run_dir / "checkpoint.pt")

    # As reported: `python -m pglab eval .` from inside the directory, where helpers.py is importable.
    result = run_pglab_subprocess("eval", ".", "--episodes", "1", cwd=run_dir)
    line = one_line_error(result.returncode, result.stderr)
    assert "names environment 'helpers:CartPole-v1'" in line and "add --trust-env-module helpers" in line
    monkeypatch.syspath_prepend(str(run_dir))  # the same, in-process, for every other command
    for args in (("eval", str(run_dir)), ("train", "--resume", str(run_dir))):
        assert "add --trust-env-module helpers" in one_line_error(*run_cli(*args)[::2])
    for args in (
        ("grads", "--env", "CartPole-v1", "--agents", "reinforce", "--checkpoint", str(run_dir / "checkpoint.pt"),
         "--samples", "2", "--warmup", "0", "--batch-episodes", "2", "--reference", "large-batch",
         "--reference-samples", "2", "--out", str(tmp_path / "grads")),
        ("report", str(run_dir), "--out", str(tmp_path / "report")),
        ("runs", str(tmp_path)),
    ):  # fmt: skip
        code, _, err = run_cli(*args)
        assert code == 0, err
    assert not marker.exists() and "helpers" not in sys.modules

    # Named by the user, the module is imported (and here it only leaves its marker).
    try:
        code, _, err = run_cli("eval", str(run_dir), "--episodes", "1", "--trust-env-module", "helpers")
        assert code == 0, err
        assert marker.exists()
    finally:
        sys.modules.pop("helpers", None)


def edited_run(run_dir: Path, to: Path, **config: Any) -> Path:
    """A copy of ``run_dir`` whose config.json has ``config`` written over it."""
    copy_run(run_dir, to)
    (to / "config.json").write_text(json.dumps({**read_json(to / "config.json"), **config}))
    return to


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ({"seed": "abc"}, "config.json: seed must be int; got 'abc'"),
        ({"num_envs": 1e9}, "config.json: num_envs must be int or null; got 1000000000.0"),
        ({"seed": -1}, "--seed must be an integer from 0 to 4294967295; got -1"),
        ({"num_envs": 10**9}, "(num_envs 1,000,000,000 x num_steps 256"),  # issue 11.7: refused before any env is made
    ],
)
def test_an_edited_config_json_gives_one_line_on_resume(cartpole_run: Path, tmp_path: Path, run_cli, edit, expected):
    """Issue 11.10: config.json values of the wrong type or range stop --resume before anything is built."""
    run_dir = edited_run(cartpole_run, tmp_path / "run", **edit)
    assert expected in one_line_error(*run_cli("train", "--resume", str(run_dir), "--total-steps", "1024")[::2])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--seed", "-1"), "--seed must be an integer from 0 to 4294967295; got -1"),
        (("--seed", str(2**70)), f"--seed must be an integer from 0 to 4294967295; got {2**70}"),
        (("--set", "num_steps=1e30"), "--set num_steps='1e30': expected a value of type int"),
        (("--set", "ent_coef=inf"), "ent_coef=inf must be a finite number"),
        (("--agent", "gumbel-rao", "--set", "tau=nan"), "tau=nan must be a finite number"),
        (("--env", "A" * 5000), "an environment id of 5,000 characters"),
        (("--set", "hidden_sizes=10000000000"), "needs at least 76,"),  # issue 11.7: 76 TB, refused at once
        (("--num-envs", str(10**9)), "(num_envs 1,000,000,000 x num_steps 64"),
        (("--agent", "gumbel-rao", "--set", f"rao_samples={10**9}"), "the hidden sizes or rao_samples"),
        (("--env", "LunarLander-v3"), "LunarLander-v3 needs Box2D, which is not installed: pip install 'pglab[box2d]'"),
        (("--env", "CarRacing-v3"), "CarRacing-v3 needs Box2D, which is not installed: pip install 'pglab[box2d]'"),
        (("--env", "CartPol-v1"), "unknown environment 'CartPol-v1'; did you mean CartPole-v1, CartPole-v0?"),
    ],
)
def test_a_bad_training_value_gives_one_line(tmp_path: Path, run_cli, monkeypatch, args, expected):
    """Issue 11.10: values that used to end in a traceback from numpy, torch or Gymnasium.

    Box2D and jax are hidden, as on a machine without them: phys2d/CartPole-v1 (which needs jax) is no
    suggestion for CartPol-v1, and LunarLander names the extra that installs Box2D.
    """
    for module in ("Box2D", "jax"):
        monkeypatch.setitem(sys.modules, module, None)
    for module in [m for m in sys.modules if m.startswith("gymnasium.envs.box2d")]:  # made earlier with Box2D
        monkeypatch.delitem(sys.modules, module)
    run_dir = tmp_path / "r"
    code, _, err = run_cli("train", "--run-dir", str(run_dir), "--wandb-mode", "disabled", "--no-progress", *args)
    assert expected in one_line_error(code, err)
    assert not run_dir.exists()


def deflate_bomb(path: Path, megabytes: int = 16) -> Path:
    """A zip shaped like a torch checkpoint whose data.pkl inflates about 1000-fold."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("archive/data.pkl", "w") as entry:
            for _ in range(megabytes):
                entry.write(bytes(2**20))
        archive.writestr("archive/version", "3\n")
    return path


def test_a_compression_bomb_is_refused_before_torch_reads_it(cartpole_run: Path, tmp_path: Path, run_cli, monkeypatch):
    """Issue 11.6: refused from the zip's directory alone: torch.load is never called, so no memory is spent."""
    run_dir = copy_run(cartpole_run, tmp_path / "run")
    deflate_bomb(run_dir / "checkpoint.pt")
    assert (run_dir / "checkpoint.pt").stat().st_size < 100_000

    def no_load(*args, **kwargs):
        raise AssertionError("torch.load was reached")

    monkeypatch.setattr(torch, "load", no_load)
    for args in (("eval", str(run_dir)), ("train", "--resume", str(run_dir))):
        start = time.perf_counter()
        line = one_line_error(*run_cli(*args)[::2])
        assert "is a compression bomb: archive/data.pkl inflates" in line and "to 16,777,216; not loaded" in line
        assert time.perf_counter() - start < 5


def test_a_checkpoint_larger_than_memory_is_refused(cartpole_run: Path, run_cli, monkeypatch):
    monkeypatch.setattr("pglab.io.checkpoint.available_memory", lambda: 1000)
    line = one_line_error(*run_cli("eval", str(cartpole_run))[::2])
    assert "more than the 0.0 GB of memory available; not loaded" in line


def test_a_file_that_is_no_torch_archive_gives_one_line_and_no_warning(tmp_path: Path, run_cli):
    """Issue 11.10: a raw pickle (or /etc/passwd) never reaches torch.load, whose legacy reader would warn."""
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"agent": {}, "global_step": 0}))
    result = run_pglab_subprocess("eval", str(path))  # a real process: its stderr is all the user sees
    assert "is not a checkpoint pglab wrote" in one_line_error(result.returncode, result.stderr)
    path.write_bytes(b"root:x:0:0:root:/root:/bin/sh\n")
    assert "is not a checkpoint pglab wrote" in one_line_error(*run_cli("eval", str(path))[::2])


@pytest.mark.parametrize("line", ["[1, 2]", '{"global_step": "x"}', '"row"'])
def test_a_metrics_line_that_is_no_row_gives_one_line(cartpole_run: Path, tmp_path: Path, run_cli, line: str):
    """Issue 11.10: valid JSON that is no row stops resume and report, naming the line; nothing is rewritten."""
    run_dir = copy_run(cartpole_run, tmp_path / "run")
    with (run_dir / "metrics.jsonl").open("a") as metrics:
        metrics.write(line + "\n")
    before = (run_dir / "metrics.jsonl").read_text()
    for args in (("train", "--resume", str(run_dir), "--total-steps", "1024"), ("report", str(run_dir))):
        error = one_line_error(*run_cli(*args)[::2])
        assert "metrics.jsonl line 2 is not a metrics row" in error and "remove or repair that line" in error
    assert (run_dir / "metrics.jsonl").read_text() == before


def test_a_checkpoint_whose_policy_exceeds_memory_is_refused(cartpole_run: Path, tmp_path: Path, run_cli):
    """Issue 11.7: eval builds the policy its checkpoint describes only if it fits in memory."""
    run_dir = copy_run(cartpole_run, tmp_path / "run")
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    saved = json.loads(checkpoint["config_json"])
    saved["hyperparameters"]["hidden_sizes"] = [10**12]
    checkpoint["config_json"] = json.dumps(saved)
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    line = one_line_error(*run_cli("eval", str(run_dir))[::2])
    assert "the checkpoint's policy (hidden_sizes (1000000000000,)) needs" in line and "not loaded" in line


def test_every_row_of_readmes_bad_input_table_names_a_test_that_exists():
    """README's "Bad input, faults and hostile files" table: each row names the tests that back it."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    start = readme.index("### Bad input, faults and hostile files")
    rows = [line for line in readme[start : readme.index("\n## ", start)].splitlines() if line.startswith("| ")]
    assert len(rows) > 20
    for row in rows[2:]:  # the header and its rule aside
        names = re.findall(r"`(test_\w+\.py)?::(test_\w+)`", row)
        assert names, f"a row without a test: {row[:80]}"
        file = None
        for given_file, test in names:
            file = given_file or file  # `::name` is in the file named before it
            source = (Path(__file__).parent / file).read_text()
            assert re.search(rf"def {test}\(", source), f"{file}::{test} does not exist"


@pytest.mark.parametrize(
    ("name", "edit", "expected"),
    [
        ("config.json", {"seed": "abc"}, "config.json: seed must be int; got 'abc'"),
        ("summary.json", {"global_step": "a"}, "summary.json: global_step must be int; got 'a'"),
        ("summary.json", {"return_mean_last100": "z"}, "return_mean_last100 must be float or null; got 'z'"),
    ],
)
def test_an_edited_run_file_gives_one_line_in_report_and_runs(cartpole_run: Path, tmp_path: Path, run_cli, name,
                                                              edit, expected):  # fmt: skip
    """Issue 11.10: what report and runs read from a run's files is checked for its type first."""
    run_dir = copy_run(cartpole_run, tmp_path / "run")
    (run_dir / name).write_text(json.dumps({**read_json(run_dir / name), **edit}))
    for args in (("report", str(run_dir)), ("runs", str(run_dir))):
        assert expected in one_line_error(*run_cli(*args)[::2])



def test_a_checkpoint_whose_networks_no_longer_fit_gives_one_line(cartpole_run: Path, tmp_path: Path, run_cli):
    """A checkpoint from a pglab whose networks had other shapes (the MinAtar Q critic's head changed once):
    one line and exit 2 on resume, the run directory untouched."""
    run_dir = copy_run(cartpole_run, tmp_path / "run")
    checkpoint = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    policy = checkpoint["agent"]["policy"]
    name = next(iter(policy))
    policy[name] = torch.zeros(*policy[name].shape[:-1], policy[name].shape[-1] + 1)
    torch.save(checkpoint, run_dir / "checkpoint.pt")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    code, _, err = run_cli("train", "--resume", str(run_dir), "--total-steps", "100000", "--no-progress")
    line = one_line_error(code, err)
    assert "do not fit this agent" in line and "size mismatch" in line, line
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
