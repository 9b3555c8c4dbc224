"""The data path of one run: the policy network, the estimators, rollouts, agents and presets, the
training loop.
"""
