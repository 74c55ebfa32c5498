"""Worker settings: environment parsing, the visibility-timeout rule, secrets kept out of output."""

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.worker.celery_app import celery_config, make_celery
from trendflow.worker.config import WorkerSettings


def test_settings_from_env_and_back() -> None:
    env = {
        "TRENDFLOW_REDIS_URL": "redis://10.0.0.5:6380/2",
        "TRENDFLOW_STORE": "s3://bucket/results",
        "TRENDFLOW_QUEUE": "videos",
        "TRENDFLOW_JOB_TIME_LIMIT_S": "600",
        "TRENDFLOW_WORKER_PROFILES": "signals, baseline",
        "TRENDFLOW_HEALTH_PORT": "9000",
    }
    settings = WorkerSettings.from_env(env)
    assert settings.redis_url == "redis://10.0.0.5:6380/2"
    assert settings.profiles == ("signals", "baseline")
    assert settings.job_time_limit_s == 600
    assert settings.visibility_timeout_s > settings.job_time_limit_s
    assert settings.soft_time_limit_s < settings.job_time_limit_s
    assert WorkerSettings.from_env(settings.to_env()) == settings


def test_overrides_win_over_env_and_none_is_ignored() -> None:
    settings = WorkerSettings.from_env({"TRENDFLOW_QUEUE": "a"}, queue="b", store_root=None)
    assert settings.queue == "b"
    assert settings.store_root == WorkerSettings().store_root


def test_visibility_timeout_must_exceed_the_job_time_limit() -> None:
    with pytest.raises(TrendFlowError) as info:
        WorkerSettings.from_env(
            {"TRENDFLOW_JOB_TIME_LIMIT_S": "600", "TRENDFLOW_VISIBILITY_TIMEOUT_S": "600"}
        )
    assert info.value.code is ErrorCode.CONFIG_ERROR
    assert "visibility_timeout_s" in info.value.message


def test_bad_queue_name_is_a_config_error() -> None:
    with pytest.raises(TrendFlowError):
        WorkerSettings.from_env({"TRENDFLOW_QUEUE": "no spaces allowed"})


def test_redis_password_is_redacted() -> None:
    settings = WorkerSettings(redis_url="redis://user:s3cret@redis.internal:6379/0")
    assert "s3cret" not in settings.redacted_redis_url()
    assert settings.redacted_redis_url() == "redis://user:***@redis.internal:6379/0"


def test_celery_config_carries_the_delivery_guarantees() -> None:
    settings = WorkerSettings(job_time_limit_s=100, visibility_timeout_s=130, queue="q1")
    config = celery_config(settings)
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] == 130
    assert config["task_time_limit"] == 100
    assert config["task_soft_time_limit"] < 100
    assert config["task_default_queue"] == "q1"
    app = make_celery(settings)
    assert app.conf.task_acks_late is True
    assert "trendflow.process_video" in app.tasks
