"""The run manifest ``reports/run.json``: what ran, on what data, with which software."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any

from ploutos_core.atomic import write_json

PACKAGES = ("ploutos", "stable-baselines3", "sb3-contrib", "torch", "gymnasium", "numpy",
            "pandas", "optuna", "pluggy", "attrs", "cattrs", "yfinance", "wandb")


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
            "run": run,
            "software": {"python": platform.python_version(), "platform": platform.platform(),
                         "packages": package_versions(), "git_commit": git_commit(code_dir)},
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
                                      {k: previous.get(k) for k in ("created", "run")}]

    def record_stage(self, name: str, **fields: Any) -> None:
        """Merge ``fields`` into the record of stage ``name`` and rewrite the file."""
        self.data["stages"].setdefault(name, {}).update(fields)
        self.save()

    def save(self) -> None:
        """Write the manifest."""
        write_json(self.path, self.data)
