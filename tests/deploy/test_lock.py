"""scripts/check_lock.py: the lock (requirements/) agrees with pyproject.toml, and disagreement fails."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from tests.deploy.conftest import ROOT


@pytest.fixture(scope="module")
def check_lock() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_lock", ROOT / "scripts" / "check_lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def test_the_committed_lock_matches_pyproject(check_lock: ModuleType) -> None:
    assert check_lock.problems(ROOT) == []


def test_a_dependency_added_without_refreshing_the_lock_fails(check_lock: ModuleType, copy: Path) -> None:
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6",', '"pyyaml>=6",\n    "optuna>=4",'))
    found = check_lock.problems(copy)
    assert any("changed since the lock was refreshed" in p for p in found)
    assert any(p.startswith("optuna>=4 is not pinned") for p in found)


def test_a_bound_the_lock_breaks_fails(check_lock: ModuleType, copy: Path) -> None:
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"numpy>=1.26,<2"', '"numpy>=1.26,<1.26.2"'))
    assert any("does not allow the locked numpy==" in p for p in check_lock.problems(copy))


def test_the_lock_keeps_torch_cpu_and_hashes(check_lock: ModuleType, copy: Path) -> None:
    lock = copy / "requirements" / "lock.txt"
    text = lock.read_text()
    assert "torch==2.13.0+cpu" in text
    lock.write_text(text.replace("torch==2.13.0+cpu", "torch==2.13.0"))
    assert "torch is locked at 2.13.0, not the CPU build (+cpu)" in check_lock.problems(copy)
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith("pyyaml=="))
    unhashed = [
        *lines[:i],
        "pyyaml==6.0.2",
        *[ln for ln in lines[i + 1 :] if not ln.startswith("    --hash")],
    ]
    lock.write_text("\n".join(unhashed))
    assert any("no sha256 hash" in p for p in check_lock.problems(copy))


def test_the_image_lock_is_a_subset_at_the_same_versions(check_lock: ModuleType, copy: Path) -> None:
    runtime = copy / "requirements" / "runtime.txt"
    runtime.write_text(runtime.read_text().replace("numpy==1.26.4", "numpy==1.26.3"))
    assert any("runtime.txt pins numpy==1.26.3" in p for p in check_lock.problems(copy))
