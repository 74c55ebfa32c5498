import pytest

from tests.training.tables import synthetic_table, training_params
from trendflow.pipelines.training import nodes
from trendflow.training.bundle import save_bundle


@pytest.fixture(scope="session")
def inference_setup(tmp_path_factory):
    """(table, snapshots folder, bundle path, bundle) from one fast training on a SYNTHETIC table."""
    base = tmp_path_factory.getbasetemp()
    table, metadata, root = synthetic_table(base / "tables")
    params = training_params(targets=["views", "likes"], horizons=["7d"])
    spec = nodes.select_features(table, params)
    result = nodes.fit_models(table, spec, params)
    metrics, _, _ = nodes.evaluate_models(result, table, params)
    manifest = nodes.make_manifest(table, metadata, params)
    bundle, _, _ = nodes.build_bundle(result, metrics, manifest, params)
    path = base / "inference-bundle"
    save_bundle(bundle, path)
    return table, root, path, bundle
