"""pglab: a policy-gradient laboratory for discrete actions.

REINFORCE agents with baselines and Gumbel-Softmax relaxed-action agents share one
:class:`~pglab.policy.PolicyNetwork` and one training loop, :func:`pglab.train`. The functions here
are the Python API of the ``pglab`` commands (:mod:`pglab.api`).

``import pglab`` is light: torch loads when a run starts (or ``pglab.TrainConfig`` is first read), so
that the command line's help, ``pglab list`` and the W&B logging process start without it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from pglab import api

if TYPE_CHECKING:
    from pglab.train import TrainConfig

resume = api.resume
compare = api.compare

__all__ = ["TrainConfig", "compare", "resume", "train"]


def __getattr__(name: str) -> Any:
    if name == "TrainConfig":
        return importlib.import_module("pglab.train").TrainConfig
    raise AttributeError(f"module 'pglab' has no attribute {name!r}")


class _Package(types.ModuleType):
    """``pglab.train`` is the API function even after the submodule ``pglab.train`` is imported.

    Importing a submodule sets it as an attribute of its package, which would hide the function
    once anything imports the training module; the package keeps the name for the function and
    leaves the module to ``sys.modules``.
    """

    @property
    def train(self) -> Any:
        return api.train

    @train.setter
    def train(self, value: Any) -> None:
        if not isinstance(value, types.ModuleType):
            raise AttributeError("pglab.train is the training function; patch pglab.api.train instead")


sys.modules[__name__].__class__ = _Package
