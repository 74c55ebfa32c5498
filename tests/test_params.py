"""Typed parameters: every environment's parameters validate; a typo fails the session, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.params import DatasetParams, ProcessingParams, validate_parameters

ROOT = Path(__file__).resolve().parents[1]


def session_params(env: str, runtime: dict | None = None) -> dict:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    with KedroSession.create(project_path=ROOT, env=env, runtime_params=runtime) as session:
        return session.load_context().params


@pytest.mark.parametrize("env", ["local", "minio", "trending"])
def test_every_environment_validates(env) -> None:
    params = session_params(env)
    validated = validate_parameters(params)
    assert set(validated) == {"processing", "dataset", "inference"}
    if env == "trending":  # soft merge: the env's differences on top of conf/base
        assert params["dataset"]["snapshot_source"] == "trending"
        assert params["dataset"]["splits"]["time"]["train_fraction"] == 0.7  # from conf/base
    if env == "minio":
        assert params["processing"]["profile"] == "baseline" and params["processing"]["video_list"] == "file"


def test_a_typo_fails_the_session_before_any_node() -> None:
    runtime = {"dataset": {"snapshot_sorce": "huggingface"}, "processing": {"max_videos": 0}}
    with pytest.raises(TrendFlowError) as err:
        session_params("local", runtime)
    assert err.value.code is ErrorCode.CONFIG_ERROR
    assert "dataset.snapshot_sorce: Extra inputs are not permitted" in err.value.message
    assert "processing.max_videos" in err.value.message


def test_models_forbid_unknown_keys() -> None:
    with pytest.raises(TrendFlowError, match=r"dataset\.synthetic\.n_video"):
        validate_parameters({"dataset": {"horizons": ["14d"], "synthetic": {"n_video": 3}}})
    assert (
        DatasetParams.model_validate({"horizons": {"14d": {"required": True}}}).snapshot_source == "synthetic"
    )
    assert ProcessingParams.model_validate({"profile": "signals"}).video_list == "file"
