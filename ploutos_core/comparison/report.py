"""Reports of ``ploutos compare``: terminal tables, Markdown, the plot and the files."""

from __future__ import annotations

import math
from pathlib import Path

import attrs

from ploutos_core.comparison.runner import (
    ARMS,
    METRICS,
    Comparison,
    Metric,
    Spread,
    sign_test_p_value,
)
from ploutos_core.evaluation.metrics import equity_curve
from ploutos_core.evaluation.tables import markdown_table, text_table
from ploutos_core.runfiles.atomic import atomic_path, write_json, write_text


def _spread_cells(metric: Metric, spread: Spread) -> list[str]:
    return [metric.format(spread.median),
            f"{metric.format(spread.minimum)} – {metric.format(spread.maximum)}",
            f"{metric.format(spread.q1)} – {metric.format(spread.q3)}"]


def summary_rows(comparison: Comparison) -> list[list[str]]:
    """Per metric: each arm's median, min–max and IQR, and the median difference."""
    rows = [["metric", "curriculum median", "min – max", "IQR", "scratch median", "min – max",
             "IQR", "Δ median", "curriculum better"]]
    for metric in METRICS:
        diffs = comparison.differences(metric)
        better = f"{comparison.wins(metric)[0]}/{len(diffs)}" if metric.better else "—"
        rows.append([metric.label, *_spread_cells(metric, comparison.spread("curriculum", metric)),
                     *_spread_cells(metric, comparison.spread("scratch", metric)),
                     metric.format(Spread.of(diffs).median, signed=True), better])
    return rows


def seed_rows(comparison: Comparison) -> list[list[str]]:
    """Per seed: both arms' Sharpe, the difference, and the steps each arm trained."""
    sharpe = METRICS[0]
    rows = [["seed", "curriculum Sharpe", "scratch Sharpe", "Δ Sharpe", "curriculum steps",
             "scratch steps"]]
    curriculum, scratch = comparison.arm("curriculum"), comparison.arm("scratch")
    for c, s, diff in zip(curriculum, scratch, comparison.differences(sharpe), strict=True):
        rows.append([str(c.seed), sharpe.format(sharpe.get(c.evaluation.agent)),
                     sharpe.format(sharpe.get(s.evaluation.agent)), sharpe.format(diff, True),
                     f"{c.num_timesteps:,} / {c.target_timesteps:,}",
                     f"{s.num_timesteps:,} / {s.target_timesteps:,}"])
    return rows


def baseline_rows(comparison: Comparison) -> list[list[str]]:
    """The baselines once (they are the same for every seed)."""
    rows = [["baseline", *(m.label for m in METRICS)]]
    rows += [[b.name, *(m.format(m.get(b)) for m in METRICS)] for b in comparison.baselines]
    return rows


def _title(comparison: Comparison) -> str:
    reference = comparison.reference
    scratch = comparison.arm("scratch")[0]
    return (f"curriculum {comparison.curriculum!r} ({' → '.join(comparison.stages)}) vs "
            f"{reference.stage} from scratch with the same {scratch.target_timesteps:,} steps, "
            f"{len(comparison.seeds)} seed(s) {', '.join(map(str, comparison.seeds))}; "
            f"validation split of {reference.stage} {reference.start}…{reference.end}, "
            f"{reference.agent.summary.n_days} days, costs {reference.cost_bps:g} bps "
            f"(out-of-sample)")


def verdict(comparison: Comparison) -> str:
    """One sentence on the validation Sharpe, against scratch and the best baseline."""
    sharpe = METRICS[0]
    wins, losses = comparison.wins(sharpe)
    best = comparison.reference.best_baseline
    median_diff = Spread.of(comparison.differences(sharpe)).median
    median_curriculum = comparison.spread("curriculum", sharpe).median
    p_value = sign_test_p_value(wins, losses)
    p_text = "n/a" if math.isnan(p_value) else f"{p_value:.3f}"
    return (f"curriculum − scratch validation Sharpe: median {sharpe.format(median_diff, True)}, "
            f"curriculum better in {wins} of {len(comparison.seeds)} seeds (one-sided sign "
            f"test p = {p_text}); median curriculum Sharpe − best baseline "
            f"({best.name}, {sharpe.format(best.summary.sharpe)}) = "
            f"{sharpe.format(median_curriculum - best.summary.sharpe, True)}")


def step_note(comparison: Comparison, tolerance: float = 0.01) -> str | None:
    """A warning when the arms' *trained* steps differ by more than ``tolerance``.

    Both arms get the same target, but PPO trains whole rollouts, so each stage of
    the curriculum rounds up on its own; at smoke-test scales that adds up.
    """
    worst = 0.0
    for c, s in zip(comparison.arm("curriculum"), comparison.arm("scratch"), strict=True):
        if s.num_timesteps > 0:
            worst = max(worst, abs(c.num_timesteps / s.num_timesteps - 1.0))
    if worst <= tolerance:
        return None
    return (f"note: the arms had the same target but trained up to {worst:.0%} different "
            f"steps (PPO rounds every stage up to whole rollouts of n_steps × n_envs); "
            f"use a larger --scale for a fair budget")


def format_comparison(comparison: Comparison) -> str:
    """The terminal report: summary, per-seed and baseline tables and the verdict."""
    note = step_note(comparison)
    return "\n".join([
        _title(comparison), "", *text_table(summary_rows(comparison)), "",
        *text_table(seed_rows(comparison)), *([note] if note else []), "",
        "baselines (same days and costs for every seed):", *text_table(baseline_rows(comparison)),
        "", verdict(comparison),
    ])


def markdown_report(comparison: Comparison, plot_name: str) -> str:
    """The Markdown report with the tables and the plot."""
    note = step_note(comparison)
    return "\n".join([
        f"# Curriculum vs scratch — {comparison.curriculum}", "", _title(comparison) + ".", "",
        "## Median and spread across seeds", "", *markdown_table(summary_rows(comparison)), "",
        "Δ is curriculum − scratch per seed; \"curriculum better\" counts the seeds where "
        "the curriculum had the better value (lower for max drawdown).", "",
        "## Per seed", "", *markdown_table(seed_rows(comparison)), "",
        "Steps: trained / target (PPO rounds up to whole rollouts).", "",
        *([note, ""] if note else []),
        "## Baselines (identical for every seed)", "",
        *markdown_table(baseline_rows(comparison)), "",
        verdict(comparison) + ".", "",
        f"![per-seed Sharpe and equity curves]({plot_name})", "",
    ])


def plot_comparison(comparison: Comparison, path: Path) -> Path:
    """Per-seed validation Sharpe of both arms (left) and every seed's equity curve (right)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    colors = {"curriculum": "tab:blue", "scratch": "tab:orange"}
    sharpe = METRICS[0]
    best = comparison.reference.best_baseline
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 5),
                                         gridspec_kw={"width_ratios": [1, 2]})
    curriculum, scratch = (comparison.values(arm, sharpe) for arm in ARMS)
    for c, s in zip(curriculum, scratch, strict=True):  # pair each seed's two arms
        left.plot([0, 1], [c, s], color="grey", alpha=0.5, linewidth=0.8)
    for x, arm in enumerate(ARMS):
        values = comparison.values(arm, sharpe)
        left.scatter([x] * len(values), values, color=colors[arm], zorder=3, label=arm)
        median = comparison.spread(arm, sharpe).median
        left.plot([x - 0.2, x + 0.2], [median, median], color=colors[arm], linewidth=2.5)
    left.axhline(best.summary.sharpe, color="black", linestyle="--", linewidth=1,
                 label=f"best baseline ({best.name})")
    left.set_xticks([0, 1], list(ARMS))
    left.set_xlim(-0.5, 1.5)
    left.set_ylabel("validation Sharpe")
    left.set_title("per seed (bar: median)")
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    dates = comparison.reference.dates.astype("datetime64[D]").astype(object)
    for arm in ARMS:
        for index, run in enumerate(comparison.arm(arm)):
            right.plot(dates, equity_curve(run.evaluation.agent.returns), color=colors[arm],
                       alpha=0.6, linewidth=1.0, label=arm if index == 0 else None)
    right.plot(dates, equity_curve(best.returns), color="black", linestyle="--", linewidth=1.2,
               label=f"best baseline ({best.name})")
    right.set_ylabel("value (start = 1)")
    right.set_title(f"{comparison.reference.stage} validation, one line per seed")
    right.legend(fontsize=8, loc="upper left")
    right.grid(alpha=0.3)
    figure.suptitle(f"curriculum {comparison.curriculum!r} vs scratch, "
                    f"costs {comparison.reference.cost_bps:g} bps")
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    plt.close(figure)
    return path


@attrs.frozen
class ComparisonFiles:
    """Files written for one comparison."""

    json: Path
    markdown: Path
    plot: Path


def write_comparison(comparison: Comparison, directory: Path) -> ComparisonFiles:
    """Write ``compare.json``, ``compare.md`` and ``compare.png`` under ``directory``."""
    files = ComparisonFiles(json=directory / "compare.json", markdown=directory / "compare.md",
                            plot=directory / "compare.png")
    write_json(files.json, comparison.to_dict())
    plot_comparison(comparison, files.plot)
    write_text(files.markdown, markdown_report(comparison, files.plot.name))
    return files

