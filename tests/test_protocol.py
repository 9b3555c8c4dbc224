"""The matched protocol: the same seed gives every agent the same start, and only estimator fields differ."""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from pglab.core.agent import MATCHED_SETTINGS, CriticPreset, Preset, knob, matched_values, resolve_preset, shared_fields
from pglab.core.plugins import get_agent, load_agents
from pglab.core.train import TrainConfig, build_run
from pglab.errors import ConfigError
from tests.helpers import read_json


def first_batch(tmp_path: Path, agent: str, protocol: str, seed: int = 5, **overrides) -> dict[str, torch.Tensor]:
    """The initial policy weights and the first batch of a run, built the way `pglab train` builds it."""
    config = TrainConfig(agent=agent, env="CartPole-v1", seed=seed, protocol=protocol, overrides=overrides,
                         wandb_mode="disabled", progress=False)  # fmt: skip
    run = build_run(config, tmp_path / agent)
    try:
        weights = torch.cat([p.detach().flatten().clone() for p in run.agent.policy.parameters()])
        run.collector.reset(config.seed)
        batch = run.collector.collect(run.agent)
        return {"weights": weights, "features": batch.features.clone(), "actions": batch.actions.clone(),
                "rewards": batch.rewards.clone(), "valid": batch.valid.clone(), "run": run}  # fmt: skip
    finally:
        run.envs.close()


def test_every_agent_starts_from_the_same_weights_and_sees_the_same_first_batch(tmp_path: Path):
    batches = {name: first_batch(tmp_path, name, "matched") for name in sorted(load_agents())}
    reference = batches["reinforce"]
    for name, batch in batches.items():
        for key in ("weights", "features", "actions", "rewards", "valid"):
            assert torch.equal(batch[key], reference[key]), f"{name}: {key} differs from reinforce's"
    assert reference["actions"].float().std() > 0  # a real batch of sampled actions, not a constant
    # another seed is another start
    assert not torch.equal(first_batch(tmp_path / "other", "reinforce", "matched", seed=6)["actions"],
                           reference["actions"])  # fmt: skip


def test_tuned_presets_keep_the_same_initial_weights(tmp_path: Path):
    weights = {name: first_batch(tmp_path, name, "presets")["weights"] for name in ("reinforce", "reinforce-value")}
    assert torch.equal(weights["reinforce"], weights["reinforce-value"])


def policy_after_one_update(tmp_path: Path, agent: str, **overrides) -> torch.Tensor:
    built = first_batch(tmp_path, agent, "matched", **overrides)
    run = built["run"]
    run.agent.update(run.collector.buffer)
    return torch.cat([p.detach().flatten() for p in run.agent.policy.parameters()])


@pytest.mark.parametrize("agent", ["reinforce-value", "gumbel-st"])
def test_critic_update_after_means_the_actor_reads_the_critic_before_it_sees_the_batch(tmp_path: Path, agent: str):
    """With 'after' the actor's step cannot depend on how hard the critic is fitted to this batch;
    with 'before' it does."""
    steps = {
        (order, lr): policy_after_one_update(tmp_path / f"{order}{lr}", agent, critic_update=order, critic_lr=lr)
        for order, lr in itertools.product(("after", "before"), (1e-3, 1e-1))
    }
    assert torch.equal(steps["after", 1e-3], steps["after", 1e-1])
    assert not torch.allclose(steps["before", 1e-3], steps["before", 1e-1])


def test_presets_keep_their_tuned_values_and_matched_shares_one_table():
    value = get_agent("reinforce-value").preset
    tuned = resolve_preset(value, "Acrobot-v1", {})
    assert (tuned.num_envs, tuned.num_steps, tuned.lr, tuned.critic_epochs) == (16, 256, 3e-3, 4)
    assert (tuned.ent_coef, tuned.gae_lambda, tuned.normalize_advantages) == (0.01, 0.95, "standardize")
    gumbel = resolve_preset(get_agent("gumbel-rao").preset, "Acrobot-v1", {})
    assert (gumbel.critic_update, gumbel.critic_epochs, gumbel.critic_lr, gumbel.normalize_advantages) == (
        "before", 10, 1e-3, "off",
    )  # fmt: skip
    assert (gumbel.num_envs, gumbel.num_steps) == (8, 256)  # the cheaper fit lost Acrobot seeds
    cartpole = resolve_preset(get_agent("gumbel-st").preset, "CartPole-v1", {})
    assert (cartpole.num_envs, cartpole.num_steps, cartpole.critic_epochs, cartpole.critic_lr) == (16, 64, 3, 3e-3)
    all_action = resolve_preset(get_agent("all-action").preset, "Acrobot-v1", {})  # untuned: the critic's defaults
    assert (all_action.num_envs, all_action.num_steps, all_action.critic_epochs, all_action.critic_lr) == (
        8, 256, 10, 1e-3,
    )  # fmt: skip

    matched = {name: resolve_preset(spec.preset, "Acrobot-v1", {}, "matched") for name, spec in load_agents().items()}
    table = {**MATCHED_SETTINGS["*"], **MATCHED_SETTINGS["Acrobot-v1"]}
    for name, preset in matched.items():
        for key, expected in table.items():
            assert getattr(preset, key, expected) == expected, (name, key)
    assert matched["reinforce-value"].gae_lambda == 0.95  # an estimator field keeps its tuned value
    assert matched["gumbel-rao"].rao_samples == 8
    with pytest.raises(ConfigError, match="adds a batch-mean baseline"):
        resolve_preset(value, "CartPole-v1", {"normalize_advantages": "standardize"}, "matched")


def test_every_shared_field_has_a_matched_value_and_an_agent_must_declare_its_own_fields():
    assert set(MATCHED_SETTINGS["*"]) == set(shared_fields())

    @dataclass
    class Undeclared(Preset):
        beta: float = knob(0.5, "an estimator's own knob")

    with pytest.raises(ConfigError, match=r"Undeclared\.beta is neither shared"):
        matched_values(Undeclared, "CartPole-v1")

    @dataclass
    class Declared(Undeclared):
        estimator_fields: ClassVar[tuple[str, ...]] = ("beta",)

    assert "beta" not in matched_values(Declared, "CartPole-v1")
    assert resolve_preset(Declared, "CartPole-v1", {"beta": "0.25"}, "matched").beta == 0.25

    @dataclass
    class ClaimsShared(CriticPreset):
        estimator_fields: ClassVar[tuple[str, ...]] = ("critic_lr",)

    with pytest.raises(ConfigError, match="names 'critic_lr', which is shared"):
        matched_values(ClaimsShared, "CartPole-v1")


def test_every_run_of_a_matched_grid_differs_in_config_json_only_in_estimator_fields(tmp_path: Path, run_cli):
    agents = sorted(load_agents())
    code, _, stderr = run_cli("compare", "--agents", ",".join(agents), "--envs", "Acrobot-v1", "--seeds", "3",
                              "--total-steps", "1", "--workers", "2", "--out", str(tmp_path / "g"),
                              "--wandb-mode", "disabled", "--no-progress")  # fmt: skip
    assert code == 0, stderr
    configs = {a: read_json(tmp_path / "g" / "runs" / f"Acrobot-v1__{a}__3" / "config.json") for a in agents}
    critic = {f.name for f in dataclasses.fields(CriticPreset)} - {f.name for f in dataclasses.fields(Preset)}
    for (a, first), (b, second) in itertools.combinations(configs.items(), 2):
        outside = {k for k in first.keys() | second.keys() if first.get(k) != second.get(k)}
        assert outside <= {"agent", "run_dir", "estimator_fields", "hyperparameters", "wandb_tags"}, (a, b, outside)
        own = set(first["estimator_fields"]) | set(second["estimator_fields"])
        h1, h2 = first["hyperparameters"], second["hyperparameters"]
        for key in h1.keys() & h2.keys():
            assert h1[key] == h2[key] or key in own, (a, b, key)
        for key in h1.keys() ^ h2.keys():  # a critic's settings exist only for agents with a critic
            assert key in own or key in critic, (a, b, key)
    assert configs["reinforce"]["protocol"] == "matched" and configs["gumbel-st"]["hyperparameters"]["num_steps"] == 256


def test_the_matched_table_holds_the_documented_values():
    """The shared values README's matched protocol names, and Acrobot's longer window, reach a preset."""
    reinforce = resolve_preset(get_agent("reinforce").preset, "CartPole-v1", {}, "matched")
    acrobot = resolve_preset(get_agent("gumbel-st").preset, "Acrobot-v1", {}, "matched")
    assert (reinforce.lr, reinforce.ent_coef, reinforce.num_envs, reinforce.num_steps) == (1e-3, 0.01, 8, 128)
    assert (reinforce.normalize_advantages, reinforce.max_grad_norm, reinforce.gamma) == ("scale", 0.5, 0.99)
    assert (acrobot.num_steps, acrobot.critic_epochs, acrobot.critic_update) == (256, 10, "after")
    assert acrobot.critic_lr == 1e-3


def test_minatar_settings_hold_for_every_agent_under_the_matched_protocol():
    """Every MinAtar game, both action sets: the paper's network, 16 x 16-step batches, one regression pass,
    unnormalised advantages and an entropy bonus of 0.05, for every agent alike (elsewhere 8 x 128, 64,64, 10
    passes, scaled advantages and 0.01); reinforce-value's lambda is its MinAtar preset's, 0.95."""
    for env in ("MinAtar/Breakout-v1", "MinAtar/SpaceInvaders-v0", "MinAtar/Asterix-v1"):
        for name, spec in load_agents().items():
            preset = resolve_preset(spec.preset, env, {}, "matched")
            assert (preset.num_envs, preset.num_steps, getattr(preset, "critic_epochs", 1)) == (16, 16, 1), (env, name)
            assert (preset.ent_coef, preset.normalize_advantages, preset.lr) == (0.05, "off", 1e-3), (env, name)
            assert preset.hidden_sizes == getattr(preset, "critic_hidden_sizes", ()) == (), (env, name)
        assert resolve_preset(get_agent("reinforce-value").preset, env, {}, "matched").gae_lambda == 0.95
    elsewhere = resolve_preset(get_agent("reinforce-value").preset, "CartPole-v1", {}, "matched")
    assert (elsewhere.num_envs, elsewhere.num_steps, elsewhere.critic_epochs, elsewhere.ent_coef) == (8, 128, 10, 0.01)
    assert (elsewhere.normalize_advantages, elsewhere.gae_lambda) == ("scale", 1.0)


def test_reinforce_value_preset_on_minatar_is_the_matched_one():
    """`pglab train --env MinAtar/...` with reinforce-value's preset trains exactly what the MinAtar benchmark
    compares (the README's Breakout numbers come from either)."""
    spec = get_agent("reinforce-value")
    for env in ("MinAtar/Breakout-v1", "MinAtar/Seaquest-v0"):
        assert resolve_preset(spec.preset, env, {}, "presets") == resolve_preset(spec.preset, env, {}, "matched")
