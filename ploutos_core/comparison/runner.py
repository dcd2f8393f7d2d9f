"""Seeds and ablation: the curriculum against a from-scratch agent with the same steps.

For every seed, ``ploutos compare`` trains two arms, each in its own run directory:

* ``curriculum``: the selected stages in order, each starting from the previous
  stage's final model (gates ignored, so every seed finishes);
* ``scratch``: the curriculum's last stage alone, from random weights, trained for
  the whole curriculum's step budget (the sum of every stage's scaled timesteps).

Both final models are then backtested on the validation split of the last stage
(same days, same costs), and the median and spread across seeds of each arm's
metrics, the per-seed difference curriculum − scratch and the baselines (the same
for every seed) are reported. This is how a user checks the claim that each
stage benefits from the previous one (issue 4, "Seeds and ablation").

::

    <out>/seed<k>/curriculum/   a complete run directory (models/, logs/, reports/)
    <out>/seed<k>/scratch/      the same for the from-scratch agent
    <out>/reports/compare.json  every number below, machine-readable
    <out>/reports/compare.md    the tables as Markdown
    <out>/reports/compare.png   per-seed Sharpe and validation equity curves
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs
import click
import numpy as np

from ploutos_core.agents.device import resolve_device
from ploutos_core.agents.model_files import read_metadata
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.panel import Panel
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from ploutos_core.errors import ConfigError
from ploutos_core.evaluation.backtest import Backtest, EvaluationResult
from ploutos_core.evaluation.evaluate import (
    build_backtest_env,
    evaluate_agent,
    load_for_evaluation,
)
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.atomic import json_number
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.training.builder import scaled_timesteps
from ploutos_core.training.runner import CurriculumRunner, RunOptions

Arm = Literal["curriculum", "scratch"]
ARMS: tuple[Arm, ...] = ("curriculum", "scratch")


# --- the two arms -----------------------------------------------------------------------


def total_timesteps(stages: Sequence[StageSpec], scale: float) -> int:
    """Steps the whole curriculum trains: the sum of every stage's scaled timesteps."""
    return sum(scaled_timesteps(stage, scale) for stage in stages)


def scratch_stage(stages: Sequence[StageSpec], scale: float) -> StageSpec:
    """The last stage under the name ``<stage>_scratch`` with the whole curriculum's budget.

    Its ``timesteps`` are already scaled: train it with ``scale=1``. The new name
    keeps its files apart from the curriculum's in every layout.
    """
    last = stages[-1]
    return attrs.evolve(last, name=f"{last.name}_scratch",
                        timesteps=total_timesteps(stages, scale),
                        description=f"{last.name} from scratch with the curriculum's steps")


def _check_seeds(instance: object, attribute: attrs.Attribute[tuple[int, ...]],
                 value: tuple[int, ...]) -> None:
    if not value:
        raise ConfigError("compare needs at least one seed; use --seeds 3 or --seed-list 0,1,2")
    if any(seed < 0 for seed in value):
        raise ConfigError(f"seeds must be >= 0, got {list(value)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"seeds must not repeat, got {list(value)}")


@attrs.frozen
class CompareOptions:
    """Settings of one ``ploutos compare`` invocation.

    :param out_dir: holds ``seed<k>/<arm>/`` run directories and ``reports/compare.*``.
    :param seeds: training seeds; each trains both arms.
    :param data: where prices come from; its seed is the market's (the same for every
        training seed, so baselines and days agree across seeds).
    :param device: ``auto``, ``cpu`` or ``cuda``.
    :param scale: multiplies every stage's timesteps.
    :param n_envs: environments per stage instead of the stage's figure.
    :param resume: skip finished seed/arm runs, continue interrupted ones.
    :param overwrite: replace outputs of an earlier comparison.
    :param progress: show progress bars.
    """

    out_dir: Path = Path("compare")
    seeds: tuple[int, ...] = attrs.field(default=(0, 1, 2), validator=_check_seeds)
    data: DataOptions = attrs.field(factory=DataOptions)
    device: str = "auto"
    scale: float = 1.0
    n_envs: int | None = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.scale > 0 or self.scale == float("inf"):
            raise ConfigError(f"--scale must be a finite number > 0, got {self.scale}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ConfigError(f"--n-envs must be >= 1, got {self.n_envs}")

    def run_dir(self, seed: int, arm: Arm) -> Path:
        """``<out>/seed<seed>/<arm>``."""
        return self.out_dir / f"seed{seed}" / arm

    def run_options(self, seed: int, arm: Arm) -> RunOptions:
        """Options of one arm's :class:`CurriculumRunner` (gates ignored)."""
        return RunOptions(out_dir=self.run_dir(seed, arm), data=self.data, seed=seed,
                          device=self.device, scale=self.scale if arm == "curriculum" else 1.0,
                          n_envs=self.n_envs, resume=self.resume, overwrite=self.overwrite,
                          ignore_gates=True, progress=self.progress)


# --- aggregation ------------------------------------------------------------------------


def _quantile(values: Sequence[float], q: float) -> float:
    """NumPy's linear quantile, except between two equal neighbours (``inf`` and ``inf``
    interpolate to NaN in NumPy; the quantile is ``inf``)."""
    low = float(np.quantile(values, q, method="lower"))
    high = float(np.quantile(values, q, method="higher"))
    return low if low == high else float(np.quantile(values, q))


@attrs.frozen
class Spread:
    """Median and spread of one metric across seeds.

    :param median: the median (mean of the two middle values for an even count).
    :param minimum: the smallest value.
    :param maximum: the largest value.
    :param q1: the 25th percentile (linear interpolation).
    :param q3: the 75th percentile.
    :param n: values counted (NaN values, e.g. an undefined success rate, are left out).
    """

    median: float
    minimum: float
    maximum: float
    q1: float
    q3: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """Summarise ``values``; all-NaN or empty input gives NaN fields and ``n = 0``."""
        ordered = sorted(v for v in values if not math.isnan(v))
        if not ordered:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
        median, q1, q3 = (_quantile(ordered, q) for q in (0.5, 0.25, 0.75))
        return cls(median=median, minimum=ordered[0], maximum=ordered[-1], q1=q1, q3=q3,
                   n=len(ordered))

    def to_dict(self) -> dict[str, float | int | None]:
        """JSON-ready fields (non-finite numbers become ``None``)."""
        return {"median": json_number(self.median), "min": json_number(self.minimum),
                "max": json_number(self.maximum), "q1": json_number(self.q1),
                "q3": json_number(self.q3), "n": self.n}


def sign_test_p_value(wins: int, losses: int) -> float:
    """One-sided sign test: P(at least ``wins`` of ``wins + losses`` fair coin flips).

    Ties are left out before calling. With three seeds the smallest possible value
    is 0.125, which is why the report says "indicative" rather than "significant".
    """
    n = wins + losses
    if n == 0:
        return math.nan
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / math.pow(2, n)


@attrs.frozen
class Metric:
    """A validation metric compared across arms.

    :param key: JSON key.
    :param label: table heading.
    :param get: reads the value from a backtest.
    :param percent: shown as a percentage.
    :param decimals: digits after the point in tables.
    :param better: ``higher``/``lower`` when one direction is better, else ``None``.
    """

    key: str
    label: str
    get: Callable[[Backtest], float]
    percent: bool
    decimals: int
    better: Literal["higher", "lower"] | None

    def format(self, value: float, signed: bool = False) -> str:
        """``value`` for a table (``n/a`` when NaN, ``+`` shown when ``signed``)."""
        sign = "+" if signed else ""
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return f"{sign}inf" if value > 0 else "-inf"
        value += 0.0  # no "-0.0%" for a zero drawdown
        if self.percent:
            return f"{100 * value:{sign}.{self.decimals}f}%"
        return f"{value:{sign}.{self.decimals}f}"


METRICS: tuple[Metric, ...] = (
    Metric("sharpe", "Sharpe", lambda b: b.summary.sharpe, False, 2, "higher"),
    Metric("sortino", "Sortino", lambda b: b.summary.sortino, False, 2, "higher"),
    Metric("cagr", "CAGR", lambda b: b.summary.cagr, True, 1, "higher"),
    Metric("max_drawdown", "max DD", lambda b: b.summary.max_drawdown, True, 1, "lower"),
    Metric("final_value", "final value", lambda b: b.summary.final_value, False, 3, "higher"),
    Metric("turnover", "turnover/d", lambda b: b.average_turnover, True, 2, None),
)


# --- results ----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class ArmRun:
    """One seed's run of one arm, evaluated on the last stage's validation split.

    :param seed: the training seed.
    :param arm: ``curriculum`` or ``scratch``.
    :param run_dir: its run directory.
    :param model: the final model evaluated.
    :param target_timesteps: steps it was asked to train (sum over its stages).
    :param num_timesteps: steps it trained (PPO rounds up to whole rollouts).
    :param evaluation: the validation backtest beside the baselines.
    :param skipped: it had finished before and ``--resume`` skipped training.
    """

    seed: int
    arm: Arm
    run_dir: Path
    model: Path
    target_timesteps: int
    num_timesteps: int
    evaluation: EvaluationResult
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {"seed": self.seed, "arm": self.arm, "run_dir": str(self.run_dir),
                "model": str(self.model), "target_timesteps": self.target_timesteps,
                "num_timesteps": self.num_timesteps, "skipped": self.skipped,
                "agent": self.evaluation.agent.to_dict(),
                "sharpe_minus_best_baseline": json_number(self.evaluation.sharpe_vs_best_baseline)}


@attrs.frozen(eq=False)
class Comparison:
    """Both arms over every seed.

    :param curriculum: the curriculum's name.
    :param stages: the curriculum arm's stages, in order.
    :param scratch_stage: the scratch arm's stage (``<last stage>_scratch``).
    :param scale: the ``--scale`` used.
    :param runs: one :class:`ArmRun` per seed and arm.
    """

    curriculum: str
    stages: tuple[str, ...]
    scratch_stage: str
    scale: float
    runs: tuple[ArmRun, ...]

    @property
    def seeds(self) -> list[int]:
        """Seeds in the order they ran."""
        return list(dict.fromkeys(run.seed for run in self.runs))

    def arm(self, arm: Arm) -> list[ArmRun]:
        """The runs of ``arm``, in seed order."""
        return [run for run in self.runs if run.arm == arm]

    def values(self, arm: Arm, metric: Metric) -> list[float]:
        """``metric`` of ``arm`` for each seed."""
        return [metric.get(run.evaluation.agent) for run in self.arm(arm)]

    def spread(self, arm: Arm, metric: Metric) -> Spread:
        """Median and spread of ``metric`` over the seeds of ``arm``."""
        return Spread.of(self.values(arm, metric))

    def differences(self, metric: Metric) -> list[float]:
        """Per seed: curriculum − scratch."""
        return [c - s for c, s in zip(self.values("curriculum", metric),
                                      self.values("scratch", metric), strict=True)]

    def wins(self, metric: Metric) -> tuple[int, int]:
        """Seeds where the curriculum was better / worse (ties excluded)."""
        sign = {"higher": 1.0, "lower": -1.0}.get(metric.better or "", 0.0)
        diffs = [sign * d for d in self.differences(metric)]
        return sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)

    @property
    def reference(self) -> EvaluationResult:
        """The first evaluation: its days, costs and baselines are every seed's."""
        return self.runs[0].evaluation

    @property
    def baselines(self) -> tuple[Backtest, ...]:
        """Baselines on the validation split (identical across seeds)."""
        return self.reference.baselines

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready report."""
        reference = self.reference
        differences = {}
        for metric in METRICS:
            diffs = self.differences(metric)
            entry: dict[str, Any] = {
                "per_seed": {str(seed): json_number(diff)
                             for seed, diff in zip(self.seeds, diffs, strict=True)},
                "median": json_number(Spread.of(diffs).median), "better": metric.better}
            if metric.better:
                wins, losses = self.wins(metric)
                entry.update(curriculum_better=wins, scratch_better=losses,
                             sign_test_p_value=json_number(sign_test_p_value(wins, losses)))
            differences[metric.key] = entry
        return {
            "curriculum": self.curriculum, "stages": list(self.stages),
            "evaluated_stage": reference.stage, "scratch_stage": self.scratch_stage,
            "split": reference.split, "start": reference.start.isoformat(),
            "end": reference.end.isoformat(), "n_days": reference.agent.summary.n_days,
            "transaction_cost_bps": reference.cost_bps, "scale": self.scale,
            "seeds": self.seeds,
            "runs": [run.to_dict() for run in self.runs],
            "summary": {arm: {m.key: self.spread(arm, m).to_dict() for m in METRICS}
                        for arm in ARMS},
            "difference_curriculum_minus_scratch": differences,
            "baselines": [b.to_dict() for b in self.baselines],
            "best_baseline": reference.best_baseline.name,
        }


# --- running ----------------------------------------------------------------------------


class ComparisonRunner:
    """Trains and evaluates both arms for every seed.

    :param registry: what the plugins registered.
    :param options: the comparison's settings.
    :param echo: where progress lines go.
    """

    def __init__(self, registry: Registry, options: CompareOptions,
                 echo: Callable[[str], None] = click.echo) -> None:
        self.registry = registry
        self.options = options
        self.echo = echo
        self.device = resolve_device(options.device)

    def arm_stages(self, stages: Sequence[StageSpec], arm: Arm) -> list[StageSpec]:
        """The stages one arm trains."""
        return list(stages) if arm == "curriculum" else [scratch_stage(stages,
                                                                        self.options.scale)]

    def run(self, curriculum: str, stages: Sequence[StageSpec]) -> Comparison:
        """Train and evaluate both arms for every seed.

        :raises ConfigError: no stages, or earlier outputs in the way (before any training).
        """
        if not stages:
            raise ConfigError(f"curriculum {curriculum!r} selects no stages; check --stages")
        self.check_outputs(stages)
        if len(stages) == 1:
            self.echo(f"note: the curriculum arm is the single stage {stages[0].name}, so both "
                      f"arms train the same stage with the same steps")
        last = stages[-1]
        panel = load_stage_panel(self.registry.data_source(self.options.data.source), last,
                                 self.options.data, through="validation")
        runs = []
        seeds = self.options.seeds
        for index, seed in enumerate(seeds, start=1):
            for arm in ARMS:
                self.echo(f"== seed {seed} ({index}/{len(seeds)}), {arm}: "
                          f"{' → '.join(s.name for s in self.arm_stages(stages, arm))} "
                          f"in {self.options.run_dir(seed, arm)}")
                runs.append(self.run_arm(seed, arm, stages, panel))
        return Comparison(curriculum=curriculum, stages=tuple(s.name for s in stages),
                          scratch_stage=scratch_stage(stages, self.options.scale).name,
                          scale=self.options.scale, runs=tuple(runs))

    def check_outputs(self, stages: Sequence[StageSpec]) -> None:
        """Refuse before training when a seed's run directory holds an earlier run."""
        if self.options.resume or self.options.overwrite:
            return
        for seed in self.options.seeds:
            for arm in ARMS:
                layout = RunLayout(self.options.run_dir(seed, arm))
                for stage in self.arm_stages(stages, arm):
                    if layout.has_outputs(stage.name):
                        raise ConfigError(
                            f"{layout.stage_dir(stage.name)} already holds outputs of an "
                            f"earlier run; pass --resume to skip finished runs and continue "
                            f"the rest, --overwrite to replace them, or choose another --out")

    def run_arm(self, seed: int, arm: Arm, stages: Sequence[StageSpec], panel: Panel
                ) -> ArmRun:
        """Train one arm for one seed (unless ``--resume`` finds it finished) and evaluate it."""
        trained = self.arm_stages(stages, arm)
        options = self.options.run_options(seed, arm)
        layout = RunLayout(options.out_dir)
        finals = [layout.final_model(stage.name) for stage in trained]
        skipped = self.options.resume and all(path.exists() for path in finals)
        if skipped:
            self.echo(f"seed {seed} {arm}: already finished ({finals[-1]}); skipping")
        else:
            CurriculumRunner(self.registry, options, echo=self.echo).run(trained)
        metadata = [read_metadata(path) for path in finals]
        evaluation = self.evaluate(finals[-1], stages[-1], panel, seed)
        return ArmRun(seed=seed, arm=arm, run_dir=options.out_dir, model=finals[-1],
                      target_timesteps=sum(int(m.get("target_timesteps", 0)) for m in metadata),
                      num_timesteps=sum(int(m.get("num_timesteps", 0)) for m in metadata),
                      evaluation=evaluation, skipped=skipped)

    def evaluate(self, model: Path, stage: StageSpec, panel: Panel, seed: int
                 ) -> EvaluationResult:
        """Backtest ``model`` on ``stage``'s validation split (the last curriculum stage,
        for both arms, so days and costs are the same)."""
        env = build_backtest_env(self.registry, stage, panel, "validation", self.device)
        agent = load_for_evaluation(self.registry, model, stage, env, seed=seed,
                                    device=self.device)
        return evaluate_agent(agent, self.registry, stage, panel, "validation",
                              model=str(model), env=env)
