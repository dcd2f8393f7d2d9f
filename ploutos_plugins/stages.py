"""Built-in stages plugin: serves the TOML files of the ``ploutos_stages`` package data."""

from __future__ import annotations

from importlib import resources

from ploutos_core import Registrar, StageSpec, hookimpl


def builtin_stage_files() -> list[str]:
    """Names of the bundled stage files, sorted."""
    return sorted(p.name for p in resources.files("ploutos_stages").iterdir()
                  if p.name.endswith(".toml"))


@hookimpl
def ploutos_register_stages(register: Registrar[StageSpec]) -> None:
    """Register stage1, stage2 and stage3 of the default curriculum."""
    for name in builtin_stage_files():
        with resources.as_file(resources.files("ploutos_stages") / name) as path:
            for stage in StageSpec.from_toml(path):
                register(stage)
