import pytest

from tests.training.tables import synthetic_table


@pytest.fixture(scope="session")
def table_and_meta(tmp_path_factory):
    table, metadata, root = synthetic_table(tmp_path_factory.getbasetemp() / "tables")
    return table, metadata, root


@pytest.fixture
def table(table_and_meta):
    return table_and_meta[0].copy()
