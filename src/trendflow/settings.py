"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from trendflow.hooks import ParameterValidationHook
from trendflow.warnings_routing import route_third_party_warnings

# Third-party deprecation warnings go to the debug log, not the console (conf/logging.yml).
route_third_party_warnings()

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
