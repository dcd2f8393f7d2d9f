"""Read an account's holdings from a positions file (``ploutos signal --positions FILE``).

Two formats, chosen by the file's suffix:

* JSON: ``{"cash": 2500.0, "positions": {"SPY": 12, "QQQ": 4}}`` (or the tickers and
  ``cash`` at the top level: ``{"SPY": 12, "QQQ": 4, "cash": 2500.0}``);
* CSV: a header ``ticker,shares`` and one row per ticker; the row ``cash`` holds the
  cash amount in its ``shares`` column.

Every ticker must be one the stage trades, shares and cash finite and not negative;
anything else is refused with one line naming the file and the problem.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ploutos_core.errors import ConfigError
from ploutos_core.trading.contract import Holdings

CASH_NAMES = ("cash", "$cash", "_cash")


def read_positions(path: str | Path, tickers: Sequence[str]) -> Holdings:
    """The holdings a positions file describes.

    :param path: a ``.json`` or ``.csv`` file.
    :param tickers: the stage's tickers (the only ones allowed).
    :raises ConfigError: for an unreadable file, an unknown ticker, a negative or
        non-numeric amount, a ticker listed twice or an empty account.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"positions file {path}: cannot read it ({exc})") from exc
    if path.suffix.lower() == ".json":
        entries = _json_entries(path, text)
    elif path.suffix.lower() == ".csv":
        entries = _csv_entries(path, text)
    else:
        raise ConfigError(f"positions file {path}: use a .json or .csv file (see 'ploutos "
                          f"signal --help')")
    return _holdings(path, entries, tuple(tickers))


def _json_entries(path: Path, text: str) -> list[tuple[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"positions file {path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"positions file {path}: expected an object like "
                          f'{{"cash": 1000, "positions": {{"SPY": 10}}}}')
    entries: list[tuple[str, Any]] = []
    nested = data.get("positions")
    if nested is not None:
        if not isinstance(nested, dict):
            raise ConfigError(f"positions file {path}: \"positions\" must be an object of "
                              f"ticker: shares")
        extra = sorted(set(data) - {"positions", "cash"})
        if extra:
            raise ConfigError(f"positions file {path}: unknown key(s) {', '.join(extra)}; use "
                              f"\"cash\" and \"positions\"")
        entries.extend(nested.items())
        if "cash" in data:
            entries.append(("cash", data["cash"]))
    else:
        entries.extend(data.items())
    return entries


def _csv_entries(path: Path, text: str) -> list[tuple[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "ticker" not in fields or "shares" not in fields:
        raise ConfigError(f"positions file {path}: the CSV header must be 'ticker,shares' "
                          f"(found {','.join(reader.fieldnames or []) or 'nothing'})")
    entries = []
    for row in reader:
        cleaned = {str(k).strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if not any(cleaned.values()):
            continue
        entries.append((cleaned["ticker"], cleaned["shares"]))
    return entries


def _number(path: Path, name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"positions file {path}: {name} = {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"positions file {path}: {name} = {value!r} is not a number") from exc
    if not math.isfinite(number):
        raise ConfigError(f"positions file {path}: {name} = {value!r} is not a finite number")
    if number < 0:
        raise ConfigError(f"positions file {path}: {name} = {number:g} is negative; Ploutos "
                          f"trades long-only, so shares and cash must be >= 0")
    return number


def _holdings(path: Path, entries: list[tuple[str, Any]], tickers: tuple[str, ...]
              ) -> Holdings:
    cash = 0.0
    positions: dict[str, float] = {}
    unknown = []
    seen: set[str] = set()
    for raw_name, value in entries:
        name = str(raw_name).strip()
        is_cash = name.lower() in CASH_NAMES
        key = "cash" if is_cash else name
        if key in seen:
            raise ConfigError(f"positions file {path}: {key} is listed twice")
        seen.add(key)
        if is_cash:
            cash = _number(path, "cash", value)
        elif name not in tickers:
            unknown.append(name)
        else:
            positions[name] = _number(path, name, value)
    if unknown:
        raise ConfigError(f"positions file {path}: unknown ticker(s) {', '.join(unknown)}; the "
                          f"stage trades {', '.join(tickers)} (sell the others yourself or "
                          f"remove them from the file)")
    if cash <= 0 and not any(positions.values()):
        raise ConfigError(f"positions file {path}: the account holds no cash and no shares; "
                          f"there is nothing to allocate")
    return Holdings(cash=cash, positions=positions)
