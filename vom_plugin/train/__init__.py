"""Training: synthetic clips, dataset loaders, losses and the training loop (``vom train``)."""
