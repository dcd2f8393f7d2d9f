"""Model files: find them and read their Ploutos metadata without importing torch."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from ploutos_core.errors import ModelError

METADATA_MEMBER = "ploutos.json"


def resolve_model_path(path: str | Path) -> Path:
    """``path`` itself or ``path.zip``, whichever exists.

    :raises ModelError: when neither exists.
    """
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    with_zip = candidate.with_name(candidate.name + ".zip")
    if with_zip.is_file():
        return with_zip
    raise ModelError(f"no model file at {candidate} (also tried {with_zip}); check the path, "
                     f"e.g. models/stage1_final")


def open_archive(path: Path) -> zipfile.ZipFile:
    """Open a model file as a zip archive.

    :raises ModelError: when it is not one.
    """
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path} is not a model file (not a readable zip archive): {exc}") from exc


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``ploutos.json`` of a model file (empty for a plain SB3 file)."""
    resolved = resolve_model_path(path)
    with open_archive(resolved) as archive:
        if METADATA_MEMBER not in archive.namelist():
            return {}
        try:
            data: dict[str, Any] = json.loads(archive.read(METADATA_MEMBER))
        except (ValueError, zipfile.BadZipFile) as exc:
            raise ModelError(f"{resolved}: corrupt {METADATA_MEMBER} ({exc})") from exc
        return data
