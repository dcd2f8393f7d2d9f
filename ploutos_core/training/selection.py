"""Model selection during training: evaluate every ``--eval-freq`` steps, keep the best.

Scores on the stage's selection window (the end of the train split, held out of
training when a run selects models), so the validation split stays out of sample.
A stage without a window is scored on validation, and the run says so (issue 11).
"""

from __future__ import annotations

from typing import Any

from ploutos_core.agents.contract import Agent
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.evaluation.evaluate import evaluate_agent
from ploutos_core.training.builder import build_env
from ploutos_core.training.context import StageContext
from ploutos_core.training.monitor import PeriodicEvaluation
from ploutos_core.training.records import StageRun


def selection_split(ctx: StageContext) -> str:
    """Where the stage's models are selected, warning once when that is validation."""
    split = ctx.stage.splits.selection_split
    if split == "validation":
        ctx.run.echo(f"{ctx.stage.name}: no [stage.splits] selection window; models are "
                     f"selected on validation, which is then no longer out of sample")
    return split


def periodic_evaluator(ctx: StageContext, run: StageRun) -> PeriodicEvaluation:
    """Evaluate on the selection window every ``eval_freq`` steps; keep the best model
    as ``models/<stage>/best.zip``."""
    split = selection_split(ctx)
    env = build_env(ctx, split, mode="backtest")  # type: ignore[arg-type]
    stage = ctx.stage
    best_path = ctx.run.layout.best_model(stage.name)
    best = {"sharpe": float("-inf")}
    if run.resume_from is not None and best_path.exists():
        # A resumed stage competes with the best model of the interrupted invocation.
        best["sharpe"] = float(read_metadata(best_path).get("selection_sharpe", best["sharpe"]))

    def evaluate(agent: Agent, num_timesteps: int) -> dict[str, Any]:
        result = evaluate_agent(agent, ctx.registry, stage, ctx.panel, split,  # type: ignore[arg-type]
                                model="periodic", env=env)
        summary = result.agent.summary
        if summary.sharpe > best["sharpe"]:
            best["sharpe"] = summary.sharpe
            agent.save(best_path, {**run.model_metadata(), "selection_split": split,
                                   "selection_sharpe": summary.sharpe,
                                   "selection_step": num_timesteps})
            ctx.run.record_stage(stage.name, best_model=str(best_path),
                                 best_selection_sharpe=summary.sharpe, best_step=num_timesteps,
                                 selection_split=split)
        return {"eval/sharpe": summary.sharpe, "eval/portfolio_value": summary.final_value,
                "eval/max_drawdown": summary.max_drawdown,
                "eval/best_sharpe": best["sharpe"]}

    return evaluate
