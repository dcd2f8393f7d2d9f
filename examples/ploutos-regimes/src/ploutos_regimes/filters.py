"""Day filters ``bull``, ``bear`` and ``sideways``: allow episode starts on one regime's days."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from ploutos_core import DayFilter, DayFilterContext

from ploutos_regimes.classifier import DEFAULT_RULE, REGIMES, RegimeRule, classify

#: the market index the built-in filters classify.
DEFAULT_INDEX = "SPY"


class RegimeFilter(DayFilter):
    """Allow training episodes to start only on days of one regime of an index.

    The index need not be one of the stage's tickers: its closes come from the
    stage's data source through ``context.load_close``, on the stage's calendar.

    :param regime: ``bull``, ``bear`` or ``sideways``.
    :param index: the ticker whose trend and volatility define the regime.
    :param rule: windows and thresholds of the classifier.
    :param name: registered name (default: the regime).
    """

    def __init__(self, regime: str, index: str = DEFAULT_INDEX, rule: RegimeRule = DEFAULT_RULE,
                 name: str | None = None) -> None:
        if regime not in REGIMES:
            raise ValueError(f"unknown regime {regime!r}; use one of {', '.join(REGIMES)}")
        self.regime = regime
        self.index = index
        self.rule = rule
        self.name = name or regime
        self.description = (f"days when {index} is in a {regime} regime (trend vs its "
                            f"{rule.trend_window}-day mean, {rule.vol_window}-day volatility)")

    def select(self, context: DayFilterContext) -> NDArray[np.bool_]:
        """True on the panel days whose label is this filter's regime."""
        labels = classify(context.load_close(self.index), self.rule).labels
        return np.asarray(labels == self.regime, dtype=bool)
