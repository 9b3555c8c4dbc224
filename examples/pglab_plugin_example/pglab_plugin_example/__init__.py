"""Importing this package registers ``pglab_example/Corridor-v0`` with Gymnasium."""

import gymnasium as gym

gym.register(id="pglab_example/Corridor-v0", entry_point="pglab_plugin_example.corridor:Corridor", max_episode_steps=50)
