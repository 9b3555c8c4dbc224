"""pglab: a policy-gradient laboratory for discrete actions.

REINFORCE agents with baselines, Gumbel-Softmax relaxed-action agents and the estimators between them
share one :class:`~pglab.core.policy.PolicyNetwork` and one training loop. The functions here are the
Python API of the ``pglab`` commands (:mod:`pglab.api`): ``pglab.train``, ``pglab.resume``,
``pglab.evaluate``, ``pglab.grads``, ``pglab.compare``, ``pglab.report``.

The package is grouped by the data path: :mod:`pglab.core` (one run), :mod:`pglab.lab` (many runs),
:mod:`pglab.diagnostics` (gradient diagnostics), :mod:`pglab.io` (what runs write and read).
``import pglab`` is light: torch loads when a run starts, so that the command line's help, ``pglab list``,
the W&B logging process and a grid's own process (which plans, the workers train) run without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pglab.api import compare, evaluate, grads, report, resume, train

if TYPE_CHECKING:
    from pglab.core.config import TrainConfig

__all__ = ["TrainConfig", "compare", "evaluate", "grads", "report", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        return importlib.import_module("pglab.core.config").TrainConfig
    raise AttributeError(f"module 'pglab' has no attribute {name!r}")
