"""Atomic file writes: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted write leaves the
previous version in place.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``.

    The temporary file lives in the target's directory (so the rename is atomic
    on one filesystem) and keeps the target's suffix, for libraries that choose
    a format by file extension.

    :param target: the final path; parent directories are created.
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}",
                                    dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


#: what :func:`atomic_path` names its temporary files: ``.<name>.<random>.tmp<suffix>``.
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]*)?$")


def remove_stale_temporaries(root: Path) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left under ``root``.

    Only safe while no other process writes there (the run lock is held).
    """
    removed = []
    if root.is_dir():
        for path in root.rglob(".*.tmp*"):
            if path.is_file() and _TEMPORARY.match(path.name):
                path.unlink()
                removed.append(path)
    return removed


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``target``."""
    write_bytes(target, text.encode("utf-8"))


def json_number(value: float) -> float | None:
    """``value`` as a float, or ``None`` (JSON ``null``) for NaN and infinities, which
    JSON cannot hold."""
    number = float(value)
    return number if math.isfinite(number) else None


def write_json(target: str | os.PathLike[str], payload: Any) -> None:
    """Atomically write ``payload`` as indented, key-sorted JSON."""
    write_text(target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
