"""The statistics of a comparison: IQM, bootstrap confidence intervals, performance profiles, curves.

Pure numpy/scipy functions of arrays, no I/O. They follow Agarwal et al., "Deep Reinforcement
Learning at the Edge of the Statistical Precipice" (NeurIPS 2021), the paper behind rliable: with
few seeds, report the interquartile mean (robust to one outlier seed, less noisy than the median)
with a percentile-bootstrap confidence interval over seeds, and the whole distribution of final
returns as a performance profile. rliable itself is not used: it ships only as an sdist that pins
arch, pandas and seaborn, and pglab needs only these few lines of its method. Every estimate here
is computed per environment, so the bootstrap over seeds is rliable's stratified bootstrap with one
stratum.

Resampling uses a fixed seed, so a report is reproducible to the last digit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_SAMPLES = 5000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float


def iqm(scores: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """Interquartile mean: the mean of the middle 50% of the scores (25% trimmed from each end)."""
    from scipy import stats as scipy_stats  # imported when used: 0.4 s that every `pglab compare` paid

    return scipy_stats.trim_mean(scores, proportiontocut=0.25, axis=axis)


def t_interval(values: list[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high): Student's t confidence interval of the mean of independent values.

    With a single value the spread is undefined: std and interval are NaN (null in JSON files).
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2:
        return mean, float("nan"), float("nan"), float("nan")
    std = float(values.std(ddof=1))
    from scipy import stats as scipy_stats

    half = float(scipy_stats.t.ppf(0.5 + confidence / 2, len(values) - 1)) * std / np.sqrt(len(values))
    return mean, std, mean - half, mean + half


def _resample_indices(n: int, samples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(samples, n))


def _percentiles(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - confidence) / 2 * 100
    return np.nanpercentile(replicates, tail, axis=0), np.nanpercentile(replicates, 100 - tail, axis=0)


def bootstrap_iqm(
    scores: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> Estimate:
    """IQM of ``scores`` (one per seed) with a percentile-bootstrap CI over seeds."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"expected a non-empty 1-d array of scores; got shape {scores.shape}")
    replicates = iqm(scores[_resample_indices(scores.size, samples, seed)], axis=1)
    low, high = _percentiles(replicates, confidence)
    return Estimate(float(iqm(scores)), float(low), float(high))


def bootstrap_mean_curve(
    curves: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs of ``curves`` (runs, points), NaN where a run has no value, with a bootstrap band.

    Each bootstrap replicate resamples whole runs (seeds), so the band reflects seed-to-seed
    variation at every point of the curve jointly.
    """
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim != 2 or curves.shape[0] == 0:
        raise ValueError(f"expected a (runs, points) array with at least one run; got shape {curves.shape}")
    with warnings.catch_warnings():  # a step no run covers is NaN by design, not worth a warning
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(curves, axis=0)
        replicates = np.nanmean(curves[_resample_indices(curves.shape[0], samples, seed)], axis=1)
        low, high = _percentiles(replicates, confidence)
    return mean, low, high


def performance_profile(
    scores: np.ndarray,
    thresholds: np.ndarray,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of runs whose score exceeds each threshold, with a bootstrap band over runs."""
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    fraction = (scores[:, None] > thresholds[None, :]).mean(axis=0)
    resampled = scores[_resample_indices(scores.size, samples, seed)]
    replicates = (resampled[:, :, None] > thresholds[None, None, :]).mean(axis=1)
    low, high = _percentiles(replicates, confidence)
    return fraction, low, high


def interpolate_onto(steps: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """A run's curve linearly interpolated onto ``grid``; NaN outside the steps the run logged.

    A run is never extrapolated: before its first logged episode and after its last step it has no
    value, and the mean over seeds at such a point is taken over the runs that do.
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    out = np.full(grid.shape, np.nan)
    if steps.size == 0:
        return out
    inside = (grid >= steps[0]) & (grid <= steps[-1])
    out[inside] = np.interp(grid[inside], steps, values)
    return out


def common_grid(first_steps: list[float], last_steps: list[float], points: int = 101) -> np.ndarray:
    """Evenly spaced steps from the earliest first step to the latest last step of a set of runs."""
    start, stop = min(first_steps), max(last_steps)
    return np.linspace(start, stop, points) if stop > start else np.array([float(start)])
