"""The plugin module named by the ``ploutos`` entry point: what ploutos-regimes registers."""

from __future__ import annotations

from importlib import resources

from ploutos_core import DayFilter, Registrar, StageSpec, hookimpl

from ploutos_regimes.classifier import REGIMES
from ploutos_regimes.filters import RegimeFilter

#: the plugin API this module was written for; Ploutos refuses to load it if it differs.
PLOUTOS_API_VERSION = 1

#: the stage file shipped as package data.
STAGE_FILE = "regimes.toml"


def load_stages() -> list[StageSpec]:
    """The stages of the ``regimes`` curriculum, read from the package's TOML file."""
    with resources.as_file(resources.files("ploutos_regimes") / STAGE_FILE) as path:
        return StageSpec.from_toml(path)


@hookimpl
def ploutos_register_day_filters(register: Registrar[DayFilter]) -> None:
    """Register the ``bull``, ``bear`` and ``sideways`` day filters (index: SPY)."""
    for regime in REGIMES:
        register(RegimeFilter(regime))


@hookimpl
def ploutos_register_stages(register: Registrar[StageSpec]) -> None:
    """Register the ``bull``, ``sideways`` and ``bear`` stages of curriculum ``regimes``."""
    for stage in load_stages():
        register(stage)
