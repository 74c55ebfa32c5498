"""Kedro project settings."""

from pathlib import Path

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # `${cwd:}`: the absolute working directory (kedro runs from the project root). MLflow caches
    # its stores by URI string, so a relative `sqlite:///mlflow.db` would keep pointing at the
    # first project's database in a process that opens several projects.
    "custom_resolvers": {"cwd": lambda: Path.cwd().as_posix()},
    "config_patterns": {
        "parameters": ["parameters*", "parameters*/**", "**/parameters*"],
        "mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"],
    },
}
