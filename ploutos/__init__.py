"""Ploutos for notebooks and scripts: train, evaluate and compare from Python.

::

    import ploutos

    run = ploutos.train_curriculum(source="synthetic", scale=0.001, ignore_gates=True,
                                   out_dir="runs/smoke")
    print(run.table())
    evaluation = ploutos.evaluate(run.final_model, source="synthetic", out_dir="runs/smoke")
    evaluation.metrics()

Every ``ploutos`` command calls these functions; see docs/python-api.md. Plugin
authors import :mod:`ploutos_core` instead.
"""

from ploutos_core import __version__
from ploutos_core.api import (
    CurriculumResult,
    EnsembleResult,
    Evaluation,
    compare,
    evaluate,
    evaluate_universes,
    make_ensemble,
    make_registry,
    retrain,
    select_stages,
    signal,
    trade,
    trade_status,
    train_curriculum,
    train_ensemble,
    train_stage,
    tune,
    walkforward,
)
from ploutos_core.comparison.runner import Comparison
from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.trading.cycle import TradeCycle
from ploutos_core.trading.signal import Signal
from ploutos_core.trading.status import TradeStatus
from ploutos_core.training.records import StageResult
from ploutos_core.walkforward.retrain import Retrain
from ploutos_core.walkforward.runner import WalkForward

__all__ = [
    "Comparison",
    "CurriculumResult",
    "EnsembleResult",
    "Evaluation",
    "EvaluationResult",
    "Retrain",
    "Signal",
    "StageResult",
    "TradeCycle",
    "TradeStatus",
    "WalkForward",
    "__version__",
    "compare",
    "evaluate",
    "evaluate_universes",
    "make_ensemble",
    "make_registry",
    "retrain",
    "select_stages",
    "signal",
    "trade",
    "trade_status",
    "train_curriculum",
    "train_ensemble",
    "train_stage",
    "tune",
    "walkforward",
]
