"""text/text_stats: counts over the title, description and tags, and the language; no raw text.

`text_statistics()` and `detect_language()` are plain functions so the dataset pipeline can apply
the same definitions to snapshot titles. Definitions (Unicode-aware):

- chars: Unicode code points; words: whitespace-separated tokens holding a letter or digit;
- upper_ratio: upper-case letters / letters that have a case (NaN when there is none);
- hashtags: `#` + word characters with at least one letter, not preceded by a word character;
- emoji: emoji sequences as the `emoji` package counts them (a ZWJ family or a flag is one);
- exclamations / questions: `!`/`！` and `?`/`？` characters;
- urls: `http(s)://...` or `www....` tokens.

An unknown field (None, e.g. a local file has no description) gives NaN with mask False; an empty
string is known and counts 0. SourceInfo has no "unknown" for tags (default []): an empty tag
list counts as unknown only when the title and description are unknown too, and then the
component is valid-empty (`no_text_metadata`). Language is langid on title + description + tags
with URLs and emoji removed: "und" (mask False) when nothing is left. Raw text enters the NPZ
only when the privacy policy says so (`raw_title`, `raw_description`, `raw_tags` as a JSON list),
and the orchestrator records the retention.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import emoji
import numpy as np

from trendflow.dataprocessor.component import Component, ComponentOutput, RunContext, masked, register
from trendflow.dataprocessor.outputs import category, raw_text, scalar, scalars
from trendflow.dataprocessor.processors.text._langid_model import load_model

UNDETERMINED = "und"
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<!\w)#\w*[^\W\d_]\w*")
_WORD = re.compile(r"\S*\w\S*")
_EXCLAMATION = re.compile(r"[!！]")
_QUESTION = re.compile(r"[?？]")

TITLE_STATS = ("chars", "words", "upper_ratio", "hashtags", "emoji", "exclamations", "questions")
DESCRIPTION_STATS = ("chars", "words", "urls", "hashtags", "emoji")
STAT_NAMES = (
    *(f"title_{s}" for s in TITLE_STATS),
    *(f"description_{s}" for s in DESCRIPTION_STATS),
    "tags_count",
    "tags_chars",
)


def _upper_ratio(text: str) -> float:
    cased = [ch for ch in text if ch.isupper() or ch.islower()]
    return sum(ch.isupper() for ch in cased) / len(cased) if cased else math.nan


def _counts(text: str) -> dict[str, float]:
    return {
        "chars": float(len(text)),
        "words": float(len(_WORD.findall(text))),
        "upper_ratio": _upper_ratio(text),
        "hashtags": float(len(_HASHTAG.findall(text))),
        "emoji": float(emoji.emoji_count(text)),
        "exclamations": float(len(_EXCLAMATION.findall(text))),
        "questions": float(len(_QUESTION.findall(text))),
        "urls": float(len(_URL.findall(text))),
    }


def text_statistics(
    title: str | None, description: str | None, tags: Sequence[str] | None
) -> dict[str, float]:
    """The numeric text features, named as in the NPZ; NaN for an unknown (None) field."""
    out: dict[str, float] = {}
    for prefix, text, names in (
        ("title", title, TITLE_STATS),
        ("description", description, DESCRIPTION_STATS),
    ):
        counts = _counts(text) if text is not None else {}
        for name in names:
            out[f"{prefix}_{name}"] = counts.get(name, math.nan)
    out["tags_count"] = float(len(tags)) if tags is not None else math.nan
    out["tags_chars"] = float(sum(len(t) for t in tags)) if tags is not None else math.nan
    return out


@lru_cache(maxsize=1)
def language_identifier() -> Any:
    """langid's identifier with normalised probabilities, built once per process from the
    locally cached model (`_langid_model`; the first process on a machine decodes it, seconds)."""
    from langid.langid import LanguageIdentifier, model

    nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output = load_model(model)
    # As LanguageIdentifier.from_modelstring does after decoding.
    num_feats = len(nb_ptc) // len(nb_pc)
    ptc = np.array(nb_ptc).reshape(num_feats, len(nb_pc))
    return LanguageIdentifier(
        ptc, np.array(nb_pc), num_feats, nb_classes, tk_nextmove, tk_output, norm_probs=True
    )


_langid_lock = threading.Lock()


def detect_language(
    title: str | None, description: str | None = None, tags: Sequence[str] | None = None
) -> tuple[str, float]:
    """(ISO 639-1 code, probability), or ("und", NaN) when there is no text to judge."""
    parts = [title or "", description or "", " ".join(tags or [])]
    # URLs and emoji carry no language, and emoji bytes pull langid's byte n-grams towards
    # unrelated languages (an English title with two emoji came out as Latin).
    text = emoji.replace_emoji(_URL.sub(" ", "\n".join(parts)), " ").strip()
    if not any(ch.isalpha() for ch in text):
        return UNDETERMINED, math.nan
    with _langid_lock:  # also keeps two threads from loading the model twice
        code, probability = language_identifier().classify(text)
    return str(code), float(probability)


def _raw_text_arrays(title: str | None, description: str | None, tags: Sequence[str] | None) -> dict:
    arrays: dict[str, np.ndarray] = {}
    for name, value in (
        ("raw_title", title),
        ("raw_description", description),
        ("raw_tags", None if tags is None else json.dumps(list(tags), ensure_ascii=False)),
    ):
        arrays.update(masked(name, value or "", mask=value is not None, dtype=np.str_))
    return arrays


@register
class TextStats(Component):
    name = "text_stats"
    processor = "text"
    schema_version = "1.0.0"
    version = "1.0.0"
    outputs = (
        *scalars(*STAT_NAMES),
        category("language"),
        scalar("language_confidence"),
        *(raw_text(n, per_unit=False) for n in ("raw_title", "raw_description", "raw_tags")),
    )

    def run(self, ctx: RunContext) -> ComponentOutput:
        info = ctx.source_info
        title, description = info.title, info.description
        # SourceInfo cannot say "tags unknown" (default []): no title, description or tags at all
        # means no text metadata was found, so the empty tag list is unknown too.
        tags = list(info.tags or [])
        if not tags and title is None and description is None:
            tags = None
        arrays: dict[str, np.ndarray] = {}
        for name, value in text_statistics(title, description, tags).items():
            arrays.update(masked(name, value))
        language, confidence = detect_language(title, description, tags)
        arrays.update(masked("language", language, mask=language != UNDETERMINED, dtype=np.str_))
        arrays.update(masked("language_confidence", confidence))
        known = [v for v in (title, description, tags) if v is not None]
        output = ComponentOutput(arrays=arrays, units_processed=len(known), batch_sizes=[len(known)])
        if not known:
            output.empty_reason = "no_text_metadata"
        if ctx.policy.keep_raw_text:
            arrays.update(_raw_text_arrays(title, description, tags))
            output.raw_text_kept = True
        return output
