"""Shared fixtures: real services (tests/fixtures/services.py) and sample media."""

import os

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

pytest_plugins = ["tests.fixtures.services", "tests.fixtures.media", "tests.fixtures.hung"]
