"""The training part: features, augmentation, stacks and model families, fast paths, tuning,
the ensemble, the latency budget, the registry and its gate."""
