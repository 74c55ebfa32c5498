"""Dockerfile, Dockerfile.triton-gpu and .dockerignore, checked by parsing (hadolint is not available).

The CPU image was also built with podman on the project machine (docs/deploy.md says what ran);
these checks keep the properties that matter from regressing without a container engine."""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path

from tests.deploy.conftest import ROOT

SCRIPTS = ROOT / "scripts"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    result: dict[str, list[tuple[str, str]]] = {}
    current = None
    for word, rest in instructions(path):
        if word == "FROM":
            parts = rest.split()
            current = parts[parts.index("AS") + 1] if "AS" in parts else parts[0]
            result[current] = [(word, rest)]
        elif current is not None:
            result[current].append((word, rest))
    return result


def last_user(steps: list[tuple[str, str]]) -> str:
    users = [rest for word, rest in steps if word == "USER"]
    assert users, "the final stage sets no USER (it would run as root)"
    return users[-1]


def test_cpu_image_is_multi_stage_non_root_and_installs_from_the_lock() -> None:
    dockerfile = ROOT / "Dockerfile"
    found = stages(dockerfile)
    assert list(found) == ["base", "models", "venv", "runtime"]
    runtime = found["runtime"]
    assert last_user(runtime).split(":")[0] not in ("root", "0")
    # Every pip install of packages is hash-checked, from lock files that exist.
    for name, steps in found.items():
        for word, rest in steps:
            if word != "RUN" or "pip install" not in rest:
                continue
            for command in rest.split("&&"):
                if "pip install" in command and " -r " in command:
                    assert "--require-hashes" in command, (name, command)
                    lock = shlex.split(command)[shlex.split(command).index("-r") + 1]
                    assert (ROOT / lock).is_file(), lock
    # The model repository is built in the image (models stage) and only its files are copied.
    assert any("trendflow models build" in rest for word, rest in found["models"] if word == "RUN")
    copies = [rest for word, rest in runtime if word == "COPY"]
    assert any(c.startswith("--from=models") and "serving/" in c for c in copies)
    assert any(c.startswith("--from=venv") for c in copies)
    # The runtime stage never installs torch (build-only) and keeps the worker's health on a port.
    assert not any("lock.txt" in rest for word, rest in runtime if word == "RUN")
    assert "torch==" not in (ROOT / "requirements" / "runtime.txt").read_text()
    assert any(word == "HEALTHCHECK" and "/health/live" in rest for word, rest in runtime)
    env = " ".join(rest for word, rest in runtime if word == "ENV")
    assert "TRENDFLOW_HEALTH_HOST=0.0.0.0" in env
    # Not image-wide: Flower and MLflow use prometheus_client too; the worker picks its own folder.
    assert "PROMETHEUS_MULTIPROC_DIR" not in env
    assert "KEDRO_LOGGING_CONFIG=/app/conf/logging.yml" in env


def test_gpu_image_serves_the_cpu_images_repository_with_gpu_configs() -> None:
    found = stages(ROOT / "Dockerfile.triton-gpu")
    froms = [steps[0][1] for steps in found.values()]
    assert any("${TRITON_IMAGE}" in f for f in froms) and any("${TRENDFLOW_IMAGE}" in f for f in froms)
    text = (ROOT / "Dockerfile.triton-gpu").read_text()
    assert "ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:" in text
    assert last_user(found["runtime"]).split(":")[0] not in ("root", "0")
    assert "apply_gpu_configs.py /models" in text and "ORT_TENSORRT_FP16_ENABLE=1" in text


def test_gpu_requirements_follow_the_lock() -> None:
    lock = {}
    for line in (ROOT / "requirements" / "lock.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;\\]+)", line)
        if match:
            lock[match.group(1).lower()] = match.group(2)
    pins = dict(
        line.split("==") for line in (ROOT / "serving/gpu/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip
    assert pins.pop("onnxruntime-gpu") == lock["onnxruntime"]
    for name, version in pins.items():
        assert lock[name.lower()] == version, name


def test_dockerignore_keeps_local_state_out_and_sources_in() -> None:
    patterns = [
        p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines() if p.strip() and p[0] != "#"
    ]

    def ignored(path: str) -> bool:
        """Docker's rule: the last matching pattern wins, `!` re-includes."""
        verdict = False
        for p in patterns:
            negate, pattern = p.startswith("!"), p.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                verdict = not negate
        return verdict

    for path in [
        ".venv",
        ".git",
        "data/02_intermediate",
        "mlruns",
        "conf/local",
        "serving/model_repository/ocr/1/weights",
    ]:
        assert ignored(path), path
    copied = [rest.split()[-2] for word, rest in instructions(ROOT / "Dockerfile") if word == "COPY"]
    for source in {c for c in copied if not c.startswith("--") and not c.startswith("/")}:
        assert not ignored(source.rstrip("/")), source
        assert (ROOT / source).exists(), source
