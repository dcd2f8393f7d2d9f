"""The whole plugin contract of Ploutos: every hook a plugin may implement.

Hooks come in three kinds:

* **Registries** — ``ploutos_register_<plural>(register)``: called once per
  plugin manager; the plugin calls ``register(obj)`` for each object it
  supplies. Each object carries its own ``name``. A duplicate name, or an
  object of the wrong type, is an error naming both plugins. Registry hooks
  must return ``None``.
* **Events** — ``ploutos_before_stage``, ``ploutos_on_checkpoint``,
  ``ploutos_after_stage``: called by the curriculum runner, in that order, for
  every stage; every implementation is called and return values are ignored.
* **Commands** — ``ploutos_register_commands(cli)``: add click commands.

Implementations may accept fewer arguments than a spec lists (pluggy passes
only the ones they name); specs only ever gain arguments. Import the marker as
``from ploutos_core import hookimpl``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from ploutos_core.agents.contract import Algorithm
    from ploutos_core.config.stage import StageSpec
    from ploutos_core.data.source import DataSource
    from ploutos_core.env.base import EnvBuilder
    from ploutos_core.env.day_filters import DayFilter
    from ploutos_core.pluginmanager.registry import Registrar
    from ploutos_core.tracking.contract import LoggerFactory
    from ploutos_core.trading.contract import Broker
    from ploutos_core.training.records import Checkpoint, StageResult, StageRun
    from ploutos_core.tuning.contract import Tuner

PROJECT_NAME = "ploutos"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def ploutos_register_data_sources(register: Registrar[DataSource]) -> None:
    """Register data sources (``--source NAME``).

    Called once when the registry of a plugin manager is first asked for data
    sources.

    :param register: call ``register(source)`` with an instance of a
        :class:`ploutos_core.DataSource` subclass for each source; its ``name``
        attribute is the name users type.
    """


@hookspec
def ploutos_register_env_builders(register: Registrar[EnvBuilder]) -> None:
    """Register environment builders (a stage's ``env_builder`` field).

    :param register: call ``register(builder)`` with an instance of a
        :class:`ploutos_core.EnvBuilder` subclass.
    """


@hookspec
def ploutos_register_algorithms(register: Registrar[Algorithm]) -> None:
    """Register training algorithms (``--algorithm NAME``, a stage's ``algorithm`` field).

    :param register: call ``register(algorithm)`` with an instance of a
        :class:`ploutos_core.Algorithm` subclass.
    """


@hookspec
def ploutos_register_tuners(register: Registrar[Tuner]) -> None:
    """Register hyperparameter tuners (``--tuner NAME``).

    :param register: call ``register(tuner)`` with an instance of a
        :class:`ploutos_core.Tuner` subclass.
    """


@hookspec
def ploutos_register_loggers(register: Registrar[LoggerFactory]) -> None:
    """Register metric loggers (``--logger NAME``).

    :param register: call ``register(factory)`` with an instance of a
        :class:`ploutos_core.LoggerFactory` subclass; the runner opens one logger
        per stage from it.
    """


@hookspec
def ploutos_register_stages(register: Registrar[StageSpec]) -> None:
    """Register curriculum stages (``ploutos stages list``).

    :param register: call ``register(stage)`` with a :class:`ploutos_core.StageSpec`,
        typically built with ``StageSpec.from_toml(path)`` from a file shipped
        as package data. A stage joins the curriculum named by its
        ``curriculum`` field at position ``order``.
    """


@hookspec
def ploutos_register_day_filters(register: Registrar[DayFilter]) -> None:
    """Register day filters that restrict where training episodes start.

    :param register: call ``register(day_filter)`` with an instance of a
        :class:`ploutos_core.DayFilter` subclass; stages select it with
        ``[stage.env] day_filter = "NAME"``.
    """


@hookspec
def ploutos_register_brokers(register: Registrar[Broker]) -> None:
    """Register brokers (``ploutos trade --broker NAME``, ``ploutos signal --broker NAME``).

    Called once when the registry of a plugin manager is first asked for brokers.
    A broker opens accounts; ``ploutos trade`` runs one cycle per trading day on an
    account through :meth:`ploutos_core.BrokerAccount.run_cycle`, which must be
    atomic and idempotent per trading day (docs/brokers.md; check an
    implementation with :func:`ploutos_core.testing.check_broker`).

    :param register: call ``register(broker)`` with an instance of a
        :class:`ploutos_core.Broker` subclass; its ``name`` attribute is the name
        users type. Read credentials from the environment when the account is
        opened, never at registration: listing plugins must work offline.
    """


@hookspec
def ploutos_register_commands(cli: click.Group) -> None:
    """Add commands to the ``ploutos`` command line.

    Called once while the CLI is built, after the built-in commands exist.

    :param cli: the top-level click group; use ``@cli.command()`` or
        ``cli.add_command(...)``. A name already taken is an error.
    """


@hookspec
def ploutos_before_stage(run: StageRun) -> None:
    """Called before a stage is tuned and trained.

    :param run: the stage, its position, seed, device, effective timesteps and
        the model it starts from.
    """


@hookspec
def ploutos_on_checkpoint(run: StageRun, checkpoint: Checkpoint) -> None:
    """Called after each checkpoint file of a stage is written.

    :param run: the stage being trained.
    :param checkpoint: the file and the step count it holds.
    """


@hookspec
def ploutos_after_stage(run: StageRun, result: StageResult) -> None:
    """Called after a stage is trained, evaluated on validation and gated.

    Also called when the gate fails, before the curriculum stops.

    :param run: the stage that ran.
    :param result: final model, validation metrics and the gate decision.
    """
