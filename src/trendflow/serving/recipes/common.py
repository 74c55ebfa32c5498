"""What every build recipe shares: locating package files, sample inputs, sessions, checks."""

from __future__ import annotations

import importlib.util
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.serving.model_build import SAMPLES_DIR
from trendflow.serving.preprocess import load_rgb_images, square_frames

MIN_COSINE = 0.95


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        raise TrendFlowError(
            ErrorCode.DEPENDENCY_MISSING,
            f"building the model repository needs the package {name}; install the models-build extra",
        ) from None


def package_file(module: str, *parts: str) -> Path:
    """A data file inside an installed package, found without importing it (silero imports torch)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"package {module} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.exists():
        raise TrendFlowError(ErrorCode.DEPENDENCY_MISSING, f"{module} does not ship {'/'.join(parts)}")
    return path


def sample_frames() -> np.ndarray:
    """The sample frames as the image models receive them (224x224 RGB uint8)."""
    return square_frames(load_rgb_images(SAMPLES_DIR / "frames"))


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)


def embedding_checks(
    embedding: np.ndarray, reference: np.ndarray, probs: np.ndarray | None, ref_probs: np.ndarray | None
) -> dict[str, float | bool | int]:
    """The acceptance rule of a variant: cosine >= 0.95 and the same top-1 class on every frame."""
    cosine = cosine_rows(embedding, reference)
    checks: dict[str, float | bool | int] = {
        "samples": len(reference),
        "cosine_min": round(float(cosine.min()), 5),
        "cosine_mean": round(float(cosine.mean()), 5),
    }
    passed = bool(cosine.min() >= MIN_COSINE)
    if probs is not None and ref_probs is not None:
        agreement = float((probs.argmax(1) == ref_probs.argmax(1)).mean())
        checks["top1_agreement"] = round(agreement, 5)
        passed = passed and agreement == 1.0
    checks["passed"] = passed
    return checks


def ort_session(path: Path):  # -> onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def sample_speech() -> np.ndarray:
    """The 16 kHz mono speech sample (silence, an English sentence, silence) as float32."""
    import soundfile

    audio, rate = soundfile.read(SAMPLES_DIR / "audio" / "speech_en_16k.wav", dtype="float32")
    if rate != 16000:
        raise TrendFlowError(ErrorCode.INTERNAL, f"speech sample must be 16 kHz, got {rate}")
    return audio


def load_module_file(path: Path, name: str, stub_triton: bool = False):
    """Import a model repository file; `stub_triton` stands in for the backend's utils module
    (only available inside the server) when the file's helpers are used at build time."""
    import sys
    import types

    if stub_triton and "triton_python_backend_utils" not in sys.modules:
        sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_into(source: Path, target_dir: Path) -> Path:
    target = target_dir / source.name
    if source.is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copy2(source, target)
    return target
