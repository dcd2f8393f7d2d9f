"""Stages as data: the validated :class:`StageSpec` and its TOML loader.

A stage file holds one ``[stage]`` table or several ``[[stage]]`` tables.
Every problem in a file is reported at once, one ``"what @ path"`` line each,
and unknown keys are rejected (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import datetime as dt
import itertools
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import attrs
import cattrs
from cattrs.v import format_exception

from ploutos_core.data.panel import DateRange
from ploutos_core.errors import StageFileError

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")


class FieldValueError(ValueError):
    """A field's value is out of range; carries the field name so errors point at it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _name(instance: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if not value or not set(value) <= _NAME_CHARS:
        raise FieldValueError(attribute.name, f"{value!r} must be lower-case letters, digits, "
                                              f"'_', '-' or '.'")


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise FieldValueError(attribute.name, f"must be > 0, got {value}")


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise FieldValueError(attribute.name, f"must be >= 0, got {value}")


def _unit_interval(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 < value <= 1:
        raise FieldValueError(attribute.name, f"must be in (0, 1], got {value}")


def _log_range(instance: object, attribute: attrs.Attribute[Any],
               value: tuple[float, float]) -> None:
    if len(value) != 2 or not 0 < value[0] < value[1]:
        raise FieldValueError(attribute.name, f"must be [low, high] with 0 < low < high, "
                                              f"got {list(value)}")


@attrs.frozen
class Hyperparameters:
    """Algorithm hyperparameters of a stage (the PPO family's names).

    Algorithms use the fields that apply to them (A2C ignores ``batch_size``,
    ``n_epochs`` and ``clip_range``). ``n_steps`` is per environment.
    """

    learning_rate: float = attrs.field(default=3e-4, validator=_positive)
    n_steps: int = attrs.field(default=256, validator=_positive)
    batch_size: int = attrs.field(default=256, validator=_positive)
    n_epochs: int = attrs.field(default=10, validator=_positive)
    gamma: float = attrs.field(default=0.99, validator=_unit_interval)
    gae_lambda: float = attrs.field(default=0.95, validator=_unit_interval)
    clip_range: float = attrs.field(default=0.2, validator=_positive)
    ent_coef: float = attrs.field(default=0.0, validator=_non_negative)
    vf_coef: float = attrs.field(default=0.5, validator=_non_negative)
    max_grad_norm: float = attrs.field(default=0.5, validator=_positive)
    hidden_size: int = attrs.field(default=64, validator=_positive)


@attrs.frozen
class TuningSpace:
    """What the tuner may change, and how hard it searches.

    Only these three hyperparameters are tuned; costs and anything that
    defines the market never are.

    :param learning_rate: log-uniform range ``[low, high]``.
    :param n_steps: categorical choices (per environment).
    :param ent_coef: log-uniform range ``[low, high]``.
    :param trials: trial budget of the study, in total over all workers.
    :param trial_fraction: share of the stage's timesteps one trial trains for.
    :param reports: intermediate validation reports per trial (for pruning).
    """

    learning_rate: tuple[float, float] = attrs.field(default=(1e-5, 1e-3), validator=_log_range)
    n_steps: tuple[int, ...] = attrs.field(default=(128, 256, 512))
    ent_coef: tuple[float, float] = attrs.field(default=(1e-5, 1e-2), validator=_log_range)
    trials: int = attrs.field(default=15, validator=_positive)
    trial_fraction: float = attrs.field(default=0.05, validator=_unit_interval)
    reports: int = attrs.field(default=4, validator=_positive)

    @n_steps.validator
    def _check_n_steps(self, attribute: attrs.Attribute[tuple[int, ...]],
                       value: tuple[int, ...]) -> None:
        if not value or any(v <= 1 for v in value):
            raise FieldValueError("n_steps", f"must list choices > 1, got {list(value)}")


def _default_splits() -> Splits:
    return Splits()


#: names :meth:`Splits.get` knows. ``fit`` is the train split without the selection
#: window; ``selection`` is that window.
SPLIT_NAMES = ("train", "fit", "selection", "validation", "test")


@attrs.frozen
class Splits:
    """Disjoint, ordered date ranges: train < validation < test, and an optional model
    selection window carved from the end of train.

    Defaults: train 2005-01-01…2018-12-31, validation 2019-01-01…2022-12-31,
    test from 2023-01-01, no selection window.

    :param selection: the last part of the train split; when a run selects models
        (periodic evaluation for ``best.zip``, tuning), they are scored here and
        training episodes end before it, so validation stays out of sample.
    """

    train: DateRange = attrs.field(
        factory=lambda: DateRange(dt.date(2005, 1, 1), dt.date(2018, 12, 31)))
    validation: DateRange = attrs.field(
        factory=lambda: DateRange(dt.date(2019, 1, 1), dt.date(2022, 12, 31)))
    test: DateRange = attrs.field(factory=lambda: DateRange(dt.date(2023, 1, 1), None))
    selection: DateRange | None = None

    def __attrs_post_init__(self) -> None:
        ordered = [("train", self.train), ("validation", self.validation), ("test", self.test)]
        for (name_a, a), (name_b, b) in itertools.pairwise(ordered):
            if a.end is None or b.start is None or a.end >= b.start:
                raise FieldValueError(
                    name_b, f"splits must be disjoint and ordered: {name_a} ({a}) must end "
                            f"before {name_b} ({b}) starts"
                )
        window = self.selection
        if window is not None and (
                window.start is None or window.end != self.train.end
                or (self.train.start is not None and window.start <= self.train.start)):
            raise FieldValueError(
                "selection", f"the selection window ({window}) must be the end of the train "
                             f"split ({self.train}): a start after the train start and "
                             f"end = {self.train.end}"
            )

    def get(self, name: str) -> DateRange:
        """The range called ``name``: ``train``, ``fit`` (train before the selection
        window), ``selection`` (the window, or validation without one), ``validation``,
        ``test``."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"unknown split {name!r}; use {', '.join(SPLIT_NAMES)}")
        if name == "fit":
            if self.selection is None or self.selection.start is None:
                return self.train
            return DateRange(self.train.start, self.selection.start - dt.timedelta(days=1))
        if name == "selection":
            return self.selection or self.validation
        return getattr(self, name)  # type: ignore[no-any-return]

    @property
    def selection_split(self) -> str:
        """Where models are selected: ``selection`` with a window, else ``validation``."""
        return "selection" if self.selection is not None else "validation"


def trading_splits(train: DateRange, trade: DateRange) -> Splits:
    """Splits that train on ``train`` and trade ``trade`` out of sample, as the
    ``validation`` range; the test range starts the day after ``trade`` (issue 12:
    walk-forward folds and signals are stages with adjusted splits, not new code).

    :param train: the training range; it must end before ``trade`` starts.
    :param trade: the out-of-sample range (its start and end must be set).
    :raises ValueError: when the ranges overlap or ``trade`` is open.
    """
    if trade.start is None or trade.end is None:
        raise ValueError(f"the trading range {trade} needs a start and an end")
    if train.end is None or train.end >= trade.start:
        raise ValueError(f"the training range {train} must end before {trade.start}")
    return Splits(train=train, validation=trade,
                  test=DateRange(trade.end + dt.timedelta(days=1), None))


def _at_least_one(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value >= 1:
        raise FieldValueError(attribute.name, f"must be >= 1, got {value}")


def _below_one(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value < 1:
        raise FieldValueError(attribute.name, f"must be in [0, 1), got {value}")


def _fraction(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not 0 <= value <= 1:
        raise FieldValueError(attribute.name, f"must be in [0, 1], got {value}")


@attrs.frozen
class EnvSettings:
    """How the trading environment of a stage behaves.

    :param episode_length: trading days per training episode.
    :param window: days of per-asset features in each observation.
    :param reward: ``log_return`` (log growth net of costs), ``relative_log_return``
        (log growth minus that of the stage's benchmark portfolio on the same day, both
        net of costs) or ``differential_sharpe``.
    :param action: how actions become target weights. ``softmax``: ``softmax(action_scale
        × action)`` over the assets and cash, so a zero action is equal weights *including*
        cash. ``tilt``: a zero action holds the stage's benchmark; asset actions tilt its
        log-weights by ``tilt_scale × action``, and a positive cash action moves up to
        ``max_cash`` of the portfolio to cash.
    :param action_scale: ``softmax`` only: multiplies the actions before the softmax;
        actions lie in ``[-1, 1]``, so 5 lets one asset reach more than 99 % of the portfolio.
    :param tilt_scale: ``tilt`` only: log-weight change per unit of asset action.
    :param max_cash: ``tilt`` only: the share of the portfolio a full cash action holds in cash.
    :param exposure: ``full``: the policy's target is traded as it is.
        ``volatility_target``: each day its assets are scaled by the exposure of the
        ``volatility_targeted_equal_weight`` baseline over the environment's own assets
        (trailing 252-day over 21-day realised volatility of their 1/N portfolio, at most
        1), the rest held in cash; a zero ``tilt`` action then holds that baseline, and
        ``relative_log_return`` and ``deviation_penalty`` measure against it. Applied
        after ``target_smoothing`` and before ``no_trade_band``.
    :param no_trade_band: turnover rule: no trade at all when the turnover needed to reach
        the target is at most this (a fraction of the portfolio, e.g. 0.05).
    :param target_smoothing: turnover rule: the target traded to is an exponential moving
        average of the policy's targets, ``s = smoothing × s + (1 − smoothing) × target``,
        starting at the benchmark (0: no smoothing; 0.9: about a ten-day memory).
    :param turnover_penalty: training only: subtracted from the reward per unit of
        turnover, on top of the transaction cost the accounting charges.
    :param deviation_penalty: training only: subtracted from the reward per unit of active
        weight, ``Σ |w − benchmark|`` over assets and cash, each day: a tilt must earn more
        than this to pay (0.0001 ≈ 2.5 % a year per unit of active weight).
    :param risk_aversion: training only: ``γ`` of a power (CRRA) utility; the reward of a
        day's net return ``r`` is ``log(1 + r) − (γ − 1)/2 · r²`` (1: plain log growth;
        above 1 the agent is paid for holding less when volatility is high). With
        ``relative_log_return`` the benchmark's utility is subtracted alike.
    :param warmup_days: history before a split used to compute causal features.
    :param day_filter: name of a registered day filter; training episodes then
        start only on the days it allows (e.g. bull-market days).
    """

    episode_length: int = attrs.field(default=252, validator=_positive)
    window: int = attrs.field(default=10, validator=_positive)
    reward: Literal["log_return", "relative_log_return", "differential_sharpe"] = "log_return"
    action: Literal["softmax", "tilt"] = "softmax"
    action_scale: float = attrs.field(default=5.0, validator=_positive)
    tilt_scale: float = attrs.field(default=1.0, validator=_positive)
    max_cash: float = attrs.field(default=1.0, validator=_fraction)
    exposure: Literal["full", "volatility_target"] = "full"
    no_trade_band: float = attrs.field(default=0.0, validator=_fraction)
    target_smoothing: float = attrs.field(default=0.0, validator=_below_one)
    turnover_penalty: float = attrs.field(default=0.0, validator=_non_negative)
    deviation_penalty: float = attrs.field(default=0.0, validator=_non_negative)
    risk_aversion: float = attrs.field(default=1.0, validator=_at_least_one)
    warmup_days: int = attrs.field(default=252, validator=_non_negative)
    day_filter: str | None = None

    def action_record(self) -> dict[str, Any]:
        """What a policy's actions mean: the action map and its scales. Model files
        record it, so a model is never read under another map (a zero ``softmax`` action
        is 1/(N+1) including cash, a zero ``tilt`` action the benchmark)."""
        if self.action == "softmax":
            return {"action": "softmax", "action_scale": self.action_scale}
        return {"action": "tilt", "tilt_scale": self.tilt_scale, "max_cash": self.max_cash}


@attrs.frozen
class UniverseSettings:
    """A wider pool of tickers to train on before the stage's own (``[stage.universe]``).

    Training episodes then each sample as many tickers as the stage trades, from those
    that trade through the whole episode, for the first ``fraction`` of the stage's
    steps; the rest fine-tunes on the stage's tickers. Validation, gates and reports
    stay on the stage's tickers. The pool is loaded through the end of the train split
    only.

    :param tickers: the pool (empty: no universe training).
    :param fraction: share of the stage's timesteps trained on sampled sub-universes.
    """

    tickers: tuple[str, ...] = attrs.field(default=())
    fraction: float = attrs.field(default=0.5, validator=_unit_interval)

    @tickers.validator
    def _check_tickers(self, attribute: attrs.Attribute[tuple[str, ...]],
                       value: tuple[str, ...]) -> None:
        if len(set(value)) != len(value):
            raise FieldValueError("tickers", "must not repeat")
        if any(not t or t != t.strip() for t in value):
            raise FieldValueError("tickers", f"must be non-empty symbols, got {list(value)}")

    @property
    def enabled(self) -> bool:
        """Whether the stage trains on a universe."""
        return bool(self.tickers)


@attrs.frozen
class TransferSettings:
    """What a stage takes from the model it starts from (``[stage.transfer]``).

    :param parameters: names (or name prefixes) of the policy tensors to copy; the rest
        keep a fresh initialisation. Empty: every tensor. For the built-in asset-set
        policy: ``encoder``, ``context``, ``asset_head``, ``cash_head``, ``value_head``,
        ``asset_log_std``, ``cash_log_std``.
    :param freeze_fraction: share of the stage's timesteps during which the copied
        tensors are not trained, so the fresh ones learn on top of what was transferred
        before fine-tuning can distort it (linear probing, then fine-tuning: Kumar et al.,
        ICLR 2022). Needs ``parameters``; applies only when the stage starts from another
        stage's model.
    """

    parameters: tuple[str, ...] = ()
    freeze_fraction: float = attrs.field(default=0.0, validator=_fraction)

    def __attrs_post_init__(self) -> None:
        if self.freeze_fraction and not self.parameters:
            raise FieldValueError("freeze_fraction", "freezes the copied tensors, so it needs "
                                  "parameters (e.g. [\"encoder\", \"context\"]); with every "
                                  "tensor copied nothing would be left to train")


@attrs.frozen
class Gate:
    """Promotion gate: the validation result a stage must reach to pass on, and its target.

    A stage passes when every gate it sets holds; a gate left unset always holds.

    :param min_sharpe_vs_benchmark: the validation Sharpe must be at least the stage
        benchmark's validation Sharpe (on the same days and costs) plus this margin;
        ``0.0`` means "at least as good as holding the benchmark".
    :param min_validation_sharpe: an absolute validation Sharpe the stage must reach.
    :param target_sharpe: an aspiration reported in every summary ("target 1.0: missed");
        it never stops a run.
    """

    min_sharpe_vs_benchmark: float | None = None
    min_validation_sharpe: float | None = None
    target_sharpe: float | None = None

    def describe(self) -> str:
        """``≥ benchmark`` / ``≥ benchmark+0.1`` / ``≥ 1.0`` / ``none`` (for listings)."""
        parts = []
        if self.min_sharpe_vs_benchmark is not None:
            margin = self.min_sharpe_vs_benchmark
            parts.append("≥ benchmark" + (f"{margin:+g}" if margin else ""))
        if self.min_validation_sharpe is not None:
            parts.append(f"≥ {self.min_validation_sharpe:g}")
        return ", ".join(parts) or "none"


@attrs.frozen
class StageSpec:
    """One stage of a curriculum, as data.

    :param name: unique registered name (``stage1``), used on the command line.
    :param tickers: the assets traded, in order.
    :param timesteps: environment steps to train for (before ``--scale``).
    :param n_envs: environments of the reference setup (the design's figure).
    :param batch_envs: environments the batched environment actually steps at once;
        ``None`` runs ``n_envs``. Many more environments cost little with the batched
        environment and make PPO's updates larger and fewer (docs/performance.md).
        ``--n-envs`` overrides both; the run manifest records what ran.
    :param description: one line for listings.
    :param curriculum: the curriculum the stage belongs to (``default`` for the built-ins).
    :param order: position inside its curriculum.
    :param algorithm: registered algorithm name.
    :param env_builder: registered environment-builder name.
    :param transaction_cost_bps: cost charged on turnover, in basis points.
    :param benchmark: the portfolio the stage is measured against and, with
        ``[stage.env] action = "tilt"``, the one a zero action holds: ``equal_weight``,
        1/N of the stage's tickers, fully invested, rebalanced under the turnover rule.
    :param hyperparameters: algorithm settings.
    :param tuning: the search space of ``--auto-optimize``.
    :param splits: train / validation / test date ranges.
    :param gate: minimum validation result to promote the stage.
    :param env: environment behaviour (``[stage.env]`` in TOML).
    :param universe: a wider pool of tickers to train on first (``[stage.universe]``).
    :param transfer: what the stage copies from the model it starts from.
    :param algorithm_options: the algorithm's own settings (``[stage.algorithm_options]``),
        checked by the algorithm plugin (``Algorithm.options_type``).
    :param selection_every: steps between evaluations on the selection window during
        training (0: none); ``--eval-freq`` overrides it. Training then ends before the
        window.
    :param promote: which model becomes ``<stage>_final``: the ``last`` checkpoint, or the
        ``best`` on the selection window (``best.zip``; needs ``selection_every`` or
        ``--eval-freq``). Validation never chooses.
    """

    name: str = attrs.field(validator=_name)
    tickers: tuple[str, ...] = attrs.field()
    timesteps: int = attrs.field(validator=_positive)
    n_envs: int = attrs.field(default=8, validator=_positive)
    batch_envs: int | None = attrs.field(default=None, validator=attrs.validators.optional(
        _positive))
    description: str = ""
    curriculum: str = attrs.field(default="default", validator=_name)
    order: int = 0
    algorithm: str = "ppo"
    env_builder: str = "portfolio"
    transaction_cost_bps: float = attrs.field(default=10.0, validator=_non_negative)
    benchmark: Literal["equal_weight"] = "equal_weight"
    hyperparameters: Hyperparameters = Hyperparameters()
    tuning: TuningSpace = TuningSpace()
    splits: Splits = attrs.field(factory=_default_splits)
    gate: Gate = Gate()
    env: EnvSettings = EnvSettings()
    universe: UniverseSettings = UniverseSettings()
    transfer: TransferSettings = TransferSettings()
    algorithm_options: dict[str, bool | int | float | str] = attrs.field(factory=dict)
    selection_every: int = attrs.field(default=0, validator=_non_negative)
    promote: Literal["last", "best"] = "last"

    @tickers.validator
    def _check_tickers(self, attribute: attrs.Attribute[tuple[str, ...]],
                       value: tuple[str, ...]) -> None:
        if not value:
            raise FieldValueError("tickers", "must list at least one symbol")
        if len(set(value)) != len(value):
            raise FieldValueError("tickers", f"must not repeat, got {list(value)}")
        if any(not t or t != t.strip() for t in value):
            raise FieldValueError("tickers", f"must be non-empty symbols, got {list(value)}")

    def environments(self, override: int | None = None) -> int:
        """Environments a run steps at once: ``override`` (``--n-envs``), else
        ``batch_envs``, else ``n_envs``."""
        return override or self.batch_envs or self.n_envs

    @property
    def selects_on_window(self) -> bool:
        """Whether the stage itself asks for model selection during training."""
        return self.selection_every > 0 or self.promote == "best"

    @property
    def transaction_cost(self) -> float:
        """The cost as a fraction of traded value (10 bps → 0.001)."""
        return self.transaction_cost_bps / 10_000

    @classmethod
    def from_toml(cls, path: str | Path) -> list[StageSpec]:
        """Read every stage of a TOML stage file.

        :param path: the file.
        :raises StageFileError: listing every problem as ``"what @ path"``.
        """
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise StageFileError(str(path), ["file not found"]) from exc
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise StageFileError(str(path), [f"not valid TOML: {exc}"]) from exc
        return cls.from_mapping(raw, origin=str(path))

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], *, origin: str = "<mapping>") -> list[StageSpec]:
        """Build stages from parsed TOML (a ``stage`` table or array of tables).

        :param raw: the parsed document.
        :param origin: how to name the source in errors.
        :raises StageFileError: listing every problem.
        """
        extra = sorted(set(raw) - {"stage"})
        if "stage" not in raw:
            raise StageFileError(origin, ["missing [stage] table @ $"])
        problems = [f"unknown key {key!r} @ $" for key in extra]
        tables = raw["stage"] if isinstance(raw["stage"], list) else [raw["stage"]]
        stages: list[StageSpec] = []
        for index, table in enumerate(tables):
            where = "stage" if isinstance(raw["stage"], dict) else f"stage[{index}]"
            if not isinstance(table, dict):
                problems.append(f"expected a table @ {where}")
                continue
            try:
                # Types first (cattrs reports every one), then every value's range, so a
                # table with several bad values gets one line for each (issue 14).
                with attrs.validators.disabled():
                    stage = _CONVERTER.structure(table, cls)
            except Exception as exc:  # cattrs groups every field error in one exception
                problems.extend(
                    _point_at_field(line)
                    for line in cattrs.transform_error(exc, path=where,
                                                       format_exception=_format_exception)
                )
                continue
            invalid = _validation_problems(stage, where)
            problems.extend(invalid)
            if not invalid:
                stages.append(stage)
        names = [s.name for s in stages]
        problems.extend(f"duplicate stage name {n!r} @ stage" for n in sorted(set(names))
                        if names.count(n) > 1)
        problems.extend(duplicate_orders(stages))
        if problems:
            raise StageFileError(origin, problems)
        return stages


def _validation_problems(instance: Any, path: str) -> list[str]:
    """Every field validator of ``instance`` and its nested attrs values, each failure as
    ``"what @ path.field"``."""
    problems = []
    for field in attrs.fields(type(instance)):
        value = getattr(instance, field.name)
        if field.validator is not None:
            try:
                field.validator(instance, field, value)
            except FieldValueError as exc:
                problems.append(f"{exc.message} @ {path}.{exc.field}")
            except ValueError as exc:
                problems.append(f"{exc} @ {path}.{field.name}")
        if attrs.has(type(value)):
            problems.extend(_validation_problems(value, f"{path}.{field.name}"))
    return problems


def duplicate_orders(stages: list[StageSpec]) -> list[str]:
    """``"…"`` lines for stages of one curriculum that share an ``order``."""
    seen: dict[tuple[str, int], str] = {}
    problems = []
    for stage in stages:
        key = (stage.curriculum, stage.order)
        if key in seen:
            problems.append(f"stages {seen[key]!r} and {stage.name!r} both have order "
                            f"{stage.order} in curriculum {stage.curriculum!r}; give each its "
                            f"own position @ stage")
        else:
            seen[key] = stage.name
    return problems


_FIELD_MARK = "\x00"
_LITERAL: Any = Literal
_TUPLE: Any = tuple


def _format_exception(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, FieldValueError):
        return f"{exc.message}{_FIELD_MARK}{exc.field}"
    if isinstance(exc, ValueError) and not isinstance(exc, cattrs.BaseValidationError):
        return str(exc)
    return format_exception(exc, type_)


def _point_at_field(line: str) -> str:
    """Move a validator's field name from the message onto the path."""
    if _FIELD_MARK not in line:
        return line
    message, rest = line.split(_FIELD_MARK, 1)
    field, _, path = rest.partition(" @ ")
    return f"{message} @ {path}.{field}"


def _structure_literal(value: Any, type_: Any) -> Any:
    choices = get_args(type_)
    if value not in choices:
        raise ValueError(f"must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def _strict(kind: type, accepts: tuple[type, ...]) -> Any:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) and kind is not bool:
            raise ValueError(f"expected {kind.__name__}, got a boolean")
        if not isinstance(value, accepts):
            raise ValueError(f"expected {kind.__name__}, got {type(value).__name__} {value!r}")
        return kind(value)

    return structure


def _structure_date_range(value: Any, _: type) -> DateRange:
    if not isinstance(value, dict):
        raise ValueError("expected a table {start = …, end = …}")
    unknown = set(value) - {"start", "end"}
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}; use start and end")
    for key in ("start", "end"):
        item = value.get(key)
        if item is not None and not isinstance(item, (str, dt.date)):
            raise ValueError(f"{key} must be a date like 2019-01-01, got {item!r}")
    return DateRange(value.get("start"), value.get("end"))


def _structure_tuple(converter: cattrs.Converter, value: Any, type_: Any) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"expected an array like [\"A\", \"B\"], got "
                         f"{type(value).__name__} {value!r}")
    args = get_args(type_)
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(converter.structure(item, args[0]) for item in value)
    if len(args) != len(value):
        raise ValueError(f"expected {len(args)} values, got {len(value)}")
    return tuple(converter.structure(item, arg) for item, arg in zip(value, args, strict=True))


def _structure_scalar(value: Any, _: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"expected a number, a string or a boolean, got {type(value).__name__}")


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(bool | int | float | str, _structure_scalar)
    converter.register_structure_hook(str, _strict(str, (str,)))
    converter.register_structure_hook(int, _strict(int, (int,)))
    converter.register_structure_hook(float, _strict(float, (int, float)))
    converter.register_structure_hook(bool, _strict(bool, (bool,)))
    converter.register_structure_hook(DateRange, _structure_date_range)
    # A string is a sequence too: "SPY" must not become ("S", "P", "Y") (issue 14).
    converter.register_structure_hook_func(
        lambda t: get_origin(t) is _TUPLE, lambda value, t: _structure_tuple(converter, value, t))
    converter.register_structure_hook_func(lambda t: get_origin(t) is _LITERAL, _structure_literal)
    converter.register_unstructure_hook(
        DateRange,
        lambda r: {k: v.isoformat() for k, v in (("start", r.start), ("end", r.end)) if v},
    )
    return converter


_CONVERTER = _make_converter()


def stage_to_dict(stage: StageSpec) -> dict[str, Any]:
    """A JSON/TOML-ready dictionary of ``stage`` (for manifests and ``stages show``)."""
    data: dict[str, Any] = _drop_none(_CONVERTER.unstructure(stage))
    return data


def structure_options(raw: dict[str, Any], options_type: type, where: str) -> Any:
    """``raw`` structured into the attrs class ``options_type``, every problem reported.

    :raises ConfigError: ``"what @ <where>.key"`` for each unknown key and bad value.
    """
    from ploutos_core.errors import ConfigError

    try:
        with attrs.validators.disabled():
            options: Any = _CONVERTER.structure(raw, options_type)
    except Exception as exc:  # cattrs groups every field error in one exception
        problems = [_point_at_field(line) for line in cattrs.transform_error(
            exc, path=where, format_exception=_format_exception)]
        raise ConfigError("; ".join(problems)) from exc
    problems = _validation_problems(options, where)
    if problems:
        raise ConfigError("; ".join(problems))
    return options


def stage_to_toml(stage: StageSpec) -> str:
    """``stage`` as a stage file (one ``[stage]`` table) that :meth:`StageSpec.from_toml`
    reads back into the same stage."""
    import tomli_w

    data = stage_to_dict(stage)
    for date_range in data["splits"].values():
        for side, value in date_range.items():
            date_range[side] = dt.date.fromisoformat(value)
    return tomli_w.dumps({"stage": data})


def _drop_none(value: Any) -> Any:
    """TOML has no null: unset optional fields are left out."""
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
