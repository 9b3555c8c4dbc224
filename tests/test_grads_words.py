"""grads.md reads each estimator's bias against its noise in words, and explains its columns."""

from __future__ import annotations

from pglab.diagnostics.grads import bias_in_words


def report(kind: str) -> dict:
    rows = [
        {"agent": "unbiased", "bias_norm": 0.03, "bias_noise_norm": 0.02},  # 1.5 noise norms
        {"agent": "biased", "bias_norm": 0.5, "bias_noise_norm": 0.1},  # 5 noise norms
    ]
    return {"reference": {"kind": kind}, "samples": 1000, "estimators": rows}


def test_bias_beyond_two_noise_norms_is_called_bias_and_below_is_not():
    unbiased, biased = bias_in_words(report("exact"))
    assert unbiased == "- unbiased: bias norm 0.03 = 1.5 noise norms; no bias detectable with 1000 estimates."
    assert biased == "- biased: bias norm 0.5 = 5.0 noise norms; biased: more than sampling noise explains."


def test_without_an_exact_reference_bias_is_not_claimed():
    (line,) = bias_in_words(report("large-batch"))
    assert "not measured" in line
