"""Judge a stage's validation result against its promotion gate and report its target."""

from __future__ import annotations

import math
from typing import Any

import attrs

from ploutos_core.config.stage import Gate
from ploutos_core.evaluation.backtest import EvaluationResult


@attrs.frozen
class GateVerdict:
    """The outcome of a stage's gate.

    :param passed: every gate the stage sets holds.
    :param sharpe: the agent's validation Sharpe.
    :param benchmark: name of the benchmark baseline.
    :param benchmark_sharpe: its validation Sharpe on the same days and costs.
    :param required: the Sharpe the gate required (the strictest of its conditions),
        or ``None`` when the stage sets no gate.
    :param target: the stage's target Sharpe, or ``None``.
    :param target_met: whether the target was reached (``None`` without a target).
    """

    passed: bool
    sharpe: float
    benchmark: str
    benchmark_sharpe: float
    required: float | None
    target: float | None
    target_met: bool | None

    def describe(self) -> str:
        """``validation Sharpe 0.71; benchmark equal_weight_rebalanced 0.60; gate ≥ 0.60:
        passed; target 1.30: missed``."""
        parts = [f"validation Sharpe {self.sharpe:.2f}",
                 f"benchmark {self.benchmark} {self.benchmark_sharpe:.2f}"]
        if self.required is not None:
            parts.append(f"gate ≥ {self.required:.2f}: {'passed' if self.passed else 'missed'}")
        else:
            parts.append("no gate")
        if self.target is not None:
            parts.append(f"target {self.target:.2f}: {'met' if self.target_met else 'missed'}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return attrs.asdict(self)


def judge_gate(gate: Gate, validation: EvaluationResult) -> GateVerdict:
    """Compare the agent's validation Sharpe with ``gate``.

    :param gate: the stage's gate.
    :param validation: the agent's validation backtest beside its baselines.
    """
    sharpe = validation.agent.summary.sharpe
    benchmark = validation.benchmark
    bench_sharpe = benchmark.summary.sharpe
    required: list[float] = []
    if gate.min_sharpe_vs_benchmark is not None:
        required.append(bench_sharpe + gate.min_sharpe_vs_benchmark)
    if gate.min_validation_sharpe is not None:
        required.append(gate.min_validation_sharpe)
    strictest = max(required) if required else None
    passed = strictest is None or (not math.isnan(sharpe) and sharpe >= strictest)
    target_met = None if gate.target_sharpe is None else bool(sharpe >= gate.target_sharpe)
    return GateVerdict(passed=bool(passed), sharpe=float(sharpe), benchmark=benchmark.name,
                       benchmark_sharpe=float(bench_sharpe), required=strictest,
                       target=gate.target_sharpe, target_met=target_met)
