"""Gradient-estimator diagnostics: exact gradients of tabular environments and `pglab grads`."""
