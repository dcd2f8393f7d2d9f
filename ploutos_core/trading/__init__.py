"""From a trained model to a market: the broker contract, signals, trade cycles and their
reports (issue 12)."""
