"""Declared component outputs: the valid-empty form, the check, and what derives from them."""

from __future__ import annotations

import numpy as np
import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.npz_meta import MASK_SUFFIX
from trendflow.dataprocessor.component import registered_components
from trendflow.dataprocessor.outputs import TIMESTAMPS, check_arrays, scalar, series, vector
from trendflow.dataset.components import profile_components, tier0_components
from trendflow.dataset.synthetic import SyntheticConfig, make_snapshots, make_videos
from trendflow.dataset.synthetic_runs import _component_arrays

PRODUCT = {n: c for n, c in registered_components().items() if not n.startswith("test_")}


@pytest.mark.parametrize("name", sorted(PRODUCT))
def test_every_component_declares_outputs_and_its_empty_form_matches_them(name: str) -> None:
    component = PRODUCT[name]
    assert component.outputs, f"{name} declares no outputs"
    empty = component.empty_output("no_frames")
    component.check_output(empty.arrays)
    assert empty.empty_reason == "no_frames"
    assert not any(v.any() for k, v in empty.arrays.items() if k.endswith(MASK_SUFFIX))


def test_the_check_names_what_does_not_match() -> None:
    outputs = (TIMESTAMPS, *series("x"), vector("v", 3), scalar("s"))
    good = {
        "timestamps_sec": np.zeros(2),
        "timestamps_sec__mask": np.ones(2, bool),
        "x": np.zeros(2, np.float32),
        "x__mask": np.ones(2, bool),
        "v": np.zeros((2, 3), np.float32),
        "v__mask": np.ones(2, bool),
        "s": np.float32(1.0),
        "s__mask": np.bool_(True),
    }
    check_arrays("c", outputs, {k: np.asarray(v) for k, v in good.items()})
    bad = {**good, "extra": np.zeros(1), "v": np.zeros((2, 4), np.float32)}
    del bad["x__mask"]
    with pytest.raises(TrendFlowError) as err:
        check_arrays("c", outputs, {k: np.asarray(v) for k, v in bad.items()})
    assert err.value.code is ErrorCode.INTERNAL
    for part in ("undeclared array extra", "v: 4 columns", "x__mask"):
        assert part in err.value.message


def test_tier0_set_is_the_signals_profile() -> None:
    names = [c.name for c in tier0_components()]
    assert names == [
        "frame_stats",
        "shot_cuts",
        "motion",
        "loudness",
        "spectral",
        "tempo",
        "text_stats",
        "temporal",
    ]


@pytest.mark.parametrize("profile", ["signals", "baseline"])
def test_the_synthetic_corpus_matches_the_declarations(profile: str) -> None:
    cfg = SyntheticConfig(n_videos=30, n_channels=4, seed=5, profile=profile)
    videos = make_videos(cfg)
    text = make_snapshots(cfg, videos).drop_duplicates("video_id").set_index("video_id")
    assert not videos["has_audio"].all() and videos["has_audio"].any()
    components = profile_components(profile)
    for row in videos.to_dict("records"):
        row.update(title=text.at[row["video_id"], "title"], tags=text.at[row["video_id"], "tags"])
        arrays = _component_arrays(row, 0.0, components)
        assert set(arrays) == {c.name for c in components}
        for c in components:
            c.component.check_output(arrays[c.name][0])


def test_the_graphs_params_parse_into_each_components_typed_params() -> None:
    from trendflow.dataprocessor.graph import ComponentGraph

    profile = ComponentGraph.load().profile("baseline")
    for name, spec in profile.components.items():
        if name != "segmenter":
            PRODUCT[name].parse_params(spec.params)
    assert PRODUCT["shot_cuts"].parse_params({}).threshold == 27.0


def test_a_bad_param_is_a_config_error_before_any_decoding(tmp_path, sample_video) -> None:
    import yaml

    from trendflow.dataprocessor.graph import DEFAULT_GRAPH
    from trendflow.dataprocessor.run import ProcessRequest, process_video
    from trendflow.dataprocessor.segmenter import decode_passes_started
    from trendflow.storage.store import ResultStore

    with pytest.raises(TrendFlowError) as err:
        PRODUCT["motion"].parse_params({"short_side": "wide", "colour": 1})
    assert err.value.code is ErrorCode.CONFIG_ERROR and "short_side" in err.value.message
    assert "colour" in err.value.message

    raw = yaml.safe_load(DEFAULT_GRAPH.read_text())
    raw["components"]["frame_stats"]["params"] = {"short_sid": 240}
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump(raw))
    before = decode_passes_started()
    outcome = process_video(
        ProcessRequest(
            source=str(sample_video("bikes.mp4")),
            store=ResultStore(str(tmp_path / "store")),
            profile="signals",
            graph_path=graph,
        )
    )
    assert outcome.status == "error" and outcome.error_code is ErrorCode.CONFIG_ERROR
    assert "frame_stats" in (outcome.error or "") and decode_passes_started() == before
