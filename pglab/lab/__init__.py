"""Experiments over many runs: grids and their engines, tuning sweeps, evaluation, statistics, reports
and figures.
"""
