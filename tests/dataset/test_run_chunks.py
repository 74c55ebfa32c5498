"""Columnar run-feature chunks keep every per-run value and tell "absent" from False / None."""

from __future__ import annotations

import numpy as np

from trendflow.dataset.components import ArraySpec
from trendflow.dataset.run_chunks import ABSENT, RunChunk, fill, merge_specs


def test_chunk_columns_keep_values_and_absence() -> None:
    rows = [
        {"a__present": True, "a__x": 1.5, "a__lang": "en", "a__empty_reason": None},
        {"a__present": False, "a__empty_reason": "no_audio_track"},
        {"b__present": True, "a__x": None},
    ]
    chunk = RunChunk.from_rows(rows, [{}, {"a__v": np.arange(3.0)}, {}], [{}, {}, {}])
    assert chunk.columns["a__present"].tolist() == [1, 0, ABSENT]
    assert np.array_equal(chunk.columns["a__x"], [1.5, np.nan, np.nan], equal_nan=True)
    assert chunk.columns["a__lang"].tolist() == ["en", None, None]
    assert chunk.columns["a__empty_reason"].tolist() == [None, "no_audio_track", None]
    where, vectors = chunk.vectors["a__v"]
    assert where.tolist() == [1] and vectors[0].tolist() == [0.0, 1.0, 2.0]


def test_fill_places_rows_and_skips_absent_flags() -> None:
    chunk = RunChunk.from_rows([{"p": 1.0, "f__present": True}, {"f__present": None}], [{}, {}], [{}, {}])
    rows, src = np.array([3, 0]), np.array([0, 1])
    numbers = np.full(4, np.nan)
    fill(numbers, rows, chunk.columns["p"], src)
    assert np.array_equal(numbers, [np.nan, np.nan, np.nan, 1.0], equal_nan=True)
    flags = np.zeros(4, dtype=bool)
    fill(flags, rows, chunk.columns["f__present"], src)
    assert flags.tolist() == [False, False, False, True]
    strings = np.full(4, None, dtype=object)
    fill(strings, rows, chunk.columns["p"], np.array([1, 1]))  # NaN ("no value") stays None
    assert strings.tolist() == [None, None, None, None]


def test_merge_specs_first_seen_wins_and_vectors_widen() -> None:
    specs = {("c", "x"): ArraySpec("series"), ("c", "v"): ArraySpec("vector", 4)}
    merge_specs(specs, {("c", "x"): ArraySpec("scalar"), ("c", "v"): ArraySpec("vector", 8)})
    assert specs == {("c", "x"): ArraySpec("series"), ("c", "v"): ArraySpec("vector", 8)}
