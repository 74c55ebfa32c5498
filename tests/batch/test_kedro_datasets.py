"""The result store as a catalog dataset: credentials from the catalog reach S3 (a moto server
over HTTP), never its description; the handle is read-only for Kedro."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, DatasetError

from trendflow.batch.kedro_datasets import ResultStoreDataset
from trendflow.storage.store import ResultStore


def test_catalog_credentials_reach_s3_and_stay_secret(s3_options, s3_bucket, monkeypatch) -> None:
    for name in ("TRENDFLOW_S3_KEY", "TRENDFLOW_S3_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)  # only the catalog's credentials can work
    catalog = DataCatalog.from_config(
        {
            "result_store": {
                "type": "trendflow.batch.kedro_datasets.ResultStoreDataset",
                "root": f"s3://{s3_bucket}/result_store",
                "credentials": "s3",
            }
        },
        credentials={"s3": {**s3_options, "unused": None}},
    )
    store = catalog.load("result_store")
    assert isinstance(store, ResultStore) and store.root_uri == f"s3://{s3_bucket}/result_store"
    store.write_json("probe.json", {"ok": True})
    assert ResultStore(store.root_uri, dict(s3_options)).read_json("probe.json") == {"ok": True}
    described = repr(catalog) + str(catalog.get("result_store")) + repr(store)
    assert s3_options["secret"] not in described and s3_options["key"] not in described
    with pytest.raises(DatasetError, match="read-only"):
        catalog.save("result_store", store)


def test_a_local_store_needs_no_credentials(tmp_path) -> None:
    store = ResultStoreDataset(root=str(tmp_path / "store")).load()
    assert store.is_local and (tmp_path / "store").is_dir()
    with pytest.raises(DatasetError, match="needs `root`"):
        ResultStoreDataset(root="")
