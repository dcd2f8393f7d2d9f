"""One process owns a run directory: an exclusive lock on ``<out>/.ploutos.lock``.

The lock is an advisory ``flock`` held for the whole run, so the kernel releases it
when the process ends in any way, ``kill -9`` included: a lock file left behind by a
dead process is simply taken over (and said so). A second process asking for the
same directory is refused at once with the owner's pid and command (issue 14).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ploutos_core.errors import ConfigError

LOCK_NAME = ".ploutos.lock"


def _owner(handle: Any) -> dict[str, Any]:
    handle.seek(0)
    try:
        data = json.loads(handle.read() or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def run_lock(directory: Path, *, what: str = "run",
             echo: Any = None) -> Iterator[Path]:
    """Hold the lock of ``directory`` for the block.

    :param what: how messages name the work (``run``, ``comparison``, …).
    :param echo: where to say that a stale lock was taken over (``None``: stderr).
    :raises ConfigError: when another live process holds it.
    """
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    with path.open("a+", encoding="utf-8") as handle:  # closing it releases the flock
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _owner(handle)
            raise ConfigError(
                f"{directory} is in use by another Ploutos process (pid {owner.get('pid', '?')}"
                f", started {owner.get('started', '?')}: {owner.get('command', '?')}); wait for "
                f"it to finish, stop it, or choose another --out"
            ) from None
        previous = _owner(handle)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            line = (f"note: taking over the lock of {directory} left by pid {previous['pid']} "
                    f"({previous.get('command', '?')}), which is no longer running")
            (echo or (lambda text: print(text, file=sys.stderr)))(line)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "what": what,
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}))
        handle.flush()
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
                handle.flush()
                if created and [p.name for p in directory.iterdir()] == [LOCK_NAME]:
                    # Refused before writing anything: leave no directory behind.
                    path.unlink()
                    directory.rmdir()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``path`` for a short critical section
    (e.g. several tuning workers writing one result file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
