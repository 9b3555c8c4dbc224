"""MinAtar, Atari and Box2D through their extras: training, exact resume, and the line a missing extra gives."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import pglab
from pglab.core.plugins import load_agents
from pglab.io.checkpoint import load_checkpoint
from tests.helpers import read_json, read_metrics

TINY = {"wandb_mode": "disabled", "progress": False, "num_envs": 2, "overrides": {"num_steps": 16}}


def without_timing(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "charts/SPS"} for row in rows]


@pytest.mark.parametrize("agent", sorted(load_agents()))
def test_every_agent_trains_on_minatar_images(tmp_path: Path, agent: str):
    summary = pglab.train(agent=agent, env="MinAtar/Breakout-v1", total_steps=64, run_dir=str(tmp_path), **TINY)
    assert summary["status"] == "finished" and summary["global_step"] == 64
    config = read_json(tmp_path / "config.json")
    assert config["observation_space"] == "Box(False, True, (10, 10, 4), bool)"
    assert config["env_preprocessing"] is None
    weights = load_checkpoint(tmp_path / "checkpoint.pt")["agent"]["policy"]
    assert weights["net.0.net.0.weight"].shape == (16, 4, 3, 3)  # the MinAtar torso's convolution


@pytest.mark.parametrize(("env_id", "num_steps"), [("MinAtar/Breakout-v1", 16), ("ALE/Pong-v5", 4)])
def test_stopped_and_resumed_run_equals_the_uninterrupted_run(tmp_path: Path, env_id: str, num_steps: int):
    """The environments' own state (MinAtar's game objects, ALE's cloneState) continues the episodes in
    flight exactly: a run stopped half-way and resumed logs what the uninterrupted run logs."""
    common = {**TINY, "agent": "reinforce-value", "env": env_id, "seed": 4, "overrides": {"num_steps": num_steps}}
    total = 8 * 2 * num_steps  # 8 updates of 2 environments
    pglab.train(total_steps=total, run_dir=str(tmp_path / "whole"), **common)
    pglab.train(total_steps=total // 2, run_dir=str(tmp_path / "halves"), **common)
    assert load_checkpoint(tmp_path / "halves" / "checkpoint.pt")["env_state"] is not None
    pglab.resume(tmp_path / "halves", total_steps=total, progress=False)
    whole, halves = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "halves")
    assert len(whole) == 8 and without_timing(halves) == without_timing(whole)
    if env_id.startswith("MinAtar"):  # episodes end on both sides of the cut (a Pong game outlasts the run)
        assert any("charts/episodic_return" in row for row in whole[:4])
        assert any("charts/episodic_return" in row for row in whole[4:])
    final = [load_checkpoint(tmp_path / run / "checkpoint.pt")["agent"]["policy"] for run in ("whole", "halves")]
    assert all(torch.equal(final[0][key], final[1][key]) for key in final[0])


def test_a_checkpoint_from_when_a_wrapper_kept_the_episode_returns_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Until the collector kept the episode returns, Gymnasium's RecordEpisodeStatistics wrapped the vector
    env and held them: a checkpoint written then (its env state the wrapper's, no returns with the
    collector) resumes to the numbers of the uninterrupted run, the episodes in flight keeping their returns."""
    import gymnasium as gym

    from pglab.core import train as train_module
    from pglab.io.checkpoint import save_checkpoint

    common = {**TINY, "agent": "reinforce-value", "env": "MinAtar/Breakout-v1", "seed": 4}
    total = 8 * 2 * 16
    pglab.train(total_steps=total, run_dir=str(tmp_path / "whole"), **common)
    with monkeypatch.context() as patch:
        make = train_module.make_vector_env
        patch.setattr(
            train_module, "make_vector_env", lambda *a, **k: gym.wrappers.vector.RecordEpisodeStatistics(make(*a, **k))
        )
        pglab.train(total_steps=total // 2, run_dir=str(tmp_path / "halves"), **common)
    checkpoint = load_checkpoint(tmp_path / "halves" / "checkpoint.pt")
    assert "_stats_key" in checkpoint["env_state"]
    in_flight = checkpoint["collector"].pop("returns")
    assert in_flight.abs().sum() > 0  # an episode in flight has scored: its return must carry over
    save_checkpoint(tmp_path / "halves" / "checkpoint.pt", checkpoint)
    pglab.resume(tmp_path / "halves", total_steps=total, progress=False)
    whole, halves = read_metrics(tmp_path / "whole"), read_metrics(tmp_path / "halves")
    assert len(whole) == 8 and without_timing(halves) == without_timing(whole)


def test_atari_is_preprocessed_with_the_v5_settings_written_to_the_config(tmp_path: Path):
    pglab.train(env="ALE/Breakout-v5", total_steps=32, run_dir=str(tmp_path), **TINY)
    config = read_json(tmp_path / "config.json")
    assert config["observation_space"] == "Box(0, 255, (4, 84, 84), uint8)"
    settings = config["env_preprocessing"]
    assert settings["sticky_action_probability"] == 0.25  # Machado et al. 2018, on every emulator frame
    assert settings["env_kwargs"] == {"frameskip": 1, "repeat_action_probability": 0.0, "full_action_space": False}
    assert settings["atari_preprocessing"]["frame_skip"] == 4 and settings["frame_stack"] == 4


def test_lunar_lander_trains_with_reinforce_value(tmp_path: Path):
    summary = pglab.train(env="LunarLander-v3", total_steps=64, run_dir=str(tmp_path), **TINY)
    assert summary["status"] == "finished"


@pytest.mark.parametrize(
    ("env_id", "module", "extra"),
    [("MinAtar/Breakout-v1", "minatar", "minatar"), ("ALE/Pong-v5", "ale_py", "atari"),
     ("LunarLander-v3", "Box2D", "box2d")],
)  # fmt: skip
def test_a_missing_extra_gives_one_line_naming_what_to_install(
    tmp_path: Path, run_cli, monkeypatch: pytest.MonkeyPatch, env_id: str, module: str, extra: str
):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError, as if not installed
    code, _, err = run_cli("train", "--env", env_id, "--run-dir", str(tmp_path / "r"), "--wandb-mode", "disabled")
    assert code == 2
    assert err.strip() == f"error: {env_id} needs {module}, which is not installed: pip install 'pglab[{extra}]'"


def test_pglab_registers_minatar_exactly_as_minatar_does():
    """pglab registers MinAtar's ids itself (importing minatar costs over a second): the specs must be the ones
    minatar.gym.register_envs gives, so that an upgrade of minatar that changes them fails here."""
    import gymnasium as gym

    from pglab.core.environment import extra_env_ids

    ours = {env_id: gym.registry[env_id] for env_id in extra_env_ids()["minatar"]}
    for env_id in ours:
        del gym.registry[env_id]
    try:
        import minatar.gym

        minatar.gym.register_envs()
        theirs = {env_id: spec for env_id, spec in gym.registry.items() if env_id.startswith("MinAtar/")}
    finally:
        gym.registry.update(ours)
    assert len(ours) == 10 and ours == theirs


def test_list_shows_the_extras_environments_or_how_to_install_them(run_cli, monkeypatch: pytest.MonkeyPatch):
    code, out, _ = run_cli("list")
    assert code == 0
    ids = out.replace(",", " ").split()
    assert {"MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v0", "ALE/Pong-v5", "LunarLander-v3"} <= set(ids)
    from pglab.core import environment

    find = environment.importlib.util.find_spec
    monkeypatch.setattr(environment.importlib.util, "find_spec", lambda name: None if name == "ale_py" else find(name))
    code, out, _ = run_cli("list")
    assert "pglab[atari] is not installed: pip install 'pglab[atari]' for its environments" in out.splitlines()


def test_reinforce_value_learns_breakout_with_its_minatar_preset(tmp_path: Path):
    """The MinAtar preset (README "MinAtar"): a random policy scores about 0.4 on Breakout-v1; within 150k
    steps reinforce-value's policy has learnt to return the ball (seed 0 reaches about 3; seeds 0-2 pass
    1.5 at 100k in the benchmark runs)."""
    summary = pglab.train(
        env="MinAtar/Breakout-v1", total_steps=150_000, run_dir=str(tmp_path), wandb_mode="disabled", progress=False
    )
    config = read_json(tmp_path / "config.json")
    assert config["hyperparameters"]["normalize_advantages"] == "off" and config["hyperparameters"]["ent_coef"] == 0.05
    assert summary["return_mean_last100"] >= 2.0, summary
