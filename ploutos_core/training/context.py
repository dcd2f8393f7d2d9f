"""What a run and each of its stages share, as frozen objects handed down (never the runner).

:class:`RunContext` holds what every stage of one invocation shares (registry,
options, run layout, device, output); :class:`StageContext` adds one stage's
resolved inputs (data, algorithm, step budget, environment count, episode-start
mask). The curriculum runner, tuning trials, periodic evaluation, the comparison
and :mod:`ploutos_core.testing` all build environments and agents from a
:class:`StageContext` through :mod:`ploutos_core.training.builder`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np
from numpy.typing import NDArray

from ploutos_core.agents.contract import Algorithm
from ploutos_core.config.stage import StageSpec
from ploutos_core.data.panel import Panel
from ploutos_core.data.source import DataSource
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.data.universe import Universe
from ploutos_core.errors import ConfigError
from ploutos_core.pluginmanager.hookcalls import call_hook
from ploutos_core.pluginmanager.registry import Registry
from ploutos_core.runfiles.layout import RunLayout
from ploutos_core.runfiles.manifest import Manifest


@attrs.frozen
class RunOptions:
    """Settings of one ``ploutos run`` invocation.

    :param out_dir: the run directory (``--out``).
    :param data: where prices come from.
    :param seed: seed of networks, sampling and synthetic data.
    :param device: ``auto``, ``cpu`` or ``cuda``.
    :param scale: multiplies every stage's timesteps (``--scale 0.001`` for a smoke run).
    :param n_envs: environments per stage instead of the stage's figure.
    :param algorithm: algorithm for every stage instead of the stage's own.
    :param resume: skip finished stages and continue the interrupted one.
    :param overwrite: replace outputs of an earlier run instead of refusing.
    :param ignore_gates: continue past a stage that misses its validation gate.
    :param checkpoints: checkpoints per stage (when ``checkpoint_freq`` is not set).
    :param checkpoint_freq: steps between checkpoints.
    :param eval_freq: steps between periodic evaluations on the selection window (0: off).
    :param load_model: model whose weights the first stage starts from.
    :param auto_optimize: tune each stage before training it.
    :param tuner: registered tuner name.
    :param storage: tuning storage URL (default: SQLite beside the stage).
    :param trials: trial budget instead of the stage's.
    :param loggers: logger names (``None``: the default set).
    :param progress: show progress bars.
    """

    out_dir: Path = Path(".")
    data: DataOptions = attrs.Factory(DataOptions)
    seed: int = 0
    device: str = "auto"
    scale: float = 1.0
    n_envs: int | None = None
    algorithm: str | None = None
    resume: bool = False
    overwrite: bool = False
    ignore_gates: bool = False
    checkpoints: int = 10
    checkpoint_freq: int | None = None
    eval_freq: int = 0
    load_model: Path | None = None
    auto_optimize: bool = False
    tuner: str = "optuna"
    storage: str | None = None
    trials: int | None = None
    loggers: tuple[str, ...] | None = None
    progress: bool = True

    def __attrs_post_init__(self) -> None:
        if not self.scale > 0 or self.scale == float("inf"):
            raise ConfigError(f"--scale must be a finite number > 0, got {self.scale}")
        if self.n_envs is not None and self.n_envs < 1:
            raise ConfigError(f"--n-envs must be >= 1, got {self.n_envs}")
        if self.checkpoint_freq is not None and self.checkpoint_freq < 1:
            raise ConfigError(f"--checkpoint-freq must be >= 1, got {self.checkpoint_freq}")
        if self.eval_freq < 0:
            raise ConfigError(f"--eval-freq must be >= 0, got {self.eval_freq}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be in 0…{2**32 - 1}, got {self.seed}")
        if self.resume and self.overwrite:
            raise ConfigError("--resume continues the earlier run and --overwrite replaces it; "
                              "give one of them")


@attrs.frozen(eq=False)
class RunContext:
    """What every stage of one invocation shares.

    :param registry: what the plugins registered; events are called on its plugin manager.
    :param options: the invocation's settings.
    :param device: the resolved torch device (``cpu`` or ``cuda``).
    :param echo: where progress lines go.
    :param manifest: the run manifest, once the runner has created it.
    """

    registry: Registry
    options: RunOptions
    device: str = "cpu"
    echo: Callable[[str], None] = click.echo
    manifest: Manifest | None = None

    @property
    def layout(self) -> RunLayout:
        """The paths of the run directory."""
        return RunLayout(self.options.out_dir)

    def call_event(self, hook: str, **kwargs: Any) -> None:
        """Call event hook ``hook`` through pluggy (an implementation that raises stops
        the run with an error naming its plugin)."""
        call_hook(self.registry.pm, hook, **kwargs)

    def record_stage(self, stage: str, **fields: Any) -> None:
        """Merge ``fields`` into the manifest's record of ``stage`` (when there is one)."""
        if self.manifest is not None:
            self.manifest.record_stage(stage, **fields)


@attrs.frozen(eq=False)
class StageContext:
    """One stage of a run, resolved: everything needed to build its env and agent.

    :param run: the run it belongs to.
    :param stage: the stage definition.
    :param position: its 1-based position in the run.
    :param panel: its prices, warm-up included, through the validation split.
    :param source: the data source the prices came from.
    :param algorithm: the algorithm it trains with (``--algorithm`` or the stage's).
    :param timesteps: steps to train, after ``--scale``.
    :param n_envs: environments stepped at once.
    :param start_mask: allowed training-episode starts (day filter and selection window),
        or ``None`` for every day of the train split.
    :param universe: the prices of the stage's training universe, when it has one.
    """

    run: RunContext
    stage: StageSpec
    position: int
    panel: Panel
    source: DataSource
    algorithm: Algorithm
    timesteps: int
    n_envs: int
    start_mask: NDArray[np.bool_] | None = None
    universe: Universe | None = None

    @property
    def eval_every(self) -> int:
        """Steps between evaluations on the selection window: ``--eval-freq``, else the
        stage's ``selection_every`` (0: none)."""
        return self.options.eval_freq or self.stage.selection_every

    @property
    def selects_models(self) -> bool:
        """Whether this stage's models are selected on its selection window (periodic
        evaluation or tuning); training then ends before the window."""
        return self.eval_every > 0 or self.options.auto_optimize

    @property
    def registry(self) -> Registry:
        """The run's registry."""
        return self.run.registry

    @property
    def options(self) -> RunOptions:
        """The run's options."""
        return self.run.options

    @property
    def seed(self) -> int:
        """The run's seed."""
        return self.run.options.seed

    @property
    def device(self) -> str:
        """The run's device."""
        return self.run.device
