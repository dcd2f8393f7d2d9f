"""Write the small subset of TOML that stage files use (tables, scalars, lists, dates)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).isoformat() if len(value) == 10 else \
                json.dumps(value)
        except ValueError:
            return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dumps(data: Mapping[str, Any], table: str) -> str:
    """Render ``data`` as the TOML table ``[table]``.

    Mapping values become sub-tables ``[table.key]``; mappings inside those are
    written inline (``train = { start = 2005-01-01, end = 2018-12-31 }``).
    ``None`` values are omitted.
    """
    lines = [f"[{table}]"]
    subtables = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            subtables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    for key, value in subtables:
        lines.extend(["", f"[{table}.{key}]"])
        lines.extend(f"{k} = {_value(v)}" for k, v in value.items() if v is not None)
    return "\n".join(lines) + "\n"
