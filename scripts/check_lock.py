"""Fails when pyproject.toml and the dependency lock (requirements/) disagree.

Checks, with the standard library and `packaging` only (a bare venv has it inside pip):
1. the lock inputs (pyproject's dependencies, extras and requires-python, requirements/constraints.txt,
   requirements/no-deps.in) hash to what `scripts/lock.sh` recorded in requirements/lock.inputs:
   an edit that was not followed by a refresh is caught even when the old pins still fit it;
2. every requirement of the project and of its locked extras is pinned in requirements/lock.txt at a
   version it allows, and every pin carries a sha256 hash;
3. the lock keeps the deployment's invariants: torch is the CPU build, numpy < 2, no CUDA wheels;
4. requirements/runtime.txt (the image's subset) pins the runtime requirements at lock.txt's versions;
5. requirements/no-deps.txt pins exactly requirements/no-deps.in.

`--stamp` records the current input hash (scripts/lock.sh does it after compiling). Exit status 1 and
one line per problem when the lock is stale; run `bash scripts/lock.sh` to fix it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

try:
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # a fresh venv: pip vendors packaging
    from pip._vendor.packaging.markers import default_environment  # type: ignore[no-redef]
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[1]
LOCKED_EXTRAS = ("dev", "models", "ops", "tuning")
RUNTIME_EXTRAS = ("ops",)  # requirements/runtime.txt: what the container image installs
# The lock targets the CI/deploy platform (scripts/lock.sh: --python-version 3.11, manylinux x86_64).
TARGET_ENV = {
    **default_environment(),
    "python_version": "3.11",
    "python_full_version": "3.11.2",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
# CUDA runtime wheels that a CUDA torch (or an unpinned GPU package) drags in; nvidia-pytriton is the
# Triton server wheel and belongs in the lock.
CUDA_WHEEL = re.compile(r"^nvidia-(cu|cuda|cublas|cudnn|cufft|curand|cusolver|cusparse|nccl|nvjitlink|nvtx)")


def _lines(path: Path) -> list[str]:
    return [
        line.split("#", 1)[0].strip()
        for line in path.read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]


def input_digest(root: Path = ROOT) -> str:
    req = root / "requirements"
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    payload = {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
        "extras": {name: sorted(extras.get(name, [])) for name in LOCKED_EXTRAS},
        "constraints": sorted(_lines(req / "constraints.txt")),
        "no-deps": sorted(_lines(req / "no-deps.in")),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def read_pins(path: Path) -> tuple[dict[str, Version], list[str]]:
    """name -> pinned version, and the names of pins without a hash."""
    pins: dict[str, Version] = {}
    unhashed: list[str] = []
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        match = PIN.match(line)
        if not match:
            continue
        name = canonicalize_name(match.group(1))
        pins[name] = Version(match.group(3))
        if "--hash=sha256:" not in line:
            unhashed.append(name)
    return pins, unhashed


def project_requirements(root: Path = ROOT, extras: tuple[str, ...] = LOCKED_EXTRAS) -> list[Requirement]:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    raw = list(project.get("dependencies", []))
    for extra in extras:
        raw += project.get("optional-dependencies", {}).get(extra, [])
    reqs = [Requirement(r) for r in raw]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(TARGET_ENV)]


def problems(root: Path = ROOT) -> list[str]:
    """One line per disagreement between pyproject.toml and requirements/ under `root`."""
    req = root / "requirements"
    found: list[str] = []
    stamp = req / "lock.inputs"
    recorded = stamp.read_text().strip() if stamp.exists() else "(none)"
    if recorded != input_digest(root):
        found.append(
            "pyproject.toml dependencies, requirements/constraints.txt or requirements/no-deps.in "
            "changed since the lock was refreshed"
        )
    pins, unhashed = read_pins(req / "lock.txt")
    for wanted_req in project_requirements(root):
        name = canonicalize_name(wanted_req.name)
        if name not in pins:
            found.append(f"{wanted_req} is not pinned in requirements/lock.txt")
        elif not wanted_req.specifier.contains(pins[name], prereleases=True):
            found.append(f"{wanted_req} does not allow the locked {name}=={pins[name]}")
    found += [f"{name} has no sha256 hash in requirements/lock.txt" for name in unhashed]
    torch = pins.get("torch")
    if torch is not None and torch.local != "cpu":
        found.append(f"torch is locked at {torch}, not the CPU build (+cpu)")
    if pins.get("numpy") is not None and pins["numpy"] >= Version("2"):
        found.append(f"numpy is locked at {pins['numpy']}; nvidia-pytriton needs numpy < 2")
    found += [f"{name} (a CUDA wheel) is in the lock" for name in pins if CUDA_WHEEL.match(name)]
    runtime, unhashed = read_pins(req / "runtime.txt")
    found += [
        f"requirements/runtime.txt pins {name}=={version}, lock.txt pins {pins.get(name)}"
        for name, version in runtime.items()
        if pins.get(name) != version
    ]
    found += [
        f"{r} is not pinned in requirements/runtime.txt"
        for r in project_requirements(root, RUNTIME_EXTRAS)
        if canonicalize_name(r.name) not in runtime
    ]
    found += [f"{name} has no sha256 hash in requirements/runtime.txt" for name in unhashed]
    wanted = {canonicalize_name(Requirement(r).name): Requirement(r) for r in _lines(req / "no-deps.in")}
    nodeps, unhashed = read_pins(req / "no-deps.txt")
    if set(nodeps) != set(wanted):
        found.append(f"requirements/no-deps.txt pins {sorted(nodeps)}, no-deps.in lists {sorted(wanted)}")
    found += [
        f"{r} does not allow the locked {nodeps[name]}"
        for name, r in wanted.items()
        if name in nodeps and not r.specifier.contains(nodeps[name], prereleases=True)
    ]
    found += [f"{name} has no sha256 hash in requirements/no-deps.txt" for name in unhashed]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stamp", action="store_true", help="record the inputs' hash (scripts/lock.sh)")
    args = parser.parse_args(argv)
    if args.stamp:
        (ROOT / "requirements" / "lock.inputs").write_text(input_digest() + "\n")
    found = problems()
    for problem in found:
        print(f"[check_lock] {problem}", file=sys.stderr)
    if found:
        print(
            "[check_lock] the lock is stale: run `bash scripts/lock.sh` and commit requirements/",
            file=sys.stderr,
        )
        return 1
    print("[check_lock] requirements/ matches pyproject.toml", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
