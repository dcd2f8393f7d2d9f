"""The day-filter contract: choose the days on which training episodes may start."""

from __future__ import annotations

import abc
from collections.abc import Callable

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import StageSpec
from ploutos_core.data.panel import Panel


@attrs.frozen(eq=False)
class DayFilterContext:
    """What a day filter may look at.

    :param panel: the stage's aligned prices (warm-up history included).
    :param stage: the stage.
    :param load_close: ``load_close(ticker)`` returns that ticker's close prices on
        ``panel``'s calendar from the same data source (e.g. an index such as SPY
        that the stage does not trade); it raises ``DataError`` on missing days.
    """

    panel: Panel
    stage: StageSpec
    load_close: Callable[[str], NDArray[np.float64]]


class DayFilter(abc.ABC):
    """A named rule, registered by a plugin, that marks allowed episode-start days.

    Stages refer to it with ``[stage.env] day_filter = "NAME"``. The rule must
    be causal: whether day ``t`` is allowed may depend on data up to ``t`` only.
    """

    #: registered name.
    name: str = ""
    #: one line for listings.
    description: str = ""

    @abc.abstractmethod
    def select(self, context: DayFilterContext) -> NDArray[np.bool_]:
        """A boolean array over ``context.panel``'s days; true where episodes may start."""
