"""From a policy's actions to target weights, and from targets to the trades actually made.

Both are part of the environment's accounting, so training, backtests and any
later trading signal apply them identically (issue 11).

Weights have one column per asset plus a last column for cash.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

from ploutos_core.config.stage import EnvSettings
from ploutos_core.env.accounting import softmax

Array = NDArray[np.float64]


def benchmark_weights(benchmark: str, n_assets: int) -> Array:
    """The benchmark portfolio as ``(n_assets + 1,)`` weights (cash last).

    :param benchmark: the stage's ``benchmark`` (``equal_weight``: 1/N, fully invested).
    :raises ValueError: for a benchmark this version does not know.
    """
    if benchmark != "equal_weight":
        raise ValueError(f"unknown benchmark {benchmark!r}; use equal_weight")
    return np.append(np.full(n_assets, 1.0 / n_assets), 0.0)


@attrs.frozen(eq=False)
class ActionMap:
    """Turns actions in ``[-1, 1]`` (one per asset, then cash) into target weights.

    :param settings: the stage's environment settings (``action`` and its scales).
    :param benchmark: ``(n_assets + 1,)`` weights a zero action holds under ``tilt``.
    """

    settings: EnvSettings
    benchmark: Array

    @classmethod
    def for_stage(cls, settings: EnvSettings, benchmark: str, n_assets: int) -> ActionMap:
        """The map of a stage with ``n_assets`` assets."""
        return cls(settings, benchmark_weights(benchmark, n_assets))

    def target_weights(self, actions: NDArray[np.floating]) -> Array:
        """``(n, n_assets + 1)`` target weights of ``(n, n_assets + 1)`` actions."""
        clipped = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        settings = self.settings
        if settings.action == "softmax":
            return softmax(settings.action_scale * clipped)
        # tilt: tilt the benchmark's log-weights; zero benchmark weights stay zero.
        base = self.benchmark[:-1]
        with np.errstate(divide="ignore"):
            logits = np.log(base) + settings.tilt_scale * clipped[:, :-1]
        assets = softmax(logits)
        cash = settings.max_cash * np.clip(clipped[:, -1:], 0.0, 1.0)
        return np.concatenate([assets * (1.0 - cash), cash], axis=1)

    def action_for(self, weights: Array) -> NDArray[np.float32]:
        """An action whose target weights are ``weights`` (``(n, n_assets + 1)``), as nearly
        as actions in ``[-1, 1]`` can express them (exactly when they can).

        Softmax maps are unchanged by adding a constant to every score, so the scores are
        centred before clipping; an ensemble averages its members' target weights and
        acts with this.
        """
        settings = self.settings
        weights = np.clip(np.asarray(weights, dtype=np.float64), 1e-12, None)
        if settings.action == "softmax":
            scores = np.log(weights) / settings.action_scale
            return _centred(scores).astype(np.float32)
        cash = weights[:, -1:]
        invested = np.clip(1.0 - cash, 1e-12, None)
        base = self.benchmark[:-1]
        held = base > 0
        tilt = np.zeros_like(weights[:, :-1])
        tilt[:, held] = (np.log(weights[:, :-1][:, held] / invested)
                         - np.log(base[held])) / settings.tilt_scale
        tilt[:, held] = _centred(tilt[:, held])
        cash_action = cash / settings.max_cash if settings.max_cash > 0 else np.zeros_like(cash)
        action: NDArray[np.float32] = np.clip(np.concatenate([tilt, cash_action], axis=1),
                                              -1.0, 1.0).astype(np.float32)
        return action

    def neutral_action(self) -> NDArray[np.float32]:
        """The action whose target is the benchmark (``tilt``) or equal weights (``softmax``)."""
        return np.zeros(self.benchmark.shape[0], dtype=np.float32)


def _centred(scores: Array) -> Array:
    """Scores shifted so their largest and smallest are symmetric around 0, then clipped."""
    middle = (scores.max(axis=-1, keepdims=True) + scores.min(axis=-1, keepdims=True)) / 2
    return np.clip(scores - middle, -1.0, 1.0)  # type: ignore[no-any-return]


def smooth_target(previous: Array, target: Array, settings: EnvSettings) -> Array:
    """The next smoothed target: ``smoothing × previous + (1 − smoothing) × target``.

    :param previous: ``(n, n_assets + 1)`` the smoothed target of the day before (the
        benchmark on an episode's first day).
    :param target: ``(n, n_assets + 1)`` today's target of the policy.
    """
    smoothing = settings.target_smoothing
    return target if smoothing <= 0.0 else smoothing * previous + (1.0 - smoothing) * target


def apply_turnover_rule(drifted: Array, target: Array, settings: EnvSettings) -> Array:
    """The weights actually traded to: ``target``, unless the turnover needed to reach it
    is at most ``no_trade_band``; then nothing trades.

    :param drifted: ``(n, n_assets + 1)`` weights before trading.
    :param target: ``(n, n_assets + 1)`` (smoothed) target weights.
    :param settings: the stage's ``no_trade_band``.
    """
    band = settings.no_trade_band
    if band <= 0.0:
        return target
    turnover = np.abs(target[..., :-1] - drifted[..., :-1]).sum(axis=-1)
    return np.where((turnover > band)[..., None], target, drifted)
