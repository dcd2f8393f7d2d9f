"""Built-in metric loggers: ``tensorboard``, ``wandb`` and ``jsonl`` (issue 6).

Each factory is opened once per stage by the curriculum runner and receives the
same metrics (see :data:`ploutos_core.training.METRICS`):

- ``tensorboard`` (on by default): event files under ``logs/<stage>/``, so
  ``tensorboard --logdir logs/`` shows one run per stage.
- ``wandb`` (off by default, ``--logger wandb``): one Weights & Biases run per
  stage in project ``Ploutos_Curriculum`` (``WANDB_PROJECT`` overrides it),
  online when credentials and network exist, offline otherwise; ``WANDB_MODE``
  always wins. Any W&B failure is one warning and the run goes on without it.
- ``jsonl`` (always on): ``reports/<stage>/metrics.jsonl``, one JSON record per
  write, appended to by a resumed run.
"""

from __future__ import annotations

import contextlib
import json
import netrc
import os
import socket
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from ploutos_core import (
    LoggerFactory,
    LoggerRun,
    MetricLogger,
    Registrar,
    hookimpl,
    json_number,
    write_text,
)

#: the W&B project when neither ``WANDB_PROJECT`` nor the run names another.
DEFAULT_PROJECT = "Ploutos_Curriculum"


# --- TensorBoard -------------------------------------------------------------------------


class TensorBoardLogger(MetricLogger):
    """Scalars into a TensorBoard event file under ``logs/<stage>/``.

    :param run: the stage run; its ``log_dir`` receives the event files.
    """

    def __init__(self, run: LoggerRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        start = run.start_step
        run.log_dir.mkdir(parents=True, exist_ok=True)
        # purge_step hides what an interrupted invocation logged after its last checkpoint.
        self.writer = SummaryWriter(log_dir=str(run.log_dir),
                                    purge_step=start + 1 if start else None)
        config = json.dumps(dict(run.config), indent=2, sort_keys=True, default=str)
        self.writer.add_text("config", f"```\n{config}\n```", global_step=start)

    def write(self, metrics: Mapping[str, float], step: int) -> None:
        """Add one scalar per metric at ``step``."""
        for key, value in metrics.items():
            self.writer.add_scalar(key, float(value), global_step=step)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()


class TensorBoardFactory(LoggerFactory):
    """``tensorboard``: one run per stage under ``logs/<stage>/``."""

    name = "tensorboard"
    description = "TensorBoard event files under logs/<stage>/ (tensorboard --logdir logs/)"
    default_enabled = True

    def open(self, run: LoggerRun) -> MetricLogger:
        """Open the stage's event file."""
        return TensorBoardLogger(run)


# --- JSON lines --------------------------------------------------------------------------


class JsonLinesLogger(MetricLogger):
    """One JSON object per write in ``reports/<stage>/metrics.jsonl``.

    Each line is ``{"step": …, "time": …, "<metric>": …}`` with ``time`` in Unix
    seconds and non-finite numbers as ``null``. The file is opened for appending,
    so a resumed stage continues it; lines after the resume point are dropped
    first, as TensorBoard's ``purge_step`` does.

    :param path: the ``.jsonl`` file.
    :param keep_through: drop existing records with a larger step (``None``: keep all).
    """

    def __init__(self, path: Path, keep_through: int | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if keep_through is not None and path.exists():
            self._truncate(keep_through)
        self.handle: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def _truncate(self, keep_through: int) -> None:
        kept = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                step = json.loads(line).get("step", 0)
            except (ValueError, AttributeError):
                continue  # a line cut short by a crash
            if isinstance(step, int) and step <= keep_through:
                kept.append(line)
        write_text(self.path, "".join(f"{line}\n" for line in kept))

    def write(self, metrics: Mapping[str, float], step: int) -> None:
        """Append one record and flush it, so a crash loses at most the current line."""
        if self.handle is None:
            raise ValueError(f"{self.path} is closed")
        record: dict[str, Any] = {"step": int(step), "time": round(time.time(), 3)}
        record.update((key, json_number(value)) for key, value in metrics.items())
        self.handle.write(json.dumps(record, allow_nan=False) + "\n")
        self.handle.flush()

    def close(self) -> None:
        """Close the file."""
        if self.handle is not None:
            self.handle.close()
            self.handle = None


class JsonLinesFactory(LoggerFactory):
    """``jsonl``: ``reports/<stage>/metrics.jsonl``; always on."""

    name = "jsonl"
    description = "one JSON record per logging step in reports/<stage>/metrics.jsonl (always on)"
    default_enabled = True

    def open(self, run: LoggerRun) -> MetricLogger:
        """Open (append to) the stage's ``metrics.jsonl``."""
        start = run.start_step
        return JsonLinesLogger(run.report_dir / "metrics.jsonl",
                               keep_through=start if start else None)


# --- Weights & Biases --------------------------------------------------------------------


class NullLogger(MetricLogger):
    """Accepts and forgets metrics: what a logger becomes after a reported failure."""

    def write(self, metrics: Mapping[str, float], step: int) -> None:
        """Do nothing."""


def wandb_credentials_present() -> bool:
    """Whether a W&B API key is set (``WANDB_API_KEY``) or stored in ``~/.netrc``."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return bool(host) and netrc.netrc(os.environ.get("NETRC")).authenticators(
            host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_reachable(timeout: float = 3.0) -> bool:
    """Whether the W&B server accepts a TCP connection within ``timeout`` seconds."""
    url = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai"))
    port = url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((url.hostname or "api.wandb.ai", port), timeout=timeout):
            return True
    except OSError:
        return False


def wandb_mode() -> tuple[str, str | None]:
    """The W&B mode to use and, when chosen for the user, why.

    ``WANDB_MODE`` wins; otherwise ``online`` when an API key and the server are
    there, else ``offline`` (upload later with ``wandb sync``).
    """
    explicit = os.environ.get("WANDB_MODE")
    if explicit:
        return explicit, None
    if not wandb_credentials_present():
        return "offline", "no W&B API key (WANDB_API_KEY or 'wandb login')"
    if not wandb_reachable():
        return "offline", "the W&B server cannot be reached"
    return "online", None


def _warn_wandb(what: str, exc: BaseException) -> None:
    warnings.warn(f"Weights & Biases {what} failed ({type(exc).__name__}: {exc}); training "
                  f"continues without the wandb logger", stacklevel=3)


class WandbLogger(MetricLogger):
    """Logs to one W&B run; the first failure is a warning and turns it into a no-op.

    :param wandb_run: the object ``wandb.init`` returned.
    """

    def __init__(self, wandb_run: Any) -> None:
        self.run: Any = wandb_run

    def write(self, metrics: Mapping[str, float], step: int) -> None:
        """Log ``metrics`` at ``step`` (non-finite values as ``None``)."""
        if self.run is None:
            return
        try:
            self.run.log({key: json_number(value) for key, value in metrics.items()},
                         step=int(step))
        except Exception as exc:  # W&B problems never stop training (issue 6)
            _warn_wandb("logging", exc)
            self._finish_quietly()

    def close(self) -> None:
        """Finish the W&B run (offline runs are then ready for ``wandb sync``)."""
        if self.run is None:
            return
        try:
            self.run.finish()
        except Exception as exc:  # same reason as above
            _warn_wandb("finishing the run", exc)
        self.run = None

    def _finish_quietly(self) -> None:
        run, self.run = self.run, None
        # Already reported once; a second warning would help nobody.
        with contextlib.suppress(Exception):
            run.finish(exit_code=1)


class WandbFactory(LoggerFactory):
    """``wandb``: one Weights & Biases run per stage, online or offline."""

    name = "wandb"
    description = ("Weights & Biases, one run per stage in project Ploutos_Curriculum "
                   "(WANDB_PROJECT); offline without credentials")
    default_enabled = False

    def open(self, run: LoggerRun) -> MetricLogger:
        """Start the stage's W&B run, or warn once and return a no-op logger."""
        try:
            import wandb
        except Exception as exc:  # not installed, or broken: warn, don't stop
            _warn_wandb("import", exc)
            return NullLogger()
        mode, reason = wandb_mode()
        project = os.environ.get("WANDB_PROJECT") or run.project or DEFAULT_PROJECT
        kwargs: dict[str, Any] = {
            "project": project, "name": run.stage, "job_type": "train", "mode": mode,
            "config": dict(run.config), "tags": [tag[:64] for tag in run.tags],
        }
        if not os.environ.get("WANDB_DIR"):
            kwargs["dir"] = str(run.run_dir)  # runs land in <out>/wandb/
        if not os.environ.get("WANDB_RUN_GROUP"):
            kwargs["group"] = run.run_dir.resolve().name or None
        if reason:
            where = os.environ.get("WANDB_DIR") or str(run.run_dir)
            warnings.warn(f"Weights & Biases logs offline for stage {run.stage}: {reason}; "
                          f"upload later with 'wandb sync {Path(where) / 'wandb'}/offline-run-*'",
                          stacklevel=2)
        try:
            wandb_run = wandb.init(**kwargs)
        except Exception as exc:  # W&B problems never stop training (issue 6)
            _warn_wandb("start", exc)
            return NullLogger()
        return WandbLogger(wandb_run)


@hookimpl
def ploutos_register_loggers(register: Registrar[LoggerFactory]) -> None:
    """Register the TensorBoard, W&B and JSON-lines loggers."""
    register(TensorBoardFactory())
    register(WandbFactory())
    register(JsonLinesFactory())
