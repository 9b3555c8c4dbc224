"""pglab's agents, installed as ``pglab.agents`` and registered in the ``pglab.agents`` entry-point group.

Each module pairs the shared PolicyNetwork with an estimator from pglab.core.estimators and holds the
agent's presets (hyperparameters, with per-environment overrides).
"""
