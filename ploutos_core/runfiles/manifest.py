"""The run manifest ``reports/run.json``: what ran, on what data, with which software.

Top level: ``created``, ``command`` (the process's command line), ``run`` (run-wide
settings: seed, device, every resolved option, loggers), ``software`` (Python,
platform, package versions, git commit), ``hardware`` (CPU count, CUDA devices),
``stages`` (per stage: resolved configuration, hyperparameters, seed, device, data
fingerprint, the model it started from, best and final models, gate), and
``previous_runs`` when a run was resumed.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs

from ploutos_core.runfiles.atomic import write_json

PACKAGES = ("ploutos", "stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy",
            "pandas", "optuna", "pluggy", "attrs", "cattrs", "yfinance", "wandb", "tensorboard")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape results."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(directory: Path) -> str | None:
    """The commit checked out in ``directory`` (or a parent), when git knows one."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                                text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def git_dirty(directory: Path) -> bool | None:
    """Whether the checkout in ``directory`` has uncommitted changes (``None``: unknown)."""
    try:
        result = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=directory, capture_output=True, text=True, timeout=10,
                                check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(result.stdout.strip()) if result.returncode == 0 else None


def command_line() -> list[str]:
    """The command line of this process, program name shortened (``ploutos run …``)."""
    if not sys.argv:
        return []
    return [Path(sys.argv[0]).name, *sys.argv[1:]]


def hardware() -> dict[str, Any]:
    """CPU count and, when torch sees any, the CUDA devices and CUDA version."""
    info: dict[str, Any] = {"machine": platform.machine(), "cpu_count": os.cpu_count()}
    try:
        import torch

        cuda = torch.cuda.is_available()
        info["torch_threads"] = torch.get_num_threads()
        info["torch_cuda"] = torch.version.cuda
        info["cuda_devices"] = [torch.cuda.get_device_name(i)
                                for i in range(torch.cuda.device_count())] if cuda else []
    except Exception:  # a broken CUDA setup must not stop the manifest
        info["cuda_devices"] = None
    return info


def options_record(options: Any) -> dict[str, Any]:
    """Every field of an attrs options object (nested ones too), JSON-ready."""

    def plain(_: Any, __: Any, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    record: dict[str, Any] = attrs.asdict(options, value_serializer=plain)
    return record


class Manifest:
    """Accumulates the manifest of a run and rewrites it atomically after every change.

    :param path: ``reports/run.json``.
    :param run: the run-wide settings (seed, device, source, command line, …).
    """

    def __init__(self, path: Path, run: dict[str, Any]) -> None:
        self.path = path
        code_dir = Path(__file__).resolve().parent
        self.data: dict[str, Any] = {
            "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": command_line(),
            "run": run,
            "software": {"python": platform.python_version(), "platform": platform.platform(),
                         "packages": package_versions(), "git_commit": git_commit(code_dir),
                         "git_dirty": git_dirty(code_dir)},
            "hardware": hardware(),
            "stages": {},
        }
        if path.exists():
            self._merge_previous()

    def _merge_previous(self) -> None:
        import json

        try:
            previous = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        # A resumed run keeps the record of the stages an earlier invocation finished.
        self.data["stages"] = previous.get("stages", {})
        self.data["previous_runs"] = [*previous.get("previous_runs", []),
                                      {k: previous.get(k) for k in ("created", "command",
                                                                    "run")}]

    def record_stage(self, name: str, **fields: Any) -> None:
        """Merge ``fields`` into the record of stage ``name`` and rewrite the file."""
        self.data["stages"].setdefault(name, {}).update(fields)
        self.save()

    def forget(self, stages: list[str]) -> None:
        """Drop the records of ``stages`` (their outputs were replaced by ``--overwrite``)."""
        for name in stages:
            self.data["stages"].pop(name, None)

    def save(self) -> None:
        """Write the manifest."""
        write_json(self.path, self.data)
