"""The folds of a walk-forward: where each one trains and what it trades out of sample.

Retraining dates fall every ``retrain_every`` trading days from the first trading day on
or after ``--from``. Fold *k* trains on data strictly before its first trading day (the
stage's train start onward with an expanding window, or the last N trading days with a
rolling one) and trades from that day until the day before the next fold's first.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs
import numpy as np

from ploutos_core.config.stage import StageSpec, trading_splits
from ploutos_core.data.panel import DateRange, Panel
from ploutos_core.errors import ConfigError


@attrs.frozen
class Window:
    """The training window of each fold.

    :param kind: ``expanding`` (from the stage's train start) or ``rolling``.
    :param days: trading days of a rolling window.
    """

    kind: Literal["expanding", "rolling"] = "expanding"
    days: int | None = None

    @classmethod
    def parse(cls, text: str) -> Window:
        """``expanding`` or ``rolling:N`` (N trading days).

        :raises ConfigError: for anything else.
        """
        text = text.strip()
        if text == "expanding":
            return cls()
        kind, _, days = text.partition(":")
        if kind == "rolling" and days.isdigit() and int(days) > 0:
            return cls("rolling", int(days))
        raise ConfigError(f"--window {text!r}: use expanding or rolling:N_DAYS (e.g. "
                          f"rolling:756 for three years of trading days)")

    def __str__(self) -> str:
        return self.kind if self.days is None else f"{self.kind}:{self.days}"


@attrs.frozen
class Fold:
    """One retraining date and the period it trades.

    :param index: 1-based position.
    :param train: the training range; it ends on the trading day before ``first``.
    :param first: the fold's first trading day (its retraining date).
    :param last: its last decision day (the day before the next fold's first).
    :param first_row: ``first``'s row in the walk-forward's panel.
    :param last_row: ``last``'s row.
    """

    index: int
    train: DateRange
    first: dt.date
    last: dt.date
    first_row: int
    last_row: int

    @property
    def name(self) -> str:
        """``fold_001`` …: the fold's directory name."""
        return f"fold_{self.index:03d}"

    def stage(self, stage: StageSpec, next_day: dt.date) -> StageSpec:
        """``stage`` with splits that train on :attr:`train` and trade ``first…next_day``
        (a stage with adjusted splits: the builder trains it like any other)."""
        return attrs.evolve(stage, splits=trading_splits(self.train,
                                                         DateRange(self.first, next_day)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fold."""
        return {"index": self.index, "train_start": _iso(self.train.start),
                "train_end": _iso(self.train.end), "first": self.first.isoformat(),
                "last": self.last.isoformat()}


def _iso(day: dt.date | None) -> str | None:
    return day.isoformat() if day else None


def plan_folds(panel: Panel, stage: StageSpec, start: dt.date, end: dt.date | None,
               every: int, window: Window) -> list[Fold]:
    """The folds over ``start…end`` of ``panel``'s trading days.

    :param every: trading days between retraining dates.
    :raises ConfigError: when the period is empty, or too little history precedes it.
    """
    if every < 1:
        raise ConfigError(f"--retrain-every must be >= 1 trading day, got {every}")
    dates = panel.dates
    first_row = int(np.searchsorted(dates, np.datetime64(start, "D")))
    end_row = panel.n_days - 1 if end is None else \
        int(np.searchsorted(dates, np.datetime64(end, "D"), "right")) - 1
    if first_row >= panel.n_days or end_row - first_row < 1:
        have = f"{panel.date(0)}…{panel.date(panel.n_days - 1)}"
        raise ConfigError(f"the walk-forward period {start}…{end or ''} holds fewer than two "
                          f"trading days of the data ({have}); choose --from/--to inside it")
    train_start = stage.splits.train.start
    base_row = 0 if train_start is None else \
        int(np.searchsorted(dates, np.datetime64(train_start, "D")))
    need = stage.env.episode_length + 1
    if first_row - base_row < need:
        raise ConfigError(f"--from {start}: only {max(first_row - base_row, 0)} trading days "
                          f"of training data before it (from {panel.date(base_row)}); a fold "
                          f"needs at least {need} (one episode); start later")
    folds = []
    for index, row in enumerate(range(first_row, end_row, every), start=1):
        last_row = min(row + every, end_row) - 1
        lo = base_row if window.days is None else max(0, row - window.days)
        folds.append(Fold(index=index,
                          train=DateRange(panel.date(lo) if window.days else train_start,
                                          panel.date(row - 1)),
                          first=panel.date(row), last=panel.date(last_row), first_row=row,
                          last_row=last_row))
    return folds
