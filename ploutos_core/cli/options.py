"""Click options shared by several commands."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ploutos_core.agents.device import CHOICES as DEVICE_CHOICES

F = TypeVar("F", bound=Callable[..., Any])


def _compose(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


stage_file_option = click.option(
    "--stage-file", "stage_files", multiple=True, type=click.Path(dir_okay=False),
    help="TOML file of extra stages (repeatable); see docs/stages.md.")

data_options = _compose(
    click.option("--source", default="yfinance", show_default=True,
                 help="Data source plugin: yfinance, csv, synthetic, or one a plugin adds."),
    click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
                 envvar="PLOUTOS_DATA_DIR", show_envvar=True,
                 help="Directory of data files for file sources such as --source csv; "
                      "every data source receives it in its request."),
    click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                 default=Path("data_cache"), show_default=True,
                 help="Download cache of the yfinance source."),
    click.option("--refresh", is_flag=True, help="Download again even when cached."),
)

seed_option = click.option("--seed", type=int, default=0, show_default=True,
                           help="Seed of networks, episode sampling and synthetic data.")

device_option = click.option(
    "--device", type=click.Choice(DEVICE_CHOICES), default="auto", show_default=True,
    help="Where the policy runs; auto picks CUDA when a GPU is present.")


def split_list(value: str | None) -> tuple[str, ...]:
    """``"A, B,C"`` → ``("A", "B", "C")``."""
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())
