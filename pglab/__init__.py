"""pglab: a policy-gradient laboratory for discrete actions.

REINFORCE agents with baselines and Gumbel-Softmax relaxed-action agents share one
:class:`~pglab.policy.PolicyNetwork` and one training loop, :func:`pglab.train`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pglab.train import TrainConfig, resume, train

__all__ = ["TrainConfig", "resume", "train"]


def __getattr__(name: str) -> Any:
    # torch takes a second to import: `pglab --help` and plug-in discovery should not pay for it
    if name in __all__:
        from pglab import train as train_module

        return getattr(train_module, name)
    raise AttributeError(f"module 'pglab' has no attribute {name!r}")
