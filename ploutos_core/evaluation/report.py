"""Write evaluation reports: JSON, a Markdown summary, a terminal table and the plot."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from ploutos_core.evaluation.backtest import Backtest, EvaluationResult, daily_frame
from ploutos_core.evaluation.plots import plot_evaluation
from ploutos_core.evaluation.tables import markdown_table, text_table
from ploutos_core.runfiles.atomic import write_json, write_text


@attrs.frozen
class ReportFiles:
    """Files written for one evaluation."""

    json: Path
    markdown: Path
    plot: Path
    daily: Path


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return pattern.format(value)


def _row(backtest: Backtest) -> list[str]:
    s = backtest.summary
    return [
        backtest.name,
        _fmt(s.sharpe),
        f"[{_fmt(s.sharpe_ci_low)}, {_fmt(s.sharpe_ci_high)}]",
        _fmt(s.sortino),
        _fmt(100 * s.cagr, "{:.1f}%"),
        _fmt(100 * s.volatility, "{:.1f}%"),
        _fmt(100 * s.max_drawdown, "{:.1f}%"),
        _fmt(s.calmar),
        _fmt(100 * backtest.average_turnover, "{:.2f}%"),
        _fmt(100 * backtest.total_costs, "{:.2f}%"),
        _fmt(s.final_value, "{:.3f}"),
        _fmt(s.success_rate, "{:.0%}"),
    ]


HEADER = ["strategy", "Sharpe", "95% CI", "Sortino", "CAGR", "vol", "max DD", "Calmar",
          "turnover/d", "costs", "final", "success"]


def table_rows(result: EvaluationResult) -> list[list[str]]:
    """Header plus one row per strategy (agent first)."""
    return [HEADER] + [_row(b) for b in (result.agent, *result.baselines)]


def format_table(result: EvaluationResult) -> str:
    """A fixed-width table for the terminal, with the comparison line below."""
    return "\n".join([_title(result), *text_table(table_rows(result)), _comparison(result)])


def _title(result: EvaluationResult) -> str:
    sample = ("IN-SAMPLE (training data): not an out-of-sample result" if result.in_sample
              else "out-of-sample")
    return (f"{result.stage} on the {result.split} split {result.start}…{result.end}, "
            f"{result.agent.summary.n_days} days, costs {result.cost_bps:g} bps — {sample}")


def _comparison(result: EvaluationResult) -> str:
    p_value = result.bootstrap_p_value
    lines = [f"agent Sharpe − best baseline ({result.best_baseline.name}) = "
             f"{_fmt(result.sharpe_vs_best_baseline)}; probabilistic Sharpe ratio vs it "
             f"{_fmt(result.probabilistic_sharpe)}; bootstrap p-value "
             f"{_fmt(p_value, '{:.3f}') if p_value is not None else 'n/a (constant baseline)'}"]
    if result.tickers:
        benchmark = result.benchmark
        lines.append(f"agent Sharpe − benchmark ({benchmark.name}) = "
                     f"{_fmt(result.agent.summary.sharpe - benchmark.summary.sharpe)}; "
                     f"deflated Sharpe ratio {_fmt(result.deflated_sharpe)} for "
                     f"{result.trials} configuration{'s' if result.trials != 1 else ''} tried")
    return "\n".join(lines)


def markdown_summary(result: EvaluationResult, plot_name: str) -> str:
    """A short Markdown report with the table and the plot."""
    table = markdown_table(table_rows(result))
    return "\n".join([
        f"# {result.stage} — {result.split} split", "",
        _title(result) + ".", "",
        f"Model: `{result.model}`", "",
        *table, "",
        _comparison(result) + ".", "",
        "Success rate: share of consecutive 21-day windows with a positive net return.", "",
        f"![equity and drawdown]({plot_name})", "",
    ])


def write_reports(result: EvaluationResult, directory: Path, stem: str | None = None,
                  training: Mapping[str, Any] | None = None) -> ReportFiles:
    """Write ``<stem>.json``, ``<stem>.md``, ``<stem>.png`` and ``<stem>_daily.csv`` (every
    strategy's daily weights, returns, equity, turnover and costs) under ``directory``.

    :param stem: file name stem; defaults to the split name.
    :param training: how the model was trained (algorithm, steps, hyperparameters,
        whether they were tuned), recorded beside the results.
    """
    stem = stem or result.split
    files = ReportFiles(json=directory / f"{stem}.json", markdown=directory / f"{stem}.md",
                        plot=directory / f"{stem}.png", daily=directory / f"{stem}_daily.csv")
    payload = result.to_dict()
    if training:
        payload["training"] = dict(training)
    write_json(files.json, payload)
    write_text(files.daily, daily_frame(result).to_csv(index=False, float_format="%.10g"))
    plot_evaluation(result, files.plot)
    summary = markdown_summary(result, files.plot.name)
    if training:
        summary += "\nTrained with: " + ", ".join(
            f"{key} `{value}`" for key, value in training.items() if value is not None) + "\n"
    write_text(files.markdown, summary)
    return files
