"""text/text_stats and text/temporal: known strings and dates; raw text stays out by default."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from trendflow.dataprocessor.component import PrivacyPolicy
from trendflow.dataprocessor.processors.text.temporal import publish_features
from trendflow.dataprocessor.processors.text.text_stats import detect_language, text_statistics
from trendflow.dataprocessor.sources import SourceInfo

from .conftest import run_component

TITLE = "WOW!! Best pasta EVER? 🍝🔥 #cooking #food #1"
DESCRIPTION = (
    "Today we cook a quick pasta dinner with tomatoes and basil.\n"
    "Recipe: https://example.com/pasta and www.example.org/more 👨‍👩‍👧 #recipe"
)
TAGS = ["pasta", "cooking", "italian food"]


def test_text_statistics_counts() -> None:
    stats = text_statistics(TITLE, DESCRIPTION, TAGS)
    assert stats["title_chars"] == len(TITLE)
    assert stats["title_words"] == 7  # emoji-only token is not a word; "#1" and "#food" are
    assert stats["title_hashtags"] == 2  # "#1" has no letter: not a hashtag
    assert stats["title_emoji"] == 2
    assert stats["title_exclamations"] == 2 and stats["title_questions"] == 1
    letters = [c for c in TITLE if c.isalpha()]
    assert stats["title_upper_ratio"] == pytest.approx(sum(c.isupper() for c in letters) / len(letters))
    assert stats["description_urls"] == 2
    assert stats["description_hashtags"] == 1
    assert stats["description_emoji"] == 1  # one ZWJ family sequence
    assert stats["tags_count"] == 3 and stats["tags_chars"] == sum(map(len, TAGS))


def test_unknown_fields_are_nan_and_empty_strings_are_zero() -> None:
    stats = text_statistics(None, "", [])
    assert math.isnan(stats["title_chars"]) and math.isnan(stats["title_upper_ratio"])
    assert stats["description_chars"] == 0 and stats["description_words"] == 0
    assert stats["tags_count"] == 0
    assert math.isnan(text_statistics("123 456", None, None)["title_upper_ratio"])  # nothing cased


def test_language_detection() -> None:
    assert detect_language("Как приготовить борщ дома: простой рецепт")[0] == "ru"
    code, confidence = detect_language(TITLE, DESCRIPTION, TAGS)
    assert code == "en" and 0.5 < confidence <= 1.0
    assert detect_language("https://example.com 123 🔥", None, None) == (
        "und",
        pytest.approx(math.nan, nan_ok=True),
    )


def test_text_stats_component_keeps_no_raw_text(make_ctx) -> None:
    ctx = make_ctx(info=SourceInfo(title=TITLE, description=DESCRIPTION, tags=TAGS))
    out = run_component("text_stats", ctx)
    assert out.empty_reason is None and not out.raw_text_kept
    assert str(out.arrays["language"]) == "en" and out.arrays["language__mask"]
    assert float(out.arrays["title_chars"]) == len(TITLE)
    assert all(a.shape == () for a in out.arrays.values())
    # No array holds any of the raw strings (or a piece of them).
    strings = [str(a) for a in out.arrays.values() if a.dtype.kind == "U"]
    assert strings == ["en"]


def test_text_stats_keeps_raw_text_only_when_the_policy_allows(make_ctx) -> None:
    policy = PrivacyPolicy(keep_raw_text=True, raw_text_retention_days=30)
    ctx = make_ctx(info=SourceInfo(title=TITLE, description=None, tags=TAGS), policy=policy)
    out = run_component("text_stats", ctx)
    assert out.raw_text_kept
    assert str(out.arrays["raw_title"]) == TITLE and out.arrays["raw_title__mask"]
    assert not out.arrays["raw_description__mask"]
    assert json.loads(str(out.arrays["raw_tags"])) == TAGS


def test_text_stats_without_any_text_is_valid_empty(make_ctx) -> None:
    out = run_component("text_stats", make_ctx(info=SourceInfo()))
    assert out.empty_reason == "no_text_metadata"
    assert str(out.arrays["language"]) == "und" and not out.arrays["language__mask"]
    assert not any(v for k, v in out.arrays.items() if k.endswith("__mask"))


def test_title_only_local_file(make_ctx) -> None:
    out = run_component("text_stats", make_ctx(info=SourceInfo(title="my holiday video")))
    assert out.empty_reason is None
    assert out.arrays["title_words__mask"] and float(out.arrays["title_words"]) == 3
    assert not out.arrays["description_chars__mask"]
    assert out.arrays["tags_count__mask"] and float(out.arrays["tags_count"]) == 0


def test_publish_features_in_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    # Monday 2024-03-04 01:30 in Moscow is Sunday 2024-03-03 22:30 UTC.
    assert publish_features(datetime(2024, 3, 4, 1, 30, tzinfo=moscow)) == {
        "publish_hour_utc": 22.0,
        "publish_weekday": 6.0,
        "publish_month": 3.0,
    }
    assert publish_features(datetime(2024, 1, 1, 0, 0))["publish_weekday"] == 0.0  # naive = UTC


def test_temporal_component(make_ctx) -> None:
    published = datetime(2023, 12, 31, 23, 59, tzinfo=UTC)
    out = run_component("temporal", make_ctx(duration_sec=61.5, info=SourceInfo(published_at=published)))
    assert out.empty_reason is None
    assert {k: float(v) for k, v in out.arrays.items() if not k.endswith("__mask")} == {
        "duration_sec": 61.5,
        "publish_hour_utc": 23.0,
        "publish_weekday": 6.0,
        "publish_month": 12.0,
    }


def test_temporal_unknown_publish_time_is_masked_not_empty(make_ctx) -> None:
    out = run_component("temporal", make_ctx(duration_sec=12.0))
    assert out.empty_reason is None
    assert out.arrays["duration_sec__mask"] and float(out.arrays["duration_sec"]) == 12.0
    assert not out.arrays["publish_hour_utc__mask"] and np.isnan(out.arrays["publish_hour_utc"])


def test_cached_langid_model_is_langids_model(tmp_path, monkeypatch) -> None:
    from langid.langid import model

    from trendflow.dataprocessor.processors.text import _langid_model

    monkeypatch.setenv("TRENDFLOW_CACHE_DIR", str(tmp_path))
    decoded = _langid_model.load_model(model)  # decodes langid's string, writes the cache
    (cached_file,) = tmp_path.glob("langid-model-*.npz")
    cached = _langid_model.load_model(model)  # reads the NPZ
    for original, copy in zip(decoded, cached, strict=True):
        assert type(original) is type(copy) and original == copy
    assert cached[3].typecode == decoded[3].typecode and cached[0].typecode == decoded[0].typecode
    # A damaged cache file is ignored (and rewritten), never an error.
    cached_file.write_bytes(b"not an npz")
    assert _langid_model.load_model(model)[4] == decoded[4]
    assert _langid_model.load_model(model)[2] == decoded[2]
