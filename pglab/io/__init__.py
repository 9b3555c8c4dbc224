"""What runs write and read: the run log and its sinks (W&B, TensorBoard), checkpoints, environment
state, config files, progress, video.
"""
