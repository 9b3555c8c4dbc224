"""pglab: a policy-gradient laboratory for discrete actions.

REINFORCE agents with baselines and Gumbel-Softmax relaxed-action agents share one
:class:`~pglab.policy.PolicyNetwork` and one training loop, :func:`pglab.train`.
"""

from pglab.train import TrainConfig, resume, train

__all__ = ["TrainConfig", "resume", "train"]
