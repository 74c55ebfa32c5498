"""Fixtures of the state tests."""

from __future__ import annotations

import pytest

from tests.dataprocessor.state.builders import make_identity
from trendflow.contracts.identity import RunIdentity


@pytest.fixture
def identity() -> RunIdentity:
    return make_identity()
