"""The tags a run's policy gets at registration (``experiment.tracking.registration_tags``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from tradeforge.experiment.config import ExperimentConfig
from tradeforge.experiment.tracking import registration_tags


def _config(**data: object) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": "x",
            "data": {"source": "bundled", "symbols": ["SP500"], **data},
            "walkforward": {"unit": "bars", "train": 300, "val": 60, "test": 60, "n_folds": 1},
        }
    )


def test_registration_tags_count_trials_and_digest_the_data_request(tmp_path: Path):
    index = pd.bdate_range("2019-01-02", periods=30)
    checked = SimpleNamespace(
        metrics={"sharpe": 1.2, "total_return": 0.1, "deflated_sharpe": 0.97},
        n_trials=36, trial_sharpes=[0.5, 0.7, 1.1], periods_per_year=252,
        returns=pd.Series(0.001, index=index),
    )  # fmt: skip
    config = _config(start="2010-01-01")
    tags = registration_tags(config, checked, tmp_path)  # type: ignore[arg-type]
    assert tags["configurations_tried"] == "36"
    assert tags["trial_sharpes_known"] == "3"
    assert tags["periods_per_year"] == "252"
    assert (tags["oos_start"], tags["oos_end"]) == (index[0].isoformat(), index[-1].isoformat())
    data = json.dumps(config.data.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    assert tags["data_config_checksum"] == hashlib.sha256(data.encode()).hexdigest()
    other = registration_tags(_config(start="2011-01-01"), checked, tmp_path)  # type: ignore[arg-type]
    assert other["data_config_checksum"] != tags["data_config_checksum"]
    assert all(isinstance(v, str) for v in tags.values())
