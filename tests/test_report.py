"""`pglab report` on synthetic run directories whose numbers are known by construction."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pglab.lab import stats
from pglab.lab.report import build_report
from pglab.lab.results import RETURN, RunRecord, curve_band, step_grid

ALPHA_FINALS = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]  # IQM: mean of 2, 4, 8, 16 = 7.5
BETA = {0: (60.0, 1000, 1.0), 1: (70.0, 3000, 3.0), 2: (50.0, None, None), 3: (80.0, 2000, 2.0)}  # final, solved at


def write_run(root: Path, env: str, agent: str, seed: int, final: float, rows: list[dict], config: dict | None = None,
              name: str | None = None, **summary) -> Path:  # fmt: skip
    run = root / (name or f"{env}__{agent}__{seed}")
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"agent": agent, "env": env, "seed": seed, **(config or {})}))
    base = {"agent": agent, "env": env, "seed": seed, "status": "finished", "global_step": rows[-1]["global_step"],
            "wall_s": 10.0, "sps": 400.0, "episodes": 50, "return_mean_last100": final, "return_std_last100": 1.0,
            "solved_at_step": None, "solved_at_wall_s": None, "target_return": None}  # fmt: skip
    (run / "summary.json").write_text(json.dumps({**base, **summary}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    """alpha: 6 seeds, returns (seed+1)*step/1000 logged every 1000 steps, with a gradient norm;
    beta: 4 finished seeds (3 reach the target 55) logging 10 + step/100 every 1500 steps, and one
    failed seed; Acrobot: a single alpha run."""
    runs = tmp_path / "grid" / "runs"
    for seed, final in enumerate(ALPHA_FINALS):
        rows = [{"global_step": s, RETURN: (seed + 1) * s / 1000, "grads/policy_grad_norm": 0.5}
                for s in range(1000, 5000, 1000)]  # fmt: skip
        write_run(runs, "CartPole-v1", "alpha", seed, final, rows)
    for seed, (final, step, wall) in BETA.items():
        rows = [{"global_step": 0}] + [{"global_step": s, RETURN: 10 + s / 100} for s in (1500, 3000, 4500)]
        write_run(runs, "CartPole-v1", "beta", seed, final, rows, solved_at_step=step, solved_at_wall_s=wall,
                  target_return=55.0)  # fmt: skip
    failed = write_run(runs, "CartPole-v1", "beta", 4, 0.0, [{"global_step": 0}], status="failed")
    with (failed / "metrics.jsonl").open("a") as handle:
        handle.write('{"global_step": 1500, "charts/episo')  # a row cut short by a killed process
    write_run(runs, "Acrobot-v1", "alpha", 0, -100.0, [{"global_step": 500, RETURN: -200.0}])
    write_run(tmp_path / "grid" / "attempts", "CartPole-v1", "beta", 9, 1e9, [{"global_step": 0}])  # moved aside
    return tmp_path / "grid"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_aggregates_hold_the_known_iqm_ci_and_solved_counts(grid: Path):
    report = build_report(grid)
    rows = {(r["env"], r["agent"]): r for r in read_csv(grid / "report" / "aggregates.csv")}
    assert sorted(rows) == [("Acrobot-v1", "alpha"), ("CartPole-v1", "alpha"), ("CartPole-v1", "beta")]
    alpha, beta = rows["CartPole-v1", "alpha"], rows["CartPole-v1", "beta"]
    ci = stats.bootstrap_iqm(np.array(ALPHA_FINALS))
    assert float(alpha["final_return_iqm"]) == pytest.approx(7.5)
    assert (float(alpha["final_return_iqm_low"]), float(alpha["final_return_iqm_high"])) == (ci.low, ci.high)
    assert float(alpha["final_return_mean"]) == pytest.approx(np.mean(ALPHA_FINALS))
    assert float(alpha["final_return_std"]) == pytest.approx(np.std(ALPHA_FINALS, ddof=1))
    assert alpha["runs"] == "6" and alpha["solved"] == "0" and alpha["target_return"] == ""
    assert float(beta["final_return_iqm"]) == pytest.approx(65.0)  # the failed seed is left out
    assert beta["runs"] == "4" and beta["solved"] == "3" and float(beta["target_return"]) == 55.0
    assert float(beta["steps_to_target_median"]) == 2000 and float(beta["wall_s_to_target_median"]) == 2.0
    assert [r.agent for r in report.results] == ["alpha", "alpha", "beta"]


def test_results_csv_has_one_row_per_run_with_its_summary(grid: Path):
    build_report(grid)
    rows = read_csv(grid / "report" / "results.csv")
    assert len(rows) == 12  # the moved-aside attempt is not a run of the grid
    by_key = {(r["env"], r["agent"], int(r["seed"])): r for r in rows}
    assert by_key["CartPole-v1", "beta", 4]["status"] == "failed"
    assert float(by_key["CartPole-v1", "alpha", 3]["final_return"]) == 8.0
    assert by_key["CartPole-v1", "beta", 1]["solved_at_step"] == "3000"
    assert by_key["CartPole-v1", "beta", 2]["solved_at_step"] == ""  # empty, as pandas reads a missing value


def test_learning_curves_are_the_mean_of_the_interpolated_runs(grid: Path):
    report = build_report(grid)
    cartpole = [r for r in report.runs if r.env == "CartPole-v1" and r.finished]
    grid_steps = step_grid(cartpole)
    assert grid_steps[0] == 1000 and grid_steps[-1] == 4500
    alpha_mean, alpha_low, alpha_high = curve_band([r for r in cartpole if r.agent == "alpha"], RETURN, grid_steps)
    covered = grid_steps <= 4000
    np.testing.assert_allclose(alpha_mean[covered], 3.5 * grid_steps[covered] / 1000)  # mean of (seed+1) is 3.5
    assert np.isnan(alpha_mean[~covered]).all()  # no extrapolation past the last logged step
    assert (alpha_low[covered] <= alpha_mean[covered]).all() and (alpha_mean[covered] <= alpha_high[covered]).all()
    beta_mean, beta_low, beta_high = curve_band([r for r in cartpole if r.agent == "beta"], RETURN, grid_steps)
    covered = grid_steps >= 1500
    np.testing.assert_allclose(beta_mean[covered], 10 + grid_steps[covered] / 100)
    # identical seeds: a band of zero width
    np.testing.assert_allclose(np.stack([beta_low, beta_high])[:, covered], [beta_mean[covered]] * 2)


def test_the_report_writes_figures_and_a_markdown_summary(grid: Path):
    build_report(grid)
    out = grid / "report"
    for name in ("CartPole-v1_curves.png", "CartPole-v1_profile.png", "CartPole-v1_grads.png", "Acrobot-v1_curves.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    assert not (out / "Acrobot-v1_grads.png").exists()  # no run there logged grads/*
    text = (out / "report.md").read_text()
    assert "11 finished runs of 12" in text
    assert "- CartPole-v1__beta__4: failed" in text
    assert "| beta | 4 ⚠ | 65.0 [" in text and "| 55 | 3/4 | 2,000 [1,000, 3,000] | 2.0 |" in text
    assert "![learning curves on CartPole-v1](CartPole-v1_curves.png)" in text


def test_a_single_run_directory_gets_its_own_report(grid: Path, tmp_path: Path, run_cli):
    run = grid / "runs" / "CartPole-v1__alpha__2"
    code, stdout, _ = run_cli("report", str(run), "--out", str(tmp_path / "single"))
    assert code == 0 and "1 finished runs of 1" in stdout
    (row,) = read_csv(tmp_path / "single" / "aggregates.csv")
    assert float(row["final_return_iqm"]) == 4.0 and row["final_return_iqm_low"] == row["final_return_iqm_high"] == ""
    text = (tmp_path / "single" / "report.md").read_text()
    assert "| alpha | 1 ⚠ | 4.0 (one seed: no interval) |" in text and "it has no confidence interval" in text


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: None])
def test_a_directory_without_runs_gives_one_line(tmp_path: Path, run_cli, make):
    make(tmp_path / "empty")
    code, _, stderr = run_cli("report", str(tmp_path / "empty"))
    assert code == 2 and stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1


def test_a_curve_stops_where_fewer_than_half_of_the_seeds_have_data(tmp_path: Path):
    """Two of four seeds stop (reach the target) at step 2000: the mean runs on to 3000 on two
    seeds, and stops where only one seed is left."""
    lasts = [2000, 2000, 3000, 4000]
    runs = [
        RunRecord(tmp_path, "E", "a", seed, "finished", {}, {RETURN: (np.array([0.0, last]), np.array([0.0, last]))})
        for seed, last in enumerate(lasts)
    ]
    grid_steps = np.array([1000.0, 2000.0, 3000.0, 3500.0, 4000.0])
    mean, low, high = curve_band(runs, RETURN, grid_steps)
    np.testing.assert_allclose(mean[:3], [1000.0, 2000.0, 3000.0])
    assert np.isnan(np.stack([mean, low, high])[:, 3:]).all()


def test_runs_are_pooled_only_when_they_share_env_agent_and_every_setting_but_the_seed(tmp_path: Path):
    folder = tmp_path / "mixed"
    rows = [{"global_step": 1000, RETURN: 1.0}]
    hyper = {"lr": 1e-3, "tau": 1.0}
    for steps, final in ((1000, 10.0), (2000, 20.0)):  # two seed-0 runs with different budgets
        write_run(folder, "CartPole-v1", "alpha", 0, final, rows, name=f"alpha{steps}",
                  config={"total_steps": steps, "target_return": None, "hyperparameters": hyper,
                          "estimator_fields": ["tau"]})  # fmt: skip
    for seed in (0, 1):  # a target of its own, and settings that differ in lr and in an estimator field
        write_run(folder, "CartPole-v1", "beta", seed, 50.0 + seed, rows, target_return=55.0, solved_at_step=900,
                  config={"total_steps": 1000, "target_return": 55.0, "hyperparameters": {"lr": 3e-3, "tau": 0.5},
                          "estimator_fields": ["tau"]})  # fmt: skip
    write_run(folder, "FrozenLake-v1", "alpha", 0, 0.5, rows)
    write_run(folder, "FrozenLake-v1", "alpha", 1, 0.0, rows, name="8x8",
              config={"env_kwargs": {"map_name": "8x8", "is_slippery": False}})  # fmt: skip
    write_run(folder, "pglab.envs:pglab/DelayedChain-v0", "alpha", 0, 1.0, rows)
    write_run(folder, "pglab/DelayedChain-v0", "alpha", 1, 3.0, rows)

    report = build_report(folder)
    groups = {(r.env, r.label): (r.seeds, r.final.value) for r in report.results}
    assert groups == {
        ("CartPole-v1", "alpha [total_steps=1000]"): (1, 10.0),
        ("CartPole-v1", "alpha [total_steps=2000]"): (1, 20.0),
        ("CartPole-v1", "beta"): (2, 50.5),
        ("FrozenLake-v1", "alpha"): (1, 0.5),
        ("FrozenLake-v1 (is_slippery=false, map_name=8x8)", "alpha"): (1, 0.0),
        ("pglab/DelayedChain-v0", "alpha"): (2, 2.0),
    }
    text = (folder / "report" / "report.md").read_text()
    assert "| alpha [total_steps=1000] | 1 ⚠ | 10.0 (one seed: no interval) |" in text
    assert "| none | - | - | - |" in text and "| 55 | 2/2 | 900 [900, 900] |" in text  # no borrowed target
    assert "**Mixed folder**" in text and "- CartPole-v1: lr, target_return, total_steps" in text
    assert "| lr | **≠** | 0.001 | 0.001 | 0.003 |" in text
    assert "| tau | ≠ *(estimator)* | 1.0 | 1.0 | 0.5 |" in text
    assert "- pglab/DelayedChain-v0:" not in text  # one env, one setting: pooled, nothing mixed


def test_the_seeds_of_a_real_grid_are_pooled_into_one_group(tmp_path: Path):
    """Real config.json files differ per run in bookkeeping (run_dir, W&B run id, seed): none of it splits a group."""
    import pglab

    out = tmp_path / "grid"
    pglab.compare("reinforce", "CartPole-v1", [0, 1], out=out, total_steps=256, overrides={"num_envs": 2},
                  wandb_mode="offline", progress=False)  # fmt: skip
    build_report(out)
    (row,) = read_csv(out / "report" / "aggregates.csv")
    assert (row["agent"], row["runs"], row["seeds"]) == ("reinforce", "2", "2")


def test_a_run_solved_at_wall_time_zero_counts_in_the_time_to_target(tmp_path: Path):
    """solved_at_wall_s 0.0 is a time; only null (never solved, or a summary without it) is left out."""
    from pglab.lab.results import summarize

    curve = {RETURN: (np.array([0.0, 100.0]), np.array([0.0, 10.0]))}
    summaries = [{"solved_at_step": 100, "solved_at_wall_s": 0.0}, {"solved_at_step": 300, "solved_at_wall_s": 2.0},
                 {"solved_at_step": 200, "solved_at_wall_s": None}, {"solved_at_step": None}]  # fmt: skip
    runs = [RunRecord(tmp_path, "E", "a", seed, "finished", {"return_mean_last100": 10.0, **summary}, curve)
            for seed, summary in enumerate(summaries)]  # fmt: skip
    result = summarize("E", "a", runs)
    assert result.solved_steps == [100.0, 300.0, 200.0] and result.solved_wall_s == [0.0, 2.0]
    assert result.row()["wall_s_to_target_median"] == 1.0
