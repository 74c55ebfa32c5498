"""The neural Tier-0 components against the real Triton server (one per test session).

Each component runs in a real RunContext (synthetic metadata + real FrameStore, as in the signal
component tests) with the sample frames and the speech sample of serving/samples; the same
components with an unreachable server fail with `triton_unavailable`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from tests.dataprocessor.processors.conftest import assert_valid_output, build_ctx, identity
from tests.fixtures import triton as triton_fixtures
from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.contracts.npz_meta import NpzMeta, Producer, model_signature
from trendflow.dataprocessor.component import ComponentOutput, PrivacyPolicy, RunContext, component_class
from trendflow.dataprocessor.graph import ComponentGraph
from trendflow.dataprocessor.processors.audio.speech_activity import speech_segments, window_means
from trendflow.dataprocessor.processors.audio.transcript import merge_segments
from trendflow.dataprocessor.sources import SourceInfo
from trendflow.serving import DEFAULT_REPOSITORY
from trendflow.serving.client import TritonClient
from trendflow.serving.model_build import SAMPLES_DIR, read_build_manifest
from trendflow.serving.preprocess import load_rgb_images
from trendflow.serving.recipes.common import sample_speech
from trendflow.serving.triton_server import free_port

# The session's Triton server (tests/fixtures/triton.py; one server even when several modules use it).
built_repository = triton_fixtures.built_repository
triton_server = triton_fixtures.triton_server
triton_client = triton_fixtures.triton_client

NEURAL = ("image_embedding", "faces", "nsfw", "ocr", "speech_activity", "transcript", "text_embedding")
FRAME_NAMES = sorted(p.stem for p in (SAMPLES_DIR / "frames").glob("*.jpg"))


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """The 384x216 trailer frames (the astronaut portrait has another size and is left out)."""
    return np.stack([f for f in load_rgb_images(SAMPLES_DIR / "frames") if f.shape == (216, 384, 3)])


def speech_audio_22k() -> np.ndarray:
    return resample_poly(sample_speech(), 441, 320).astype(np.float32)


def run_neural(name: str, ctx: RunContext, client: TritonClient) -> ComponentOutput:
    spec = ComponentGraph.load().profile("baseline").components[name]
    ctx.services.triton = client
    output = component_class(name)(spec).run(ctx)
    assert_valid_output(output)
    return output


def assert_model_recorded(output: ComponentOutput, model_name: str) -> None:
    (used,) = output.models_used
    built = read_build_manifest(DEFAULT_REPOSITORY / used.model_name, used.model_version)
    assert built is not None
    assert used.model_name == model_name and used.weights_digest == built.weights_digest
    assert (used.engine, used.precision, used.device) == (built.engine, built.precision, "cpu")
    assert output.device_used == "cpu"


def frame_ctx(tmp_path: Path, frames: np.ndarray, component: str, **kwargs) -> RunContext:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return build_ctx(tmp_path, frames=frames, indices={component: list(range(len(frames)))}, **kwargs)


def test_image_embedding_per_frame(tmp_path: Path, frames: np.ndarray, triton_client: TritonClient) -> None:
    out = run_neural("image_embedding", frame_ctx(tmp_path, frames, "image_embedding"), triton_client)
    n = len(frames)
    assert out.arrays["embedding"].shape == (n, 1280) and out.arrays["embedding__mask"].all()
    assert out.arrays["top_class_ids"].shape == (n, 5)
    probs = out.arrays["top_class_probs"]
    assert np.all((probs >= 0) & (probs <= 1)) and np.all(np.diff(probs, axis=1) <= 0)
    # Different frames give different embeddings (a constant output would pass every shape check).
    assert np.linalg.norm(out.arrays["embedding"][0] - out.arrays["embedding"][-1]) > 1.0
    assert_model_recorded(out, "image_encoder")


def test_image_embedding_without_frames_is_valid_empty(tmp_path: Path, triton_client: TritonClient) -> None:
    ctx = build_ctx(tmp_path, indices={"image_embedding": []})
    out = run_neural("image_embedding", ctx, triton_client)
    assert out.empty_reason == "no_frames" and out.models_used == []
    assert out.arrays["embedding"].shape == (0, 1280)


def test_faces_finds_the_portrait_face_and_none_on_scenery(
    tmp_path: Path, triton_client: TritonClient
) -> None:
    images = dict(zip(FRAME_NAMES, load_rgb_images(SAMPLES_DIR / "frames"), strict=True))
    portrait = images["astronaut"][None]
    out = run_neural("faces", frame_ctx(tmp_path / "a", portrait, "faces"), triton_client)
    assert out.arrays["face_count"][0] >= 1
    assert 0.02 < out.arrays["largest_face_area"][0] < 0.2
    cx, cy = out.arrays["largest_face_center"][0]
    assert 0.35 < cx < 0.6 and 0.1 < cy < 0.4  # the astronaut's face: centre-top of the picture
    scenery = np.stack([images["bbb_03s"], images["bbb_54s"]])
    out = run_neural("faces", frame_ctx(tmp_path / "b", scenery, "faces"), triton_client)
    assert out.arrays["face_count"].tolist() == [0.0, 0.0]
    assert out.arrays["largest_face_area"].tolist() == [0.0, 0.0]
    assert not out.arrays["largest_face_center__mask"].any()
    assert out.arrays["face_frame_ratio"] == 0.0
    assert_model_recorded(out, "face_detector")


def test_nsfw_scores_are_probabilities(
    tmp_path: Path, frames: np.ndarray, triton_client: TritonClient
) -> None:
    out = run_neural("nsfw", frame_ctx(tmp_path, frames, "nsfw"), triton_client)
    score = out.arrays["nsfw_score"]
    assert score.shape == (len(frames),) and np.all((score >= 0) & (score <= 1))
    assert out.arrays["nsfw_max"] == pytest.approx(score.max())
    assert_model_recorded(out, "nsfw_classifier")


def test_ocr_reads_title_cards_and_keeps_text_only_by_policy(
    tmp_path: Path, triton_client: TritonClient
) -> None:
    images = dict(zip(FRAME_NAMES, load_rgb_images(SAMPLES_DIR / "frames"), strict=True))
    cards = np.stack([images["bbb_51s"], images["bbb_54s"], images["bbb_03s"]])
    out = run_neural("ocr", frame_ctx(tmp_path / "a", cards, "ocr"), triton_client)
    assert out.arrays["text_line_count"][0] >= 1 and out.arrays["text_word_count"][0] >= 3
    assert out.arrays["text_line_count"][2] == 0 and out.arrays["text_area_ratio"][2] == 0
    assert 0 < out.arrays["text_area_ratio"][0] < 0.5
    assert "text" not in out.arrays and not out.raw_text_kept
    policy = PrivacyPolicy(keep_raw_text=True, raw_text_retention_days=30)
    kept = run_neural("ocr", frame_ctx(tmp_path / "b", cards, "ocr", policy=policy), triton_client)
    assert "revenge" in str(kept.arrays["text"][0]).lower() and kept.raw_text_kept
    assert_model_recorded(out, "ocr")


def test_ocr_batches_recognition_across_frames_without_changing_a_frame(triton_client: TritonClient) -> None:
    """Frames of two sizes sent at once reach the model together (the dynamic batcher merges
    ragged requests) and each reads exactly as when it is sent alone."""
    from concurrent.futures import ThreadPoolExecutor

    grpc = triton_client._grpc
    images = load_rgb_images(SAMPLES_DIR / "frames")
    assert len({im.shape for im in images}) > 1

    def read(image: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
        out = triton_client.infer("ocr", "1", {"image": image[np.newaxis]})
        return out["boxes"].reshape(-1, 9), list(out["text"].reshape(-1))

    alone = [read(image) for image in images]
    before = grpc.get_inference_statistics("ocr", "1", as_json=True)["model_stats"][0]
    with ThreadPoolExecutor(len(images)) as pool:
        together = list(pool.map(read, images))
    after = grpc.get_inference_statistics("ocr", "1", as_json=True)["model_stats"][0]
    frames_read = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert frames_read == len(images) and executions < len(images)  # some frames shared a batch
    for (boxes, texts), (boxes_b, texts_b) in zip(alone, together, strict=True):
        assert texts == texts_b and np.array_equal(boxes, boxes_b)
    assert any(b"Revenge" in t for _, texts in alone for t in texts)


def test_text_embedding_is_multilingual_and_masks_missing_fields(
    tmp_path: Path, triton_client: TritonClient
) -> None:
    info = SourceInfo(
        title="A giant rabbit takes revenge",
        description="Гигантский кролик мстит",
        tags=["quarterly earnings", "stock market"],
    )
    out = run_neural("text_embedding", build_ctx(tmp_path, info=info), triton_client)
    title, russian, tags = (out.arrays[f"{f}_embedding"][0] for f in ("title", "description", "tags"))
    assert all(out.arrays[f"{f}_embedding__mask"].all() for f in ("title", "description", "tags"))
    # The Russian translation of the title is closer to it than an unrelated English text.
    assert float(title @ russian) > float(title @ tags) + 0.05
    assert_model_recorded(out, "text_encoder")
    for sub, info, reason in (
        ("t", SourceInfo(title="Only a title", tags=[" "]), None),
        ("e", SourceInfo(), "no_text"),
    ):
        (tmp_path / sub).mkdir()
        partial = run_neural("text_embedding", build_ctx(tmp_path / sub, info=info), triton_client)
        assert partial.empty_reason == reason
        assert (
            not partial.arrays["tags_embedding__mask"].any()
            and np.isnan(partial.arrays["tags_embedding"]).all()
        )
        assert not partial.arrays["description_embedding__mask"].any()
        assert partial.arrays["title_embedding__mask"].all() == (reason is None)


def _vad_reader(output: ComponentOutput):
    meta = NpzMeta(
        run=identity(),
        component="speech_activity",
        processor="audio",
        producer=Producer(name="test", version="0"),
        component_schema_version="1.0.0",
        status="empty" if output.empty_reason else "ok",
        empty_reason=output.empty_reason,
        models_used=output.models_used,
        model_signature=model_signature(output.models_used),
    )
    return lambda name: (output.arrays, meta)


def test_speech_activity_transcript_and_its_embedding(tmp_path: Path, triton_client: TritonClient) -> None:
    audio = speech_audio_22k()
    policy = PrivacyPolicy(keep_raw_text=True, raw_text_retention_days=7)
    ctx = build_ctx(tmp_path, audio=audio, policy=policy)
    vad = run_neural("speech_activity", ctx, triton_client)
    segments = vad.arrays["speech_segments_sec"]
    assert len(segments) >= 1 and segments.min() > 1.0 and segments.max() < 8.0  # speech in 1.5-7.6 s
    assert 0.3 < vad.arrays["speech_ratio"] < 0.9
    assert vad.arrays["speech_prob"].shape == vad.arrays["timestamps_sec"].shape
    assert_model_recorded(vad, "speech_activity")

    ctx.dependency_reader = _vad_reader(vad)
    transcript = run_neural("transcript", ctx, triton_client)
    assert transcript.arrays["total_words"] >= 8
    text = " ".join(str(t) for t in transcript.arrays["text"]).lower()
    assert "dog" in text and "trailer" in text
    assert_model_recorded(transcript, "speech_to_text")

    ctx.dependency_reader = _vad_reader(transcript)
    embedding = run_neural("transcript_embedding", ctx, triton_client)
    assert embedding.arrays["embedding"].shape == (1, 384) and embedding.arrays["embedding__mask"].all()
    assert embedding.arrays["chunk_embedding"].shape == (len(transcript.arrays["timestamps_sec"]), 384)
    assert_model_recorded(embedding, "text_encoder")


def test_no_speech_gives_empty_transcript_and_empty_embedding(
    tmp_path: Path, triton_client: TritonClient
) -> None:
    tone = (0.1 * np.sin(2 * np.pi * 440 * np.arange(22050 * 6) / 22050)).astype(np.float32)
    ctx = build_ctx(tmp_path, audio=tone)
    vad = run_neural("speech_activity", ctx, triton_client)
    assert len(vad.arrays["speech_segments_sec"]) == 0
    ctx.dependency_reader = _vad_reader(vad)
    transcript = run_neural("transcript", ctx, triton_client)
    assert transcript.empty_reason == "no_speech"
    ctx.dependency_reader = _vad_reader(transcript)
    embedding = run_neural("transcript_embedding", ctx, triton_client)
    assert embedding.empty_reason == "no_speech" and not embedding.arrays["embedding__mask"].any()


def test_no_audio_track_is_valid_empty(tmp_path: Path, triton_client: TritonClient) -> None:
    out = run_neural("speech_activity", build_ctx(tmp_path), triton_client)
    assert out.empty_reason == "no_audio_track"


@pytest.mark.parametrize("name", NEURAL)
def test_server_down_is_triton_unavailable(name: str, tmp_path: Path, frames: np.ndarray) -> None:
    ctx = build_ctx(
        tmp_path,
        frames=frames[:2],
        indices={name: [0, 1]},
        audio=speech_audio_22k(),
        info=SourceInfo(title="title"),
    )
    with pytest.raises(TrendFlowError) as info:
        run_neural(name, ctx, TritonClient(f"127.0.0.1:{free_port()}", timeout_s=5))
    assert info.value.code is ErrorCode.TRITON_UNAVAILABLE and info.value.transient


def test_segment_helpers() -> None:
    probs = np.zeros(200, np.float32)
    probs[50:100] = 0.9  # 1.6 s of speech at 32 ms frames
    probs[70:72] = 0.2  # a 64 ms dip is shorter than the 100 ms minimum silence: bridged
    (segment,) = speech_segments(probs, duration_sec=6.4)
    assert segment[0] == pytest.approx(50 * 0.032 - 0.03) and segment[1] == pytest.approx(100 * 0.032 + 0.03)
    means = window_means(probs, np.array([0.0, 1.7]), np.array([1.0, 2.2]))
    assert means[0] == 0.0 and means[1] == pytest.approx(0.9)
    chunks = merge_segments(np.array([[0.0, 10.0], [10.5, 20.0], [40.0, 95.0]]), max_gap_sec=1.0)
    assert chunks == [(0.0, 20.0), (40.0, 70.0), (70.0, 95.0)]
