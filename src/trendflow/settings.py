"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from trendflow.hooks import ParameterValidationHook

HOOKS = (ParameterValidationHook(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
    },
    # An environment folder (conf/minio, conf/trending, conf/local) holds only what differs from
    # conf/base: its keys are merged into the base ones instead of replacing whole top-level keys.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
}
