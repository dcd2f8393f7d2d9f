"""The csv source on the real daily prices of ../shared/market-data/daily (read, never copied)."""

from __future__ import annotations

import datetime as dt

import pytest

from ploutos_core import DataError, DataRequest, EnvRequest
from ploutos_core.data.loading import load_panel
from ploutos_core.data.stage_data import DataOptions, load_stage_panel
from tests.conftest import MARKET_DATA, needs_market_data

pytestmark = needs_market_data

CURRICULUM_TICKERS = ("SPY", "QQQ", "IWM", "NVDA", "MSFT", "AAPL", "GOOGL", "AMZN")


def test_all_curriculum_tickers_load_align_and_split(registry) -> None:
    panel = load_panel(registry.data_source("csv"),
                       DataRequest(tickers=CURRICULUM_TICKERS, data_dir=MARKET_DATA))
    assert panel.tickers == CURRICULUM_TICKERS
    assert panel.date(0) == dt.date(2004, 8, 19)  # GOOGL's first day bounds the common range
    assert panel.date(panel.n_days - 1) == dt.date(2022, 12, 30)
    stage = registry.stage("stage3")
    train = panel.index_range(stage.splits.train, label="train split")
    validation = panel.index_range(stage.splits.validation, label="validation split")
    assert panel.date(train[1]) < panel.date(validation[0])
    assert validation[1] - validation[0] + 1 == 1008  # trading days 2019-2022
    with pytest.raises(DataError, match=r"the test split 2023-01-01… is empty"):
        panel.index_range(stage.splits.test, label="test split")


@pytest.mark.parametrize("name", ["stage1", "stage2", "stage3"])
def test_builtin_stages_build_on_real_data(registry, name: str) -> None:
    stage = registry.stage(name)
    options = DataOptions(source="csv", data_dir=MARKET_DATA)
    panel = load_stage_panel(registry.data_source("csv"), stage, options)
    assert panel.date(panel.n_days - 1) <= stage.splits.validation.end
    builder = registry.env_builder("portfolio")
    train = builder.build(EnvRequest(panel=panel, stage=stage, n_envs=2))
    assert train.observation_space.shape[0] == len(stage.tickers)
    backtest = builder.build(EnvRequest(panel=panel, stage=stage, split="validation",
                                        mode="backtest"))
    assert backtest.episode_length == 1007  # one decision per validation day but the last
