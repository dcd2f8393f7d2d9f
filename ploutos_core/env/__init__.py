"""The trading environment: contract for env builders, causal features, the batched env."""
