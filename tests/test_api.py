"""The Python API: every command as a function, preset fields as keywords, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import pglab
from pglab import api
from pglab.errors import ConfigError
from tests.helpers import read_json


def test_train_takes_preset_fields_as_keywords_and_returns_its_run_dir(tmp_path: Path):
    run_dir = tmp_path / "run"
    summary = pglab.train(
        agent="reinforce", env="CartPole-v1", total_steps=512, run_dir=str(run_dir), num_envs=2, num_steps=64,
        lr=0.004, wandb_mode="disabled", progress=False,
    )  # fmt: skip
    assert summary["run_dir"] == str(run_dir) and summary["global_step"] == 512
    hyper = read_json(run_dir / "config.json")["hyperparameters"]
    assert (hyper["lr"], hyper["num_steps"], hyper["num_envs"]) == (0.004, 64, 2)
    assert read_json(run_dir / "summary.json")["run_dir"] == str(run_dir)


def test_an_unknown_keyword_names_its_close_matches(tmp_path: Path):
    with pytest.raises(ConfigError, match="did you mean lr"):
        pglab.train(agent="reinforce", total_steps=512, lrr=0.1, run_dir=str(tmp_path / "r"), wandb_mode="disabled")
    with pytest.raises(ConfigError, match="unknown option 'sample'; did you mean samples"):
        api.grads("CartPole-v1", "reinforce", sample=3)
    with pytest.raises(ConfigError, match="unknown option 'total_step'"):
        pglab.compare("reinforce", "CartPole-v1", out=tmp_path / "g", total_step=3)


def test_compare_report_and_evaluate_run_from_python(tmp_path: Path):
    out = tmp_path / "grid"
    result = pglab.compare(
        ["reinforce"], "CartPole-v1", [0], out=out, total_steps=512, overrides={"num_envs": 2, "num_steps": 128},
        wandb_mode="disabled", progress=False,
    )  # fmt: skip
    assert [o.status for o in result.outcomes] == ["finished"]
    report = api.report(out)
    assert len(report.runs) == 1 and (out / "report" / "report.md").is_file()
    run_dir = out / "runs" / result.outcomes[0].run
    sampled = api.evaluate(run_dir, episodes=2)
    greedy = api.evaluate(run_dir, episodes=2, greedy=True)
    assert Path(sampled["json"]).name == "eval-sampled.json" and Path(greedy["json"]).name == "eval-greedy.json"
    assert read_json(run_dir / "eval-sampled.json")["greedy"] is False
    assert read_json(run_dir / "eval-greedy.json")["greedy"] is True


def test_eval_of_one_episode_prints_no_interval_and_says_the_mode(tmp_path: Path, run_cli):
    run_dir = tmp_path / "run"
    pglab.train(agent="reinforce", total_steps=256, num_envs=2, run_dir=str(run_dir), wandb_mode="disabled",
                progress=False)  # fmt: skip
    code, out, err = run_cli("eval", str(run_dir), "--episodes", "1", "--greedy")
    assert code == 0, err
    assert "greedy actions: mean return" in out and "95% CI" not in out and "over 1 episode (no spread" in out
    code, out, _ = run_cli("eval", str(run_dir), "--episodes", "3")
    assert "sampled actions" in out and "95% CI" in out and "eval-sampled.json" in out
