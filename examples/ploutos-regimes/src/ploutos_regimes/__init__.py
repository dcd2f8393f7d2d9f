"""ploutos-regimes: bull, bear and sideways training stages for Ploutos.

A causal classifier labels each day of a market index (SPY by default) by its
trend and volatility (:mod:`ploutos_regimes.classifier`); three day filters
(:mod:`ploutos_regimes.filters`) let training episodes start only on one
regime's days; three stages use them (``regimes.toml``). Ploutos finds all of
it through the ``ploutos`` entry point, :mod:`ploutos_regimes.plugin`.
"""

from ploutos_regimes.classifier import REGIMES, UNKNOWN, RegimeRule, RegimeSignals, classify
from ploutos_regimes.filters import RegimeFilter

__version__ = "0.1.0"

__all__ = ["REGIMES", "UNKNOWN", "RegimeFilter", "RegimeRule", "RegimeSignals", "__version__",
           "classify"]
