"""The report's figures: learning curves, performance profiles and gradient diagnostics, per environment.

matplotlib runs with its Agg backend: reports are written on machines with no display (clusters, CI).
Every band drawn is a 95% percentile bootstrap over seeds (:mod:`pglab.stats`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pglab import stats

if TYPE_CHECKING:
    from pglab.report import RunRecord


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(ax: Any, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, label: str) -> None:
    (line,) = ax.plot(x, mean, label=label, linewidth=1.5)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    pyplot().close(fig)
    return path


def _curves_axes(ax: Any, by_agent: dict[str, list[RunRecord]], metric: str) -> bool:
    """Draw every agent's mean curve of ``metric`` with its band; False if no run logged it."""
    from pglab.report import curve_band, step_grid

    grid = step_grid([r for runs in by_agent.values() for r in runs], metric)
    drawn = False
    for agent, runs in by_agent.items():
        band = curve_band(runs, metric, grid) if grid.size else None
        if band is not None:
            _band(ax, grid, *band, label=f"{agent} (n={sum(metric in r.curves for r in runs)})")
            drawn = True
    ax.set_xlabel("environment steps")
    ax.grid(alpha=0.3)
    return drawn


def learning_curves(env: str, by_agent: dict[str, list[RunRecord]], path: Path) -> Path | None:
    from pglab.report import RETURN

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    if not _curves_axes(ax, by_agent, RETURN):
        plt.close(fig)
        return None
    ax.set_ylabel("episodic return")
    ax.set_title(f"{env}: mean over seeds, 95% bootstrap CI")
    ax.legend(fontsize="small")
    return _save(fig, path)


def performance_profiles(env: str, by_agent: dict[str, list[RunRecord]], path: Path) -> Path:
    plt = pyplot()
    finals = {agent: np.array([r.final_return for r in runs], dtype=np.float64) for agent, runs in by_agent.items()}
    every = np.concatenate(list(finals.values()))
    thresholds = np.linspace(every.min(), every.max(), 101) if every.max() > every.min() else every[:1]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for agent, scores in finals.items():
        _band(ax, thresholds, *stats.performance_profile(scores, thresholds), label=f"{agent} (n={scores.size})")
    ax.set_xlabel("final return (mean of the last 100 episodes) τ")
    ax.set_ylabel("fraction of runs with return > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{env}: performance profile, 95% bootstrap CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def gradient_curves(env: str, by_agent: dict[str, list[RunRecord]], path: Path) -> Path | None:
    """One panel per ``grads/*`` metric any run logged (norms, variances, SNR of the estimators)."""
    from pglab.report import GRADS_PREFIX

    metrics = sorted({k for runs in by_agent.values() for r in runs for k in r.curves if k.startswith(GRADS_PREFIX)})
    if not metrics:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(metrics), 1, figsize=(6.4, 2.6 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        _curves_axes(ax, by_agent, metric)
        ax.set_ylabel(metric.removeprefix(GRADS_PREFIX))
        if ("var" in metric or "norm" in metric) and _positive(by_agent, metric):
            ax.set_yscale("log")  # variances and norms span orders of magnitude over training
        ax.legend(fontsize="x-small")
    axes[0, 0].set_title(f"{env}: gradient diagnostics (95% bootstrap CI)", fontsize="medium")
    return _save(fig, path)


def _positive(by_agent: dict[str, list[RunRecord]], metric: str) -> bool:
    return all((r.curves[metric][1] > 0).all() for runs in by_agent.values() for r in runs if metric in r.curves)


def environment_figures(env: str, by_agent: dict[str, list[RunRecord]], prefix: Path) -> dict[str, Path]:
    """Every figure of one environment, written as ``<prefix>_<kind>.png``; kind -> path."""
    made = {
        "curves": learning_curves(env, by_agent, Path(f"{prefix}_curves.png")),
        "profile": performance_profiles(env, by_agent, Path(f"{prefix}_profile.png")),
        "grads": gradient_curves(env, by_agent, Path(f"{prefix}_grads.png")),
    }
    return {kind: path for kind, path in made.items() if path is not None}
