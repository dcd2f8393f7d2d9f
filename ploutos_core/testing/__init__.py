"""Contract checkers for plugin authors: data sources, stages, algorithms and brokers.

Call them from your plugin's tests, as stable-baselines3 users call
``check_env``::

    from ploutos_core.testing import check_algorithm, check_data_source, check_stage

    def test_my_source():
        check_data_source(MySource(), tickers=("SPY", "QQQ"))

Each checker exercises the object the way the core will (fetch and align,
round-trip a stage through TOML and build its environment, train / predict /
save / load / transfer an agent) and raises :class:`ContractError` with a
message saying what broke and what to do. They return what they built, so a
test can look further.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ploutos_core.agents.contract import Agent, Algorithm, TrainingMonitor, TrainingSetup
from ploutos_core.config.stage import (
    EnvSettings,
    Gate,
    Hyperparameters,
    Splits,
    StageSpec,
    TuningSpace,
    stage_to_toml,
)
from ploutos_core.data.panel import DateRange, Panel
from ploutos_core.data.source import DataRequest, DataSource
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.data.validation import align
from ploutos_core.env.base import EnvRequest, Split
from ploutos_core.errors import DataError, ModelError, PloutosError
from ploutos_core.testing.brokers import BrokerCheck, check_broker
from ploutos_core.testing.errors import ContractError

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from ploutos_core.pluginmanager.registry import Registry

__all__ = [
    "AlgorithmCheck",
    "BrokerCheck",
    "ContractError",
    "StageCheck",
    "check_algorithm",
    "check_broker",
    "check_data_source",
    "check_stage",
    "tiny_stage",
]




def _check_name(obj: object, kind: str) -> str:
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise ContractError(f"{type(obj).__name__}: a {kind} needs a non-empty string class "
                            f"attribute 'name' (the name users type); got {name!r}")
    description = getattr(obj, "description", "")
    if not isinstance(description, str):
        raise ContractError(f"{kind} {name!r}: 'description' must be a string, got "
                            f"{type(description).__name__}")
    return name


def tiny_stage(name: str = "tiny", tickers: tuple[str, ...] = ("AAA", "BBB"), order: int = 1,
               timesteps: int = 512, **changes: Any) -> StageSpec:
    """A stage small enough to train in a second on the ``synthetic`` source: train
    2010–2012, validation 2013, test 2014, 4 environments, a 16-wide network, no gate.

    :param changes: other :class:`StageSpec` fields to set.
    """
    stage = StageSpec(
        name=name, tickers=tickers, timesteps=timesteps, n_envs=4, curriculum="tiny",
        order=order, description="tiny test stage",
        hyperparameters=Hyperparameters(learning_rate=3e-4, n_steps=32, batch_size=64,
                                        n_epochs=2, hidden_size=16),
        tuning=TuningSpace(learning_rate=(1e-4, 1e-3), n_steps=(16, 32), ent_coef=(1e-4, 1e-2),
                           trials=2, trial_fraction=0.5, reports=2),
        splits=Splits(train=DateRange(dt.date(2010, 1, 1), dt.date(2012, 12, 31)),
                      validation=DateRange(dt.date(2013, 1, 1), dt.date(2013, 12, 31)),
                      test=DateRange(dt.date(2014, 1, 1), dt.date(2014, 12, 31))),
        gate=Gate(min_validation_sharpe=-100.0),
        env=EnvSettings(episode_length=64, window=4),
    )
    return attrs.evolve(stage, **changes) if changes else stage


# --- data sources -----------------------------------------------------------------------


def check_data_source(
    source: DataSource,
    tickers: Sequence[str] = ("SPY",),
    *,
    start: dt.date = dt.date(2015, 1, 1),
    end: dt.date = dt.date(2016, 12, 31),
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    seed: int = 0,
    unknown_ticker: str | None = None,
    reproducible: bool = True,
) -> Panel:
    """Fetch ``tickers`` from ``source`` as the core does, validate and align them.

    :param source: an instance of your :class:`~ploutos_core.DataSource` subclass.
    :param tickers: tickers the source can supply.
    :param start: first date requested.
    :param end: last date requested.
    :param data_dir: passed in the request (file sources).
    :param cache_dir: passed in the request (downloading sources); a temporary
        directory when ``None``.
    :param seed: passed in the request (generating sources).
    :param unknown_ticker: a ticker the source cannot supply; when given, fetching it
        must raise :class:`~ploutos_core.DataError` (not return an empty frame).
    :param reproducible: fetch twice and require identical prices.
    :return: the aligned panel.
    :raises ContractError: naming the source and what it did wrong.
    """
    name = _check_name(source, "data source")
    if not isinstance(source, DataSource):
        raise ContractError(f"data source {name!r} is a {type(source).__name__}; subclass "
                            f"ploutos_core.DataSource")
    with tempfile.TemporaryDirectory(prefix="ploutos-check-") as tmp:
        request = DataRequest(tickers=tuple(tickers), start=start, end=end, data_dir=data_dir,
                              cache_dir=cache_dir or Path(tmp), seed=seed)
        panel = _fetch_panel(source, name, request)
        if reproducible and _fetch_panel(source, name, request).fingerprint() != \
                panel.fingerprint():
            raise ContractError(f"data source {name!r} returned different prices for the same "
                                f"request; seeded or cached sources must be reproducible "
                                f"(pass reproducible=False if yours cannot be)")
        if unknown_ticker is not None:
            unknown = attrs.evolve(request, tickers=(unknown_ticker,))
            try:
                frames = source.fetch(unknown)
            except DataError:
                pass
            except Exception as exc:
                raise ContractError(f"data source {name!r} raised {type(exc).__name__} for the "
                                    f"unknown ticker {unknown_ticker!r}; raise "
                                    f"ploutos_core.DataError with a helpful message") from exc
            else:
                frame = frames.get(unknown_ticker) if hasattr(frames, "get") else None
                if frame is not None and len(frame):
                    raise ContractError(f"data source {name!r} returned {len(frame)} rows for "
                                        f"the unknown ticker {unknown_ticker!r}")
                raise ContractError(f"data source {name!r} answered the unknown ticker "
                                    f"{unknown_ticker!r} without raising DataError; an empty "
                                    f"answer must be an error, never a silent empty run")
    return panel


def _fetch_panel(source: DataSource, name: str, request: DataRequest) -> Panel:
    try:
        frames = source.fetch(request)
    except PloutosError as exc:
        raise ContractError(f"data source {name!r} refused {list(request.tickers)} "
                            f"{request.start}…{request.end}: {exc}") from exc
    except Exception as exc:
        raise ContractError(f"data source {name!r} raised {type(exc).__name__}: {exc}; a "
                            f"source must return frames or raise ploutos_core.DataError") from exc
    if not isinstance(frames, Mapping):
        raise ContractError(f"data source {name!r} returned {type(frames).__name__}; fetch must "
                            f"return a mapping of ticker -> pandas.DataFrame")
    for ticker in request.tickers:
        if ticker not in frames:
            raise ContractError(f"data source {name!r} returned no frame for {ticker!r} (keys: "
                                f"{sorted(frames)}); return one frame per requested ticker, "
                                f"keyed by the ticker as requested")
        if not isinstance(frames[ticker], pd.DataFrame):
            raise ContractError(f"data source {name!r} returned "
                                f"{type(frames[ticker]).__name__} for {ticker!r}; expected a "
                                f"pandas.DataFrame")
    try:
        return align(frames, request.tickers, date_range=DateRange(request.start, request.end),
                     source=name)
    except DataError as exc:
        raise ContractError(f"data source {name!r} returned data the core refuses: {exc}") \
            from exc


# --- stages -----------------------------------------------------------------------------


@attrs.frozen(eq=False)
class StageCheck:
    """What :func:`check_stage` built when it loaded data.

    :param stage: the stage checked.
    :param panel: its prices through the validation split.
    :param start_mask: the day filter's allowed episode starts over ``panel``'s days,
        or ``None`` when the stage has no day filter.
    :param env: the training environment (``train`` split, one environment).
    """

    stage: StageSpec
    panel: Panel | None = None
    start_mask: NDArray[np.bool_] | None = None
    env: Any = None


def check_stage(stage: StageSpec, registry: Registry | None = None, *,
                source: str | None = None, data_options: DataOptions | None = None,
                ) -> StageCheck:
    """Check that ``stage`` survives a stage file and that everything it names exists.

    :param stage: the stage your plugin registers.
    :param registry: where its algorithm, env builder and day filter are looked up; when
        ``None``, a registry of every installed plugin.
    :param source: also load the stage's data (train and validation splits) from this
        data source, compute its day filter and build its training environment
        (``"synthetic"`` needs no network).
    :param data_options: how to load the data (``source`` overrides its source).
    :return: the data, day mask and environment when ``source`` is given.
    :raises ContractError: naming the stage and the problem.
    """
    if not isinstance(stage, StageSpec):
        raise ContractError(f"expected a ploutos_core.StageSpec, got {type(stage).__name__}; "
                            f"build stages with StageSpec.from_toml(path)")
    text = stage_to_toml(stage)
    try:
        again = StageSpec.from_mapping(tomllib.loads(text), origin=f"stage {stage.name!r}")
    except PloutosError as exc:
        raise ContractError(f"stage {stage.name!r} cannot be written as a stage file and read "
                            f"back: {exc}") from exc
    if again != [stage]:
        raise ContractError(f"stage {stage.name!r} changes when written as a stage file and "
                            f"read back ('ploutos stages show {stage.name}' would mislead)")
    if registry is None:
        from ploutos_core.pluginmanager.manager import get_plugin_manager
        from ploutos_core.pluginmanager.registry import Registry

        registry = Registry(get_plugin_manager())
    lookups = [("algorithms", "algorithm", stage.algorithm),
               ("env_builders", "env_builder", stage.env_builder)]
    if stage.env.day_filter:
        lookups.append(("day_filters", "env.day_filter", stage.env.day_filter))
    for kind, field, value in lookups:
        if value not in registry.all(kind):
            raise ContractError(f"stage {stage.name!r}: {field} = {value!r} is not registered "
                                f"(available: {', '.join(registry.all(kind)) or 'none'}); "
                                f"install the plugin that provides it")
    if source is None:
        return StageCheck(stage)
    return _build_stage(stage, registry, attrs.evolve(data_options or DataOptions(),
                                                      source=source))


def _build_stage(stage: StageSpec, registry: Registry, options: DataOptions) -> StageCheck:
    from ploutos_core.training.builder import build_env, prepare_stage
    from ploutos_core.training.context import RunContext, RunOptions

    try:
        run = RunContext(registry=registry, options=RunOptions(data=options, n_envs=1),
                         echo=lambda _: None)
        ctx = prepare_stage(run, stage)
        for split in ("train", "validation"):
            ctx.panel.index_range(stage.splits.get(split), label=f"{split} split")
        env = build_env(ctx)
        env.reset()
    except PloutosError as exc:
        raise ContractError(f"stage {stage.name!r} cannot be set up with source "
                            f"{options.source!r}: {exc}") from exc
    return StageCheck(stage, ctx.panel, ctx.start_mask, env)


# --- algorithms -------------------------------------------------------------------------


@attrs.frozen(eq=False)
class AlgorithmCheck:
    """What :func:`check_algorithm` observed.

    :param num_timesteps: steps the agent trained.
    :param steps_seen: batched steps reported to the monitor's ``on_step``.
    :param transfers: whether weights loaded into an environment with another
        asset count.
    """

    num_timesteps: int
    steps_seen: int
    transfers: bool


class _RecordingMonitor(TrainingMonitor):
    def __init__(self) -> None:
        self.steps = 0
        self.started = 0
        self.ended = 0

    def on_training_start(self, agent: Agent) -> None:
        self.started += 1

    def on_step(self, num_timesteps: int, infos: list[dict[str, Any]]) -> bool:
        self.steps += 1
        return True

    def on_training_end(self) -> None:
        self.ended += 1


def _market_stage(tickers: tuple[str, ...]) -> tuple[StageSpec, Panel]:
    """A small seeded market and a stage over it: enough to train and backtest in seconds."""
    calendar = pd.bdate_range("2010-01-01", "2011-12-30")
    frames = {}
    for position, ticker in enumerate(tickers):
        rng = np.random.default_rng([7, position])
        close = 50 * np.exp(np.cumsum(0.0003 + 0.012 * rng.standard_normal(len(calendar))))
        frames[ticker] = pd.DataFrame({"open": close, "high": close * 1.01,
                                       "low": close * 0.99, "close": close,
                                       "volume": np.full(len(calendar), 1e6)}, index=calendar)
    panel = align(frames, tickers, source="check")
    stage = StageSpec(
        name="check", tickers=tickers, timesteps=64, n_envs=2,
        hyperparameters=Hyperparameters(learning_rate=3e-4, n_steps=16, batch_size=32,
                                        n_epochs=1, hidden_size=8),
        splits=Splits(train=DateRange(dt.date(2010, 3, 1), dt.date(2011, 6, 30)),
                      validation=DateRange(dt.date(2011, 7, 1), dt.date(2011, 10, 31)),
                      test=DateRange(dt.date(2011, 11, 1), dt.date(2011, 12, 30))),
        env=EnvSettings(episode_length=32, window=4, warmup_days=20),
    )
    return stage, panel


def _env(stage: StageSpec, panel: Panel, split: Split, n_envs: int) -> VecEnv:
    from ploutos_core.env.portfolio import PortfolioVecEnv

    return PortfolioVecEnv.from_request(EnvRequest(
        panel=panel, stage=stage, split=split, n_envs=n_envs,
        mode="train" if split == "train" else "backtest"))


def _backtest_returns(agent: Agent, env: VecEnv) -> NDArray[np.float64]:
    from ploutos_core.evaluation.backtest import run_agent_backtest

    return run_agent_backtest(agent, env).returns


def check_algorithm(algorithm: Algorithm, *, timesteps: int = 64,
                    workdir: Path | None = None, device: str = "cpu") -> AlgorithmCheck:
    """Train, predict, save, load and transfer an agent of ``algorithm`` on a tiny market.

    Checks: the agent trains to ``timesteps`` reporting every step to the monitor;
    deterministic backtests repeat exactly (recurrent agents reset their state);
    a saved checkpoint holds the metadata the core reads and loads back to the same
    actions and step count; with ``supports_transfer`` the weights load into an
    environment with another asset count, without it such a transfer is refused
    with :class:`~ploutos_core.ModelError`.

    :param algorithm: an instance of your :class:`~ploutos_core.Algorithm` subclass.
    :param timesteps: training steps (the algorithm may round up to whole rollouts).
    :param workdir: where to write the model file (a temporary directory when ``None``).
    :param device: ``cpu`` or ``cuda``.
    :raises ContractError: naming the algorithm and what it did wrong.
    """
    from ploutos_core.agents.model_files import METADATA_MEMBER, read_metadata

    name = _check_name(algorithm, "algorithm")
    if not isinstance(algorithm, Algorithm):
        raise ContractError(f"algorithm {name!r} is a {type(algorithm).__name__}; subclass "
                            f"ploutos_core.Algorithm")
    for flag in ("supports_transfer", "supports_freeze"):
        if not isinstance(getattr(algorithm, flag), bool):
            raise ContractError(f"algorithm {name!r}: {flag} must be True or False")
    stage, panel = _market_stage(("AAA", "BBB"))
    setup = TrainingSetup(hyperparameters=stage.hyperparameters, seed=0, device=device)
    agent = algorithm.build(_env(stage, panel, "train", 2), setup)
    if not isinstance(agent, Agent):
        raise ContractError(f"algorithm {name!r}: build returned {type(agent).__name__}; "
                            f"it must return a ploutos_core.Agent")
    monitor = _RecordingMonitor()
    agent.learn(timesteps, monitor)
    if agent.num_timesteps < timesteps or monitor.steps == 0:
        raise ContractError(f"algorithm {name!r}: after learn({timesteps}) the agent reports "
                            f"{agent.num_timesteps} steps and called on_step {monitor.steps} "
                            f"times; train to the target and report every batched step")
    if monitor.ended != 1:
        raise ContractError(f"algorithm {name!r}: learn called on_training_end "
                            f"{monitor.ended} times; call it once when training stops")

    validation = _env(stage, panel, "validation", 1)
    observation = np.asarray(validation.reset(), dtype=np.float32)
    agent.reset_state()
    action = np.asarray(agent.predict(observation, deterministic=True))
    expected = (1, *validation.action_space.shape)  # type: ignore[misc]
    if action.shape != expected or not np.all(np.isfinite(action)):
        raise ContractError(f"algorithm {name!r}: predict returned shape {action.shape} "
                            f"(finite: {bool(np.all(np.isfinite(action)))}); expected finite "
                            f"actions of shape {expected}")
    first = _backtest_returns(agent, validation)
    if not np.array_equal(first, _backtest_returns(agent, validation)):
        raise ContractError(f"algorithm {name!r}: two deterministic backtests differ; "
                            f"predict(deterministic=True) must repeat, and an agent with memory "
                            f"must forget it in reset_state()")

    with tempfile.TemporaryDirectory(prefix="ploutos-check-") as tmp:
        # A folder that does not exist yet: runs save checkpoints into new folders.
        path = (workdir or Path(tmp)) / "models" / stage.name / f"{name}.zip"
        try:
            agent.save(path, {"stage": stage.name})
        except OSError as exc:
            raise ContractError(f"algorithm {name!r}: save({path}) failed ({exc}); save must "
                                f"create the folders of the path it is given") from exc
        if not path.is_file():
            raise ContractError(f"algorithm {name!r}: save({path}) wrote no file there; save "
                                f"must write exactly the path it is given (with its .zip)")
        try:
            metadata = read_metadata(path)
        except ModelError as exc:
            raise ContractError(f"algorithm {name!r}: the saved file cannot be read by the "
                                f"core: {exc}") from exc
        if metadata.get("num_timesteps") != agent.num_timesteps or \
                metadata.get("stage") != stage.name:
            raise ContractError(f"algorithm {name!r}: the saved metadata {metadata} must hold "
                                f"num_timesteps={agent.num_timesteps} and the metadata passed "
                                f"to save (stage={stage.name!r})")
        if metadata.get("algorithm") != name:
            raise ContractError(f"algorithm {name!r}: the saved metadata records algorithm "
                                f"{metadata.get('algorithm')!r}; 'ploutos evaluate' loads a "
                                f"model with the algorithm its {METADATA_MEMBER} names, so "
                                f"write \"algorithm\": {name!r} there")
        loaded = algorithm.load(path, _env(stage, panel, "train", 2), setup)
        if loaded.num_timesteps != agent.num_timesteps:
            raise ContractError(f"algorithm {name!r}: load restored {loaded.num_timesteps} "
                                f"steps, the file holds {agent.num_timesteps}")
        if not np.array_equal(first, _backtest_returns(loaded, validation)):
            raise ContractError(f"algorithm {name!r}: the loaded agent acts differently from "
                                f"the saved one; load must restore every weight")
        transfers = _check_transfer(algorithm, name, path, setup)
    _check_freeze(algorithm, name, agent)
    return AlgorithmCheck(num_timesteps=agent.num_timesteps, steps_seen=monitor.steps,
                          transfers=transfers)


def _check_freeze(algorithm: Algorithm, name: str, agent: Agent) -> None:
    """``supports_freeze`` must say whether the agent's ``set_trainable`` is implemented:
    asked for a tensor name no policy has, it returns a count or raises ModelError."""
    try:
        agent.set_trainable(("__ploutos_check__",), False)
    except NotImplementedError as exc:
        if algorithm.supports_freeze:
            raise ContractError(f"algorithm {name!r} declares supports_freeze=True but its "
                                f"agent's set_trainable is not implemented ({exc})") from exc
        return
    except ModelError:
        pass
    except Exception as exc:
        raise ContractError(f"algorithm {name!r}: set_trainable raised {type(exc).__name__}: "
                            f"{exc}; refuse names that match no tensor with ModelError"
                            ) from exc
    if not algorithm.supports_freeze:
        raise ContractError(f"algorithm {name!r}: its agent implements set_trainable but the "
                            f"algorithm declares supports_freeze=False, so runs with "
                            f"[stage.transfer] freeze_fraction are refused; set it to True")


def _check_transfer(algorithm: Algorithm, name: str, path: Path, setup: TrainingSetup) -> bool:
    stage, panel = _market_stage(("AAA", "BBB", "CCC"))
    receiver = algorithm.build(_env(stage, panel, "train", 2), setup)
    try:
        report = receiver.transfer_from(path)
    except ModelError as exc:
        if algorithm.supports_transfer:
            raise ContractError(f"algorithm {name!r} declares supports_transfer=True but a "
                                f"2-asset model does not load into a 3-asset environment: "
                                f"{exc}") from exc
        return False
    except Exception as exc:
        raise ContractError(f"algorithm {name!r}: transfer_from raised {type(exc).__name__}: "
                            f"{exc}; refuse an incompatible file with ModelError") from exc
    if not algorithm.supports_transfer:
        raise ContractError(f"algorithm {name!r} declares supports_transfer=False but a 2-asset "
                            f"model loaded into a 3-asset environment; set it to True")
    if report.copied != report.total:
        raise ContractError(f"algorithm {name!r}: transfer copied {report.copied} of "
                            f"{report.total} tensors; a transfer must copy every tensor")
    returns = _backtest_returns(receiver, _env(stage, panel, "validation", 1))
    if not np.all(np.isfinite(returns)):
        raise ContractError(f"algorithm {name!r}: the transferred agent produced non-finite "
                            f"returns")
    return True
