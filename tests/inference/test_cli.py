"""`trendflow predict RUN_DIR|SOURCE` in a copy of the project."""

import json
import shutil
from datetime import datetime, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.training.tables import ROOT, make_project
from trendflow.cli import app
from trendflow.inference.service import facts_from_sidecar

SAMPLES = ROOT / "data" / "01_raw" / "samples"


@pytest.fixture
def project(tmp_path, monkeypatch, inference_setup):
    table, root, bundle_path, bundle = inference_setup
    project = make_project(tmp_path / "project")
    monkeypatch.chdir(project)
    # the registry lookup sets mlflow's global tracking URI (and its env mirror): restore both
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr("mlflow.tracking._tracking_service.utils._tracking_uri", None)
    video = table[table["run__present"]].iloc[0]
    snap = pd.read_parquet(root / "snapshots.parquet")
    first = snap[snap["video_id"] == video["video_id"]].sort_values("snapshot_at").iloc[0]
    args = [
        "--store",
        str(root / "store"),
        "--bundle",
        str(bundle_path),
        "--views",
        str(first["views"]),
        "--likes",
        str(first["likes"]),
        "--published-at",
        first["published_at"].isoformat(),
        "--snapshot-at",
        first["snapshot_at"].isoformat(),
    ]
    run_dir = f"synthetic/{video['video_id']}/{video['run_id']}"
    return project, run_dir, args, bundle


def _invoke(args):
    result = CliRunner().invoke(app, ["predict", *args])
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "{}"
    return result, json.loads(last)


def test_predict_run_dir_writes_predictions_json(project):
    project_dir, run_dir, args, bundle = project
    out = project_dir / "out" / "predictions.json"
    result, doc = _invoke([run_dir, *args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == doc
    assert doc["video"]["run_dir"] == run_dir
    assert {(p["target"], p["horizon"]) for p in doc["predictions"]} == {("views", "7d"), ("likes", "7d")}
    assert all(p["model"]["version"] == bundle.info.bundle_id for p in doc["predictions"])
    # default location: data/07_model_output/predictions/<platform>/<video>/predictions.json
    result, _ = _invoke([run_dir, *args])
    assert result.exit_code == 0
    platform, video, _ = run_dir.split("/")
    assert (
        project_dir / "data/07_model_output/predictions" / platform / video / "predictions.json"
    ).is_file()


def test_missing_counter_names_the_option(project):
    _, run_dir, args, _ = project
    i = args.index("--likes")
    result, doc = _invoke([run_dir, *args[:i], *args[i + 2 :]])
    assert result.exit_code == 1
    assert doc["error_code"] == "invalid_request" and "--likes" in doc["error"]


def test_unknown_target_and_missing_models_fail_clearly(project):
    _, run_dir, args, _ = project
    result, doc = _invoke(["no/such/run", *args])
    assert result.exit_code == 1 and doc["error_code"] == "source_not_found"
    i = args.index("--bundle")
    result, doc = _invoke([run_dir, *args[:i], *args[i + 2 :]])  # default: the registry, empty here
    assert result.exit_code == 1 and doc["error_code"] == "model_not_found"
    assert "kedro run --pipelines=training" in doc["error"]


def test_predict_source_processes_the_video_first(project):
    project_dir, _, args, _ = project
    shutil.copy(SAMPLES / "trailer_bbb.mp4", project_dir / "trailer.mp4")
    result, doc = _invoke(
        [
            str(project_dir / "trailer.mp4"),
            *args,
            "--metadata",
            str(SAMPLES / "trailer_bbb.metadata.json"),
            "--platform-id",
            "local",
            "--video-id",
            "bbb_trailer",
        ]
    )
    assert result.exit_code == 0, result.output
    assert doc["video"]["platform_id"] == "local" and doc["video"]["video_id"] == "bbb_trailer"
    assert doc["video"]["run_dir"].startswith("local/bbb_trailer/")
    assert doc["snapshot1"]["category"] == "Film & Animation"  # from the sidecar
    assert len(doc["predictions"]) == 2


def test_ytdlp_sidecar_carries_counts(tmp_path):
    info = {
        "id": "dQw4w9WgXcQ",
        "extractor_key": "Youtube",
        "extractor": "youtube",
        "title": "t",
        "timestamp": 1700000000,
        "view_count": 1234,
        "like_count": 56,
        "comment_count": 7,
        "epoch": 1700086400,
        "channel_id": "UCabc",
        "tags": ["a"],
        "categories": ["Music"],
        "duration": 200,
    }
    path = tmp_path / "info.json"
    path.write_text(json.dumps(info))
    facts, platform, video = facts_from_sidecar(path)
    assert (platform, video) == ("youtube", "dQw4w9WgXcQ")
    assert facts["views"] == 1234 and facts["likes"] == 56 and facts["comments"] == 7
    assert facts["snapshot_at"].timestamp() == 1700086400 and facts["channel_id"] == "UCabc"


@pytest.mark.parametrize(
    ("option", "value"),
    [("--views", "inf"), ("--views", "nan"), ("--likes", "-5"), ("--comments", "-inf"), ("--views", "1e999")],
)
def test_impossible_counts_are_invalid_before_any_model(project, tmp_path, option, value):
    """Checked before the models are resolved: a missing bundle must not be the error reported."""
    _, run_dir, args, _ = project
    args = list(args)
    args[args.index("--bundle") + 1] = str(tmp_path / "no-such-bundle")
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result, doc = _invoke([run_dir, *args])
    assert result.exit_code == 1
    assert doc["error_code"] == "invalid_request", doc
    assert option.lstrip("-") in doc["error"]


def test_published_after_snapshot_is_invalid(project):
    _, run_dir, args, _ = project
    args = list(args)
    args[args.index("--published-at") + 1] = "2100-01-01T00:00:00"
    result, doc = _invoke([run_dir, *args])
    assert result.exit_code == 1 and doc["error_code"] == "invalid_request"


def _strict(text):
    def reject(constant):
        raise AssertionError(f"non-strict JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_predictions_are_strict_rounded_json_with_target_dates(project):
    project_dir, run_dir, args, _ = project
    out = project_dir / "out" / "strict.json"
    args = list(args)
    args[args.index("--views") + 1] = "1e15"  # a huge count stays finite and whole
    result, doc = _invoke([run_dir, *args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    written = _strict(out.read_text())
    assert written == doc
    snapshot_at = datetime.fromisoformat(doc["snapshot1"]["snapshot_at"])
    for pred in doc["predictions"]:
        expected = snapshot_at + timedelta(hours=pred["horizon_hours"])
        assert datetime.fromisoformat(pred["target_date"]) == expected
        assert pred["predicted_log1p_delta"] == round(pred["predicted_log1p_delta"], 4)
        for key in ("predicted_delta", "predicted_count"):
            assert float(pred[key]).is_integer(), (key, pred[key])
        for key in ("delta_low", "delta_high", "count_low", "count_high"):
            assert float(pred["interval"][key]).is_integer()
        assert all(c["contribution"] == round(c["contribution"], 4) for c in pred["contributions"]["top"])
