"""A stage's training universe: the prices of a wider pool of tickers, each on its own history.

Tickers of a pool start trading on different days (META in 2012, GOOGL in 2004), so
each is loaded and validated alone, through the end of the *train* split only: the
pool is never seen on validation or test days. Episodes later sample, from the
tickers that trade through their whole window, sub-universes as large as the
stage's own (``ploutos_core.env.portfolio``).
"""

from __future__ import annotations

import warnings

import attrs

from ploutos_core.config.stage import StageSpec
from ploutos_core.data.loading import load_panel
from ploutos_core.data.panel import Panel
from ploutos_core.data.source import DataSource
from ploutos_core.data.stage_data import DataOptions, stage_request
from ploutos_core.data.validation import NoDataInRange
from ploutos_core.errors import DataError, PloutosWarning


@attrs.frozen(eq=False)
class Universe:
    """Prices of the pool, one single-ticker panel each.

    :param panels: the tickers that loaded, in the pool's order.
    :param skipped: ``(ticker, reason)`` of those that did not (too little history).
    """

    panels: tuple[Panel, ...]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def tickers(self) -> tuple[str, ...]:
        """The tickers that loaded."""
        return tuple(panel.tickers[0] for panel in self.panels)


def load_universe(source: DataSource, stage: StageSpec, options: DataOptions) -> Universe:
    """Load every ticker of ``stage.universe`` through the end of the train split.

    A ticker whose data end before the train split or that has fewer days than the
    features need is skipped (and listed); a ticker the source does not know is an
    error, as it is for a stage's own tickers.

    :raises DataError: for unknown or corrupt data, or when fewer tickers than the
        stage trades remain.
    """
    pool = stage.universe.tickers
    panels: list[Panel] = []
    skipped: list[tuple[str, str]] = []
    first_train_day = stage.splits.train.start
    for ticker in pool:
        try:
            with warnings.catch_warnings():
                # Each ticker stands on its own history: a late start is expected here.
                warnings.simplefilter("ignore", PloutosWarning)
                panel = load_panel(source, stage_request(stage, options, "train", (ticker,)))
        except NoDataInRange:
            skipped.append((ticker, "no prices before the end of the train split"))
            continue
        except DataError as exc:
            raise DataError(
                f"{stage.name}: [stage.universe] ticker {ticker!r}: {exc}; give the source "
                f"every universe ticker, or train on a --stage-file copy of {stage.name} "
                f"without [stage.universe]"
            ) from exc
        last = panel.date(panel.n_days - 1)
        needed = stage.env.warmup_days + stage.env.window + stage.env.episode_length
        if first_train_day is not None and last < first_train_day:
            skipped.append((ticker, f"its data end {last}, before the train split"))
        elif panel.n_days < needed:
            skipped.append((ticker, f"{panel.n_days} days, fewer than the {needed} that "
                                    f"features and one episode need"))
        else:
            panels.append(panel)
    if len(panels) < len(stage.tickers):
        raise DataError(
            f"{stage.name}: only {len(panels)} of the {len(pool)} universe tickers have enough "
            f"history before {stage.splits.train.end}, fewer than the {len(stage.tickers)} "
            f"assets an episode samples; add tickers to [stage.universe]"
        )
    return Universe(panels=tuple(panels), skipped=tuple(skipped))
