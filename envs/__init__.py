"""pglab's environment plug-ins, installed as ``pglab.envs``.

Importing this module registers the environments with Gymnasium under the ``pglab/`` namespace.
pglab imports it through its own ``pglab.envs`` entry point, the same path a third-party plug-in
takes (see README, "Writing an environment plug-in").

Every environment here exposes its model the way Gymnasium's toy-text environments do
(``env.unwrapped.P`` and ``env.unwrapped.initial_state_distrib``), so :mod:`pglab.diagnostics.exact` computes
its exact policy gradient.
Episodes of the one-step environments are registered with a time limit of 1 (they end after one
step anyway): the limit is the horizon of their exact objective.
"""

import gymnasium as gym

gym.register(id="pglab/CategoricalBandit-v0", entry_point="pglab.envs.bandit:CategoricalBandit", max_episode_steps=1)
gym.register(id="pglab/RelaxToy-v0", entry_point="pglab.envs.relax_toy:RelaxToy", max_episode_steps=1)
gym.register(id="pglab/DelayedChain-v0", entry_point="pglab.envs.chain:DelayedChain", max_episode_steps=20)
