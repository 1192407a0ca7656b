"""Replay fine-tuning: shard reading for PyTorch, the replay mixer, packing, training and evaluation."""
