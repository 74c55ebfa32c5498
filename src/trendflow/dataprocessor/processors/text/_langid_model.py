"""langid's model, loaded in milliseconds instead of seconds.

langid ships its model as a base64 bz2 pickle written by Python 2: decoding it costs 3-8 s of CPU
per process (bz2 plus a slow element-by-element pickle), which a CLI run or a fresh worker pays
before its first title. The decoded model is kept in a plain NPZ (no pickle) in the local cache
directory (`TRENDFLOW_CACHE_DIR`, default `~/.cache/trendflow`), keyed by the hash of langid's
model string; an unwritable cache only means the slow path every time.
"""

from __future__ import annotations

import array
import base64
import bz2
import contextlib
import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def cache_dir() -> Path:
    return Path(os.environ.get("TRENDFLOW_CACHE_DIR") or Path.home() / ".cache" / "trendflow")


def _decode(model_string: bytes) -> tuple[Any, ...]:
    # langid's own packaging of its bundled model (not data from outside the installed package).
    return pickle.loads(bz2.decompress(base64.b64decode(model_string)))


def _to_npz(model: tuple[Any, ...], path: Path) -> None:
    nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output = model
    keys = np.fromiter(tk_output.keys(), dtype=np.int64, count=len(tk_output))
    lengths = np.array([len(tk_output[k]) for k in keys], dtype=np.int64)
    values = np.fromiter((v for k in keys for v in tk_output[k]), dtype=np.int64, count=int(lengths.sum()))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        np.savez(
            handle,
            nb_ptc=np.frombuffer(nb_ptc, dtype=np.float32),
            nb_pc=np.frombuffer(nb_pc, dtype=np.float32),
            nb_classes=np.array(nb_classes, dtype=np.str_),
            tk_nextmove=np.frombuffer(tk_nextmove, dtype=np.uint16),
            out_keys=keys,
            out_lengths=lengths,
            out_values=values,
        )
    os.replace(handle.name, path)


def _from_npz(path: Path) -> tuple[Any, ...]:
    with np.load(path, allow_pickle=False) as npz:
        offsets = np.concatenate([[0], np.cumsum(npz["out_lengths"])]).tolist()
        values = npz["out_values"].tolist()
        tk_output = {
            k: tuple(values[offsets[i] : offsets[i + 1]]) for i, k in enumerate(npz["out_keys"].tolist())
        }
        return (
            array.array("f", npz["nb_ptc"].tobytes()),
            array.array("f", npz["nb_pc"].tobytes()),
            npz["nb_classes"].tolist(),
            array.array("H", npz["tk_nextmove"].tobytes()),
            tk_output,
        )


def load_model(model_string: bytes) -> tuple[Any, ...]:
    """(nb_ptc, nb_pc, nb_classes, tk_nextmove, tk_output) exactly as langid decodes them."""
    digest = hashlib.sha256(model_string).hexdigest()[:16]
    path = cache_dir() / f"langid-model-{digest}.npz"
    with contextlib.suppress(OSError, ValueError, KeyError):  # no cache yet, or a damaged one
        return _from_npz(path)
    model = _decode(model_string)
    with contextlib.suppress(OSError):  # read-only home or disk full: next process decodes again
        _to_npz(model, path)
    return model
