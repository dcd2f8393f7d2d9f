"""Ploutos core: the plugin contract and the public surface plugin authors import.

Plugin authors import from here (and from :mod:`ploutos_core.sb3` for plugins built
on stable-baselines3, :mod:`ploutos_core.testing` for their tests)::

    from ploutos_core import hookimpl, StageSpec, DataSource, DataRequest

Everything else under ``ploutos_core`` is internal and may change between releases.
Users who want Ploutos in a notebook import :mod:`ploutos` (the Python API).
"""

from ploutos_core.agents.contract import (
    Agent,
    Algorithm,
    TrainingMonitor,
    TrainingSetup,
    TransferReport,
)
from ploutos_core.agents.model_files import METADATA_MEMBER, read_metadata, resolve_model_path
from ploutos_core.config.stage import (
    EnvSettings,
    Gate,
    Hyperparameters,
    Splits,
    StageSpec,
    TuningSpace,
)
from ploutos_core.data.cache import ParquetCache
from ploutos_core.data.panel import DateRange, Panel
from ploutos_core.data.source import DataRequest, DataSource
from ploutos_core.data.stage_data import DataOptions
from ploutos_core.env.base import EnvBuilder, EnvRequest
from ploutos_core.env.day_filters import DayFilter, DayFilterContext
from ploutos_core.errors import (
    BrokerBusyError,
    BrokerError,
    ConfigError,
    DataError,
    DeviceError,
    GateFailedError,
    ModelError,
    PloutosError,
    PluginError,
    PluginLoadError,
    StageFileError,
    StaleDataError,
    UnknownNameError,
)
from ploutos_core.hookspecs import hookimpl
from ploutos_core.pluginmanager.manager import PLUGIN_API_VERSION, get_plugin_manager
from ploutos_core.pluginmanager.registry import Registrar, Registry
from ploutos_core.runfiles.atomic import atomic_path, json_number, write_json, write_text
from ploutos_core.tracking.contract import LoggerFactory, LoggerRun, MetricLogger
from ploutos_core.trading.contract import (
    Broker,
    BrokerAccount,
    BrokerRequest,
    CycleOutcome,
    CycleRecord,
    Fill,
    Holdings,
    MarketCloses,
    Order,
    OrderPlanner,
)
from ploutos_core.training.records import Checkpoint, StageResult, StageRun
from ploutos_core.tuning.contract import (
    TrialPruned,
    Tuner,
    TuningProblem,
    TuningResult,
    format_params,
    redact_storage,
)

__version__ = "0.1.0"

__all__ = [
    "METADATA_MEMBER",
    "PLUGIN_API_VERSION",
    "Agent",
    "Algorithm",
    "Broker",
    "BrokerAccount",
    "BrokerBusyError",
    "BrokerError",
    "BrokerRequest",
    "Checkpoint",
    "ConfigError",
    "CycleOutcome",
    "CycleRecord",
    "DataError",
    "DataOptions",
    "DataRequest",
    "DataSource",
    "DateRange",
    "DayFilter",
    "DayFilterContext",
    "DeviceError",
    "EnvBuilder",
    "EnvRequest",
    "EnvSettings",
    "Fill",
    "Gate",
    "GateFailedError",
    "Holdings",
    "Hyperparameters",
    "LoggerFactory",
    "LoggerRun",
    "MarketCloses",
    "MetricLogger",
    "ModelError",
    "Order",
    "OrderPlanner",
    "Panel",
    "ParquetCache",
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
    "StaleDataError",
    "TrainingMonitor",
    "TrainingSetup",
    "TransferReport",
    "TrialPruned",
    "Tuner",
    "TuningProblem",
    "TuningResult",
    "TuningSpace",
    "UnknownNameError",
    "__version__",
    "atomic_path",
    "format_params",
    "get_plugin_manager",
    "hookimpl",
    "json_number",
    "read_metadata",
    "redact_storage",
    "resolve_model_path",
    "write_json",
    "write_text",
]
