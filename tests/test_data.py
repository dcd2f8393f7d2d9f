"""Data sources, validation and alignment, the cache, and ``ploutos data``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ploutos_core import DataError, DataRequest, DateRange
from ploutos_core.data.cache import ParquetCache
from ploutos_core.data.loading import load_panel
from ploutos_core.data.validation import align
from ploutos_core.errors import PloutosWarning
from ploutos_plugins.synthetic_source import synthetic_frame
from ploutos_plugins.yfinance_source import YFinanceSource

FIXTURES = Path(__file__).parent / "fixtures"


def yahoo_csv(ticker: str, start: str = "2015-01-01", end: str = "2016-12-31",
              seed: int = 3) -> pd.DataFrame:
    """A frame in the format of ../shared/market-data/daily (Yahoo Finance export)."""
    frame = synthetic_frame(ticker, seed).loc[start:end]
    out = pd.DataFrame({
        "Date": frame.index.strftime("%Y-%m-%d"), "Open": frame["open"].to_numpy(),
        "High": frame["high"].to_numpy(), "Low": frame["low"].to_numpy(),
        "Close": frame["close"].to_numpy(), "Adj Close": "",
        "Volume": frame["volume"].astype(int).to_numpy(),
    })
    return out


def write_dir(tmp_path: Path, frames: dict[str, pd.DataFrame]) -> Path:
    directory = tmp_path / "csvdata"
    directory.mkdir(exist_ok=True)
    for ticker, frame in frames.items():
        frame.to_csv(directory / f"{ticker}.csv", index=False)
    return directory


def load_csv(registry, directory: Path, *tickers: str):  # type: ignore[no-untyped-def]
    return load_panel(registry.data_source("csv"),
                      DataRequest(tickers=tickers, data_dir=directory))


def test_csv_source_loads_and_aligns(registry, tmp_path: Path) -> None:
    directory = write_dir(tmp_path, {"AAA": yahoo_csv("AAA"),
                                     "BBB": yahoo_csv("BBB", start="2015-03-02")})
    with pytest.warns(PloutosWarning, match=r"BBB start\(s\) on 2015-03-02, so every ticker's "
                                            r"data begin there instead of 2015-01-01"):
        panel = load_csv(registry, directory, "AAA", "BBB")
    assert panel.tickers == ("AAA", "BBB")
    assert panel.date(0) == dt.date(2015, 3, 2)  # the common range starts with BBB
    assert panel.close.shape == (panel.n_days, 2)
    assert np.all(panel.close > 0)
    assert panel.source == "csv"


@pytest.mark.parametrize(("corrupt", "message"), [
    (lambda f: f.assign(Close=f["Close"].where(f.index != 10, -1.0)),
     r"AAA \(.*AAA.csv\): close price -1.0 on 2015-01-15 is not positive"),
    (lambda f: f.assign(Open=f["Open"].where(f.index != 12, np.nan)),
     r"open price on 2015-01-19 is missing"),
    (lambda f: pd.concat([f.iloc[:20], f.iloc[19:20], f.iloc[20:]]),
     r"AAA .*duplicate date 2015-01-28"),
    (lambda f: pd.concat([f.iloc[:20], f.iloc[21:22], f.iloc[20:21], f.iloc[22:]]),
     r"AAA .*dates out of order at 2015-01-29"),
    (lambda f: f.assign(High=f["High"].where(f.index != 30, f["Low"] * 0.5)),
     r"AAA .*OHLC bounds broken on 2015-02-12"),
    (lambda f: f.drop(columns=["Volume"]), r"AAA .*missing column\(s\) volume"),
    (lambda f: f.iloc[0:0], r"AAA .*no rows of data"),
    # issue 14: one line naming the value, and holes a market closure cannot explain
    (lambda f: f.assign(Date=f["Date"].where(f.index != 5, "2015-13-01")),
     r"AAA .*date '2015-13-01' on data row 6 cannot be read; write dates as YYYY-MM-DD$"),
    (lambda f: f.assign(Close=f["Close"].astype(object).where(f.index != 7, "abc")),
     r"AAA .*close value 'abc' on 2015-01-12 is not a number$"),
    (lambda f: pd.concat([f.iloc[:20], f.iloc[42:]]),
     r"AAA .*no prices for 22 weekdays between 2015-01-28 and 2015-03-02; fill the hole"),
])
def test_bad_rows_are_refused_naming_file_and_first_bad_date(
        registry, tmp_path: Path, corrupt, message: str) -> None:  # type: ignore[no-untyped-def]
    directory = write_dir(tmp_path, {"AAA": corrupt(yahoo_csv("AAA"))})
    with pytest.raises(DataError, match=message):
        load_csv(registry, directory, "AAA")


def test_a_semicolon_separated_file_gets_a_hint(registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "AAA.csv").write_text("Date;Open;High;Low;Close;Volume\n"
                                      "2015-01-02;1;1;1;1;1\n")
    with pytest.raises(DataError, match="the file seems separated by ';': Ploutos reads "
                                        "comma-separated files"):
        load_csv(registry, tmp_path, "AAA")


def test_rounding_noise_in_ohlc_bounds_is_tolerated(registry, tmp_path: Path) -> None:
    frame = yahoo_csv("AAA")
    frame.loc[5, "High"] = max(frame.loc[5, "Open"], frame.loc[5, "Close"]) * (1 - 1e-15)
    load_csv(registry, write_dir(tmp_path, {"AAA": frame}), "AAA")


def test_missing_day_inside_common_range_is_an_error(registry, tmp_path: Path) -> None:
    gappy = yahoo_csv("BBB").drop(index=40)
    directory = write_dir(tmp_path, {"AAA": yahoo_csv("AAA"), "BBB": gappy})
    with pytest.raises(DataError, match=r"BBB .*missing 2015-02-26 \(1 day\(s\) in all\) that "
                                        r"AAA trade\(s\)"):
        load_csv(registry, directory, "AAA", "BBB")


def test_unknown_ticker_and_missing_directory(registry, tmp_path: Path) -> None:
    directory = write_dir(tmp_path, {"AAA": yahoo_csv("AAA")})
    with pytest.raises(DataError, match=r"unknown ticker 'ZZZ': no ZZZ.csv in .*available: AAA"):
        load_csv(registry, directory, "ZZZ")
    with pytest.raises(DataError, match="does not exist"):
        load_csv(registry, tmp_path / "nowhere", "AAA")
    with pytest.raises(DataError, match="--data-dir DIR or set PLOUTOS_DATA_DIR"):
        load_panel(registry.data_source("csv"), DataRequest(tickers=("AAA",)))


def test_corrupt_csv_is_named(registry, tmp_path: Path) -> None:
    directory = tmp_path / "bad"
    directory.mkdir()
    (directory / "AAA.csv").write_bytes(b"\x00\xff\xfe garbage \x00")
    with pytest.raises(DataError, match="AAA"):
        load_csv(registry, directory, "AAA")


def test_data_dir_from_environment(registry, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PLOUTOS_DATA_DIR", str(write_dir(tmp_path, {"AAA": yahoo_csv("AAA")})))
    panel = load_panel(registry.data_source("csv"), DataRequest(tickers=("AAA",)))
    assert panel.n_days > 400


def test_too_little_history_for_the_features(registry, tmp_path: Path, tiny_stage) -> None:
    from ploutos_core import EnvRequest

    directory = write_dir(tmp_path, {t: yahoo_csv(t, "2012-10-01", "2013-12-31")
                                     for t in tiny_stage.tickers})
    panel = load_csv(registry, directory, *tiny_stage.tickers)
    with pytest.raises(DataError, match=r"train split of AAA,BBB .* leaves 0 trading days after "
                                        r"the features' warm-up"):
        registry.env_builder("portfolio").build(EnvRequest(panel=panel, stage=tiny_stage))


def test_empty_split_is_refused(registry) -> None:
    panel = load_panel(registry.data_source("synthetic"),
                       DataRequest(tickers=("AAA",), end=dt.date(2022, 12, 31)))
    with pytest.raises(DataError, match=r"the test split 2023-01-01… is empty: the data for AAA "
                                        r"cover 1990-01-01…2022-12-30"):
        panel.index_range(DateRange(dt.date(2023, 1, 1), None), label="test split")


def test_synthetic_is_deterministic_per_seed_and_ticker(registry) -> None:
    source = registry.data_source("synthetic")
    request = DataRequest(tickers=("AAA", "ZZ.TOP"), start=dt.date(2000, 1, 1),
                          end=dt.date(2001, 12, 31), seed=7)
    first = load_panel(source, request)
    again = load_panel(source, request)
    np.testing.assert_array_equal(first.close, again.close)
    alone = load_panel(source, DataRequest(tickers=("ZZ.TOP",), start=dt.date(2000, 1, 1),
                                           end=dt.date(2001, 12, 31), seed=7))
    np.testing.assert_array_equal(alone.close[:, 0], first.close[:, 1])
    other_seed = load_panel(source, DataRequest(tickers=("AAA",), start=dt.date(2000, 1, 1),
                                                end=dt.date(2001, 12, 31), seed=8))
    assert not np.allclose(other_seed.close[:, 0], first.close[:, 0])
    returns = np.diff(np.log(first.close), axis=0)
    assert np.corrcoef(returns.T)[0, 1] > 0.2  # assets share a market factor


def test_synthetic_has_volatility_regimes(registry) -> None:
    panel = load_panel(registry.data_source("synthetic"), DataRequest(tickers=("AAA",), seed=1))
    returns = pd.Series(np.diff(np.log(panel.close[:, 0])))
    rolling = returns.rolling(63).std().dropna()
    assert rolling.quantile(0.95) > 1.8 * rolling.quantile(0.05)


def recorded_download(name: str = "yfinance_SPY_2020-01.csv"):  # type: ignore[no-untyped-def]
    """A downloader replaying a frame recorded from yfinance.download (no network)."""
    calls = []

    def download(ticker, start, end, interval):  # type: ignore[no-untyped-def]
        calls.append((ticker, start, end, interval))
        frame = pd.read_csv(FIXTURES / name, header=[0, 1], index_col=0, parse_dates=True)
        return frame

    return download, calls


def test_yfinance_source_with_recorded_frame_and_cache(tmp_path: Path) -> None:
    download, calls = recorded_download()
    source = YFinanceSource(downloader=download, sleep=lambda s: None)
    request = DataRequest(tickers=("SPY",), start=dt.date(2020, 1, 1), end=dt.date(2020, 1, 31),
                          cache_dir=tmp_path / "cache")
    panel = load_panel(source, request)
    assert panel.n_days == 21 and panel.tickers == ("SPY",)
    assert panel.date(0) == dt.date(2020, 1, 2)
    assert len(calls) == 1
    cached = ParquetCache(tmp_path / "cache").entries()
    assert [(e.ticker, e.interval, e.start, e.end) for e in cached] == \
        [("SPY", "1d", "2020-01-01", "2020-01-31")]
    again = load_panel(source, request)
    assert len(calls) == 1  # served from the cache
    np.testing.assert_array_equal(again.close, panel.close)
    load_panel(source, DataRequest(tickers=("SPY",), start=dt.date(2020, 1, 1),
                                   end=dt.date(2020, 1, 31), cache_dir=tmp_path / "cache",
                                   refresh=True))
    assert len(calls) == 2



def test_yfinance_asks_yahoo_for_share_classes_with_a_dash(tmp_path: Path) -> None:
    """``BRK_B`` (the CSV files' and stage files' name) is ``BRK-B`` at Yahoo; the panel
    and the cache keep the project's name."""
    replay, calls = recorded_download()

    def download(ticker, start, end, interval):  # type: ignore[no-untyped-def]
        frame = replay(ticker, start, end, interval)
        return frame.rename(columns={"SPY": ticker}, level=1)

    source = YFinanceSource(downloader=download, sleep=lambda s: None)
    panel = load_panel(source, DataRequest(tickers=("BRK_B",), cache_dir=tmp_path))
    assert [call[0] for call in calls] == ["BRK-B"]
    assert panel.tickers == ("BRK_B",) and panel.n_days == 21
    assert [e.ticker for e in ParquetCache(tmp_path).entries()] == ["BRK_B"]

def test_yfinance_empty_frame_is_an_error_with_hint(tmp_path: Path) -> None:
    calls = []
    sleeps: list[float] = []

    def empty(ticker, start, end, interval):  # type: ignore[no-untyped-def]
        calls.append(ticker)
        return pd.DataFrame()

    source = YFinanceSource(downloader=empty, sleep=sleeps.append, attempts=3, backoff=1.0)
    with pytest.raises(DataError) as caught:
        load_panel(source, DataRequest(tickers=("SPY",), cache_dir=tmp_path))
    message = str(caught.value)
    assert "yfinance download of 'SPY' failed after 3 attempt(s)" in message
    assert "no rows" in message
    assert "--source csv --data-dir DIR" in message and "--source synthetic" in message
    assert calls == ["SPY"] * 3 and sleeps == [1.0, 2.0]  # retried with backoff
    assert not list(tmp_path.glob("*.parquet"))  # nothing bad cached


def test_yfinance_network_error_then_success(tmp_path: Path) -> None:
    download, _ = recorded_download()
    attempts = []

    def flaky(*args):  # type: ignore[no-untyped-def]
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("rate limited")
        return download(*args)

    source = YFinanceSource(downloader=flaky, sleep=lambda s: None)
    panel = load_panel(source, DataRequest(tickers=("SPY",), cache_dir=tmp_path))
    assert panel.n_days == 21 and len(attempts) == 2


def test_corrupt_cache_file_is_named(tmp_path: Path) -> None:
    download, _ = recorded_download()
    source = YFinanceSource(downloader=download, sleep=lambda s: None)
    request = DataRequest(tickers=("SPY",), cache_dir=tmp_path)
    load_panel(source, request)
    (cached,) = tmp_path.glob("*.parquet")
    cached.write_bytes(b"not parquet")
    with pytest.raises(DataError, match=r"cached file .* is corrupt .*'ploutos data clear'"):
        load_panel(source, request)


def test_align_clips_to_requested_dates() -> None:
    frame = synthetic_frame("AAA", 0).loc["2010-01-01":"2010-12-31"]
    panel = align({"AAA": frame}, ("AAA",),
                  date_range=DateRange(dt.date(2010, 3, 1), dt.date(2010, 3, 31)))
    assert panel.date(0) == dt.date(2010, 3, 1) and panel.date(panel.n_days - 1) == \
        dt.date(2010, 3, 31)


def test_data_commands(run_cli, in_tmp: Path, tmp_path: Path) -> None:
    fetched = run_cli("data", "fetch", "--source", "synthetic", "--tickers", "AAA,BBB",
                      "--start", "2010-01-01", "--end", "2010-12-31")
    assert fetched.code == 0, fetched
    assert "AAA,BBB: 261 aligned days 2010-01-01…2010-12-31 from synthetic" in fetched.out
    verified = run_cli("data", "verify", "--source", "synthetic", "--stage", "stage1")
    assert verified.code == 0, verified
    assert "train: 3651 days 2005-01-03…2018-12-31" in verified.out
    assert verified.out.strip().endswith("ok")
    assert "empty" in run_cli("data", "list").out
    cache = ParquetCache(in_tmp / "data_cache")
    cache.store(cache.path_for("SPY", "1d", None, None), synthetic_frame("SPY", 0).iloc[:50])
    assert "SPY" in run_cli("data", "list").out
    assert "ok  SPY__1d__min__max.parquet: 50 rows" in run_cli("data", "verify").out
    cleared = run_cli("data", "clear", "--yes")
    assert "deleted 1 file(s)" in cleared.out and not cache.entries()
    sources = run_cli("data", "sources").out
    assert {"csv", "synthetic", "yfinance"} <= {line.split()[0] for line in sources.splitlines()}


def test_data_fetch_bad_input_is_one_line(run_cli, in_tmp: Path) -> None:
    missing = run_cli("data", "fetch", "--source", "synthetic")
    assert missing.code == 1 and "--tickers SPY,QQQ or --stage stage1" in missing.err
    unknown = run_cli("data", "fetch", "--source", "nope", "--tickers", "SPY")
    assert unknown.code == 1
    assert "unknown data source 'nope'; available: csv, synthetic, yfinance" in unknown.err
