"""Training: optimizers and schedules, the one trainer loop, metrics."""
