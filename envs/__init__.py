"""pglab's environment plug-ins, installed as ``pglab.envs``.

Importing this module registers the environments with Gymnasium under the ``pglab/`` namespace.
pglab imports it through its own ``pglab.envs`` entry point, the same path a third-party plug-in
takes (see README, "Writing an environment plug-in").
"""

import gymnasium as gym

gym.register(id="pglab/CategoricalBandit-v0", entry_point="pglab.envs.bandit:CategoricalBandit")
