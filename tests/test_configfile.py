"""Config files: `pglab train --config` and `pglab compare --config`, flags over the file, the saved file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_json, read_metrics

TRAIN_FILE = """
agent = "reinforce-rloo"
env = "CartPole-v1"
seed = 3
total-steps = 1024
num_envs = 4
wandb_mode = "disabled"
progress = false

[set]
lr = 0.002
ent_coef = 0.01
"""


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in rows]


def test_train_reads_the_file_flags_override_it_and_the_saved_file_starts_the_same_run(tmp_path: Path, run_cli):
    config = tmp_path / "run.toml"
    config.write_text(TRAIN_FILE)
    first, second = tmp_path / "first", tmp_path / "second"
    code, _, err = run_cli(
        "train", "--config", str(config), "--run-dir", str(first), "--set", "lr=0.005", "--seed", "4"
    )  # fmt: skip
    assert code == 0, err
    resolved = read_json(first / "config.json")
    assert (resolved["agent"], resolved["seed"], resolved["total_steps"]) == ("reinforce-rloo", 4, 1024)
    hyper = resolved["hyperparameters"]
    assert (hyper["lr"], hyper["ent_coef"], hyper["num_envs"]) == (0.005, 0.01, 4)  # the flag won, key by key

    code, _, err = run_cli("train", "--config", str(first / "config.toml"), "--run-dir", str(second))
    assert code == 0, err
    again = read_json(second / "config.json")
    assert {k: v for k, v in again.items() if k != "run_dir"} == {k: v for k, v in resolved.items() if k != "run_dir"}
    assert without_timing(read_metrics(second)) == without_timing(read_metrics(first))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("total_step = 10\n", "unknown key 'total_step' for pglab train; did you mean total_steps"),
        ("seed = \n", "not valid TOML"),
        ("set = 3\n", "set must be a table"),
        ("seed = [1, 2]\n", "seed must be a single value"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path: Path, run_cli, text: str, message: str):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    code, _, err = run_cli("train", "--config", str(config), "--run-dir", str(tmp_path / "r"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_a_missing_config_file_is_one_line(tmp_path: Path, run_cli):
    code, _, err = run_cli("compare", "--config", str(tmp_path / "nope.toml"))
    assert code == 2 and "no such file" in err


def test_compare_reads_the_file_and_saves_the_resolved_options(tmp_path: Path, run_cli):
    config = tmp_path / "grid.toml"
    out = tmp_path / "grid"
    config.write_text(
        f'agents = "reinforce"\nenvs = "CartPole-v1"\nseeds = "0"\ntotal_steps = 1024\nout = "{out}"\n'
        'wandb_mode = "disabled"\nprogress = false\n[set]\nnum_envs = 2\nlr = 0.01\n'
    )
    code, _, err = run_cli("compare", "--config", str(config), "--set", "lr=0.02")
    assert code == 0, err
    (run,) = (out / "runs").iterdir()
    hyper = read_json(run / "config.json")["hyperparameters"]
    assert (hyper["num_envs"], hyper["lr"]) == (2, 0.02)
    saved = (out / "compare.toml").read_text()
    assert 'agents = "reinforce"' in saved and 'lr = "0.02"' in saved and "num_envs = 2" in saved
