import json
import subprocess

import pytest

from tests.training.tables import training_params
from trendflow.pipelines.training import nodes
from trendflow.training import report
from trendflow.training.config import TrainingParams
from trendflow.training.manifest import build_manifest, git_state


@pytest.fixture(scope="module")
def run(table_and_meta):
    table, metadata, _ = table_and_meta
    params = training_params(targets=["views"], horizons=["7d"])
    spec = nodes.select_features(table, params)
    result = nodes.fit_models(table, spec, params)
    metrics, predictions, flat = nodes.evaluate_models(result, table, params)
    manifest = nodes.make_manifest(table, metadata, params)
    return table, params, result, metrics, predictions, flat, manifest


def test_comparison_table_markdown_and_json(run):
    _, _, result, metrics, _, _, manifest = run
    md, js = nodes.build_comparison(metrics, manifest, result)
    table = report.comparison_table(metrics, result.champions())
    assert set(table["model"]) == {
        "catboost",
        "lightgbm",
        "szabo_huberman",
        "early_popularity",
        "global_median",
    }
    assert table.groupby(["target", "horizon", "split"])["champion"].sum().eq(1).all()
    assert all(isinstance(r["champion"], bool) for r in js["rows"])
    assert all("spearman_low" in r and "mae_high" in r for r in js["rows"])
    assert {v["champion"] for v in js["verdicts"]} <= {"catboost", "lightgbm"}
    sh = table[table["model"] == "szabo_huberman"]
    assert (sh["spearman_gain_vs_sh"] == 0).all()
    assert md.startswith("# Training run") and "| views | 7d | time | catboost |" in md
    assert "mae_gain_vs_sh" in md and "chosen on the VALIDATION rows" in md
    assert manifest["dataset_fingerprint"] in md
    json.dumps(js)  # strictly JSON-able (NaN -> null)
    assert {v["split"] for v in js["verdicts"]} == {"time", "channel"}
    assert all(isinstance(v["beats_szabo_huberman"], bool) for v in js["verdicts"])


def test_parent_run_metrics_are_few_and_child_runs_hold_each_models_own(run):
    _, _, result, metrics, _, flat, manifest = run
    # parent: champion and baselines only, bucket all
    assert "views/7d/channel/champion/test/spearman" in flat
    assert "views/7d/time/szabo_huberman/valid/rmse" in flat
    assert not any("/catboost/" in k or "age_" in k for k in flat)
    assert all(isinstance(v, float) and v == v for v in flat.values())
    children = nodes.build_child_runs(metrics, result, manifest)
    prefix = manifest["dataset_fingerprint"][:8]
    assert {c["name"] for c in children} == {f"{prefix}-views-7d-{a}" for a in ("catboost", "lightgbm")}
    for child in children:
        algorithm = child["tags"]["trendflow.algorithm"]
        assert (
            "channel/test/all/spearman" in child["metrics"] and "time/valid/age_0-6h/rmse" in child["metrics"]
        )
        own = metrics[(metrics["model"] == algorithm) & (metrics["bucket"] == "all")]
        assert (
            child["metrics"]["channel/test/all/mae"]
            == own[(own["split"] == "channel") & (own["eval_split"] == "test")]["mae"].item()
        )
        champion_of = set(filter(None, child["tags"]["trendflow.champion_of_splits"].split(",")))
        assert champion_of == {t.split for t in result.tasks if t.champion == algorithm}


def test_html_report_is_self_contained(run):
    _, params, result, metrics, predictions, _, manifest = run
    html = nodes.build_report(metrics, predictions, result, manifest, params)
    assert html.count("data:image/png;base64,") >= 3  # scatter, buckets, importance
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "Feature importance" in html and manifest["dataset_fingerprint"] in html


def test_manifest_records_versions_and_verifies_the_fingerprint(run, table_and_meta):
    table, _, _, _, _, _, manifest = run
    metadata = table_and_meta[1]
    assert manifest["dataset_fingerprint"] == metadata["dataset_fingerprint"]
    assert manifest["dataset_fingerprint_verified"] is True
    assert manifest["versions"]["table_schema"] == metadata["table_schema_version"]
    assert manifest["versions"]["run_config_hash"] == metadata["runs"]["config_hash"]
    assert {"catboost", "lightgbm", "mlflow", "numpy"} <= set(manifest["packages"])
    assert manifest["seed"] == 42 and manifest["threads"] == 1
    other = build_manifest(table.head(50), metadata, TrainingParams.parse(training_params()))
    assert (
        other.dataset_fingerprint_verified is False
        and other.dataset_fingerprint != metadata["dataset_fingerprint"]
    )


def test_git_state(tmp_path):
    assert git_state(tmp_path).commit == "unknown"
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True, timeout=30)  # noqa: E731
    run("init", "-q")
    (tmp_path / "f.txt").write_text("a")
    run("add", "f.txt")
    run("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "-m", "x")
    state = git_state(tmp_path)
    assert len(state.commit) == 40 and state.dirty is False
    (tmp_path / "f.txt").write_text("b")
    assert git_state(tmp_path).dirty is True
