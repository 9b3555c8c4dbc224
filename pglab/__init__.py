"""pglab: a policy-gradient laboratory for discrete actions.

REINFORCE agents with baselines and Gumbel-Softmax relaxed-action agents share one
:class:`~pglab.policy.PolicyNetwork` and one training loop, :func:`pglab.train`. The functions here
are the Python API of the ``pglab`` commands (:mod:`pglab.api`).
"""

from pglab import api
from pglab.train import TrainConfig

# Bound after the imports above: importing the pglab.train module sets the attribute to the module.
train = api.train
resume = api.resume
compare = api.compare

__all__ = ["TrainConfig", "compare", "resume", "train"]
