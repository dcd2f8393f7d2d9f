"""Equity-curve and drawdown plots of an agent against its baselines (PNG)."""

from __future__ import annotations

from pathlib import Path

from ploutos_core.evaluation.backtest import EvaluationResult
from ploutos_core.evaluation.metrics import drawdown_series, equity_curve
from ploutos_core.runfiles.atomic import atomic_path


def plot_evaluation(result: EvaluationResult, path: Path) -> Path:
    """Draw equity curves (top) and drawdowns (bottom) and write them to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    dates = result.dates.astype("datetime64[D]").astype(object)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    for backtest in (result.agent, *result.baselines):
        is_agent = backtest.name == "agent"
        style = {"linewidth": 2.2 if is_agent else 1.0, "alpha": 1.0 if is_agent else 0.75,
                 "color": "black" if is_agent else None}
        label = f"{backtest.name} (Sharpe {backtest.summary.sharpe:.2f})"
        top.plot(dates, equity_curve(backtest.returns), label=label, **style)
        bottom.plot(dates, 100 * drawdown_series(backtest.returns), **style)
    sample = "in-sample" if result.in_sample else "out-of-sample"
    top.set_title(f"{result.stage}: {result.split} split {result.start}…{result.end} "
                  f"({sample}, costs {result.cost_bps:g} bps)")
    top.set_ylabel("value (start = 1)")
    top.legend(fontsize=8, loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    deepest = min(100 * drawdown_series(b.returns).min()
                  for b in (result.agent, *result.baselines))
    bottom.set_ylim(top=0.5, bottom=min(-1.0, float(deepest) * 1.1))
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    return path
