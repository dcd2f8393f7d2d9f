"""Ploutos core: the plugin contract, data model, environment, runner and CLI.

Plugin authors import from here only::

    from ploutos_core import hookimpl, StageSpec, DataSource, DataRequest
"""

from ploutos_core.agents.contract import Agent, Algorithm, TrainingMonitor, TrainingSetup, TransferReport
from ploutos_core.data.panel import DateRange, Panel
from ploutos_core.data.source import DataRequest, DataSource
from ploutos_core.env.day_filters import DayFilter, DayFilterContext
from ploutos_core.env.base import EnvBuilder, EnvRequest
from ploutos_core.errors import (
    ConfigError,
    DataError,
    DeviceError,
    GateFailedError,
    ModelError,
    PloutosError,
    PluginError,
    PluginLoadError,
    StageFileError,
    UnknownNameError,
)
from ploutos_core.hookspecs import hookimpl
from ploutos_core.tracking.contract import LoggerFactory, LoggerRun, MetricLogger
from ploutos_core.pluginmanager.manager import PLUGIN_API_VERSION, get_plugin_manager
from ploutos_core.pluginmanager.registry import Registrar, Registry
from ploutos_core.training.records import Checkpoint, StageResult, StageRun
from ploutos_core.config.stage import EnvSettings, Gate, Hyperparameters, Splits, StageSpec, TuningSpace
from ploutos_core.tuning.contract import Tuner, TuningProblem, TuningResult

__version__ = "0.1.0"

__all__ = [
    "PLUGIN_API_VERSION",
    "Agent",
    "Algorithm",
    "Checkpoint",
    "ConfigError",
    "DataError",
    "DataRequest",
    "DataSource",
    "DateRange",
    "DayFilter",
    "DayFilterContext",
    "DeviceError",
    "EnvBuilder",
    "EnvRequest",
    "EnvSettings",
    "Gate",
    "GateFailedError",
    "Hyperparameters",
    "LoggerFactory",
    "LoggerRun",
    "MetricLogger",
    "ModelError",
    "Panel",
    "PloutosError",
    "PluginError",
    "PluginLoadError",
    "Registrar",
    "Registry",
    "Splits",
    "StageFileError",
    "StageResult",
    "StageRun",
    "StageSpec",
    "TrainingMonitor",
    "TrainingSetup",
    "TransferReport",
    "Tuner",
    "TuningProblem",
    "TuningResult",
    "TuningSpace",
    "UnknownNameError",
    "__version__",
    "get_plugin_manager",
    "hookimpl",
]
