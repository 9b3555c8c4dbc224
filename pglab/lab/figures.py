"""The report's figures: learning curves, performance profiles and gradient diagnostics, per environment.

matplotlib runs with its Agg backend: reports are written on machines with no display (clusters, CI).
Every band drawn is a 95% percentile bootstrap over seeds (:mod:`pglab.lab.stats`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pglab.lab.results import RunRecord


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(ax: Any, x: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, label: str) -> None:
    (line,) = ax.plot(x, mean, label=label, linewidth=1.5)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0)


def readable_log_axis(axis: Any) -> None:
    """A log axis labelled with plain numbers (0.01, 2, 500, 1e+06) instead of powers of ten in math text."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: ""))


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # long labels widen the image instead of being cut
    pyplot().close(fig)
    return path


def _curves_axes(ax: Any, by_agent: dict[str, list[RunRecord]], metric: str) -> bool:
    """Draw every agent's mean curve of ``metric`` with its band; False if no run logged it."""
    from pglab.lab.results import curve_bands

    grid, bands = curve_bands(by_agent, metric)
    for agent, (band, runs) in bands.items():
        _band(ax, grid, *band, label=f"{agent} (n={runs})")
    ax.set_xlabel("environment steps")
    ax.grid(alpha=0.3)
    return bool(bands)


def learning_curves(env: str, by_agent: dict[str, list[RunRecord]], path: Path) -> Path | None:
    from pglab.lab.results import RETURN

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
    from pglab.lab.results import profile_bands

    plt = pyplot()
    thresholds, bands = profile_bands(by_agent)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for agent, band in bands.items():
        _band(ax, thresholds, *band, label=f"{agent} (n={len(by_agent[agent])})")
    # R, not τ: τ is the Gumbel-Softmax temperature throughout pglab
    ax.set_xlabel("threshold R on the final return (mean of the last 100 episodes)")
    ax.set_ylabel("fraction of runs with final return > R")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{env}: performance profile, 95% bootstrap CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(fig, path)


def gradient_curves(
    env: str, by_agent: dict[str, list[RunRecord]], path: Path, timings: bool = False
) -> Path | None:
    """One panel per ``grads/*`` statistic any run logged (variance, SNR, cosine, bias of the estimators).

    With ``timings``, the panels of the costs instead (time per estimate): seconds are not statistics
    of the estimator and get a figure of their own.
    """
    from pglab.lab.results import GRADS_LABELS, GRADS_PREFIX, GRADS_TIMINGS, grads_metrics, positive

    metrics = [m for m in grads_metrics(by_agent) if (m in GRADS_TIMINGS) == timings]
    if not metrics:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(len(metrics), 1, figsize=(6.4, 2.6 * len(metrics)), squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        _curves_axes(ax, by_agent, metric)
        ax.set_ylabel(GRADS_LABELS.get(metric, metric.removeprefix(GRADS_PREFIX)), fontsize="small", wrap=True)
        if any(word in metric for word in ("variance", "snr", "bias", "ms")) and positive(by_agent, metric):
            ax.set_yscale("log")  # variances, ratios and costs span orders of magnitude over training
            readable_log_axis(ax.yaxis)
        ax.legend(fontsize="x-small")
    what = "cost of the gradient diagnostics" if timings else "gradient diagnostics (95% bootstrap CI)"
    axes[0, 0].set_title(f"{env}: {what}", fontsize="medium")
    return _save(fig, path)


def environment_figures(env: str, by_agent: dict[str, list[RunRecord]], prefix: Path) -> dict[str, Path]:
    """Every figure of one environment, written as ``<prefix>_<kind>.png``; kind -> path."""
    made = {
        "curves": learning_curves(env, by_agent, Path(f"{prefix}_curves.png")),
        "profile": performance_profiles(env, by_agent, Path(f"{prefix}_profile.png")),
        "grads": gradient_curves(env, by_agent, Path(f"{prefix}_grads.png")),
        "grads_cost": gradient_curves(env, by_agent, Path(f"{prefix}_grads_cost.png"), timings=True),
    }
    return {kind: path for kind, path in made.items() if path is not None}
