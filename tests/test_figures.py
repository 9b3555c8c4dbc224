"""The report's figures as a reader sees them: plain names and units, no τ for a threshold, readable
log axes, timings apart from statistics."""

from __future__ import annotations

from pathlib import Path

import pytest

from pglab.lab import figures
from pglab.lab.report import build_report
from pglab.lab.results import RETURN
from tests.test_report import write_run

GRADS_ROW = {"grads/estimator_variance": 2e-4, "grads/estimator_snr": 0.5, "grads/estimator_cosine": 0.3,
             "grads/estimator_ms": 12.0}  # fmt: skip


@pytest.fixture
def drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Every figure of a small report, by file name, as it was when saved."""
    saved: dict[str, object] = {}
    real_save = figures._save

    def keep(fig, path):
        saved[Path(path).name] = fig
        fig.canvas.draw()  # lay the text out, as savefig does
        return real_save(fig, path)

    monkeypatch.setattr(figures.pyplot(), "close", lambda fig: None)
    monkeypatch.setattr(figures, "_save", keep)
    for seed in range(3):
        rows = [{"global_step": s, RETURN: s / 100 + seed, **{k: v * (seed + s) for k, v in GRADS_ROW.items()}}
                for s in range(1000, 5000, 1000)]  # fmt: skip
        write_run(tmp_path / "g", "CartPole-v1", "a-long-agent-name-for-the-legend", seed, 10.0 + seed, rows)
    build_report(tmp_path / "g")
    return saved


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in (ax.xaxis.label, ax.yaxis.label, ax.title)]


def test_the_profile_names_its_threshold_r_not_tau(drawn):
    labels = " ".join(texts(drawn["CartPole-v1_profile.png"]))
    assert "τ" not in labels and "threshold R" in labels


def test_grads_panels_have_plain_names_and_the_timing_a_figure_of_its_own(drawn):
    stats_labels = texts(drawn["CartPole-v1_grads.png"])
    assert "variance of one estimate (sum over parameters)" in stats_labels
    assert not any("ms" in label or "grads/" in label or "estimator_" in label for label in stats_labels)
    assert "time per estimate (ms)" in texts(drawn["CartPole-v1_grads_cost.png"])


def test_log_axes_are_labelled_with_plain_numbers(drawn):
    fig = drawn["CartPole-v1_grads.png"]
    (variance,) = [ax for ax in fig.axes if ax.get_ylabel().startswith("variance of one estimate")]
    assert variance.get_yscale() == "log"
    ticks = [t.get_text() for t in variance.get_yticklabels() if t.get_text()]
    assert ticks and not any("$" in t or "^" in t for t in ticks)
