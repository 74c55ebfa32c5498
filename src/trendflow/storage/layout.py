"""Per-run layout: `<platform_id>/<video_id>/<run_id>/...` under the result store root."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from trendflow.contracts.identity import (
    RunIdentity,
    validate_platform_id,
    validate_video_id,
)

# Prefix of the temp file an atomic write creates next to its target (storage/store.py).
TMP_MARKER = ".tmp-"

MANIFEST = "manifest.json"
FRAMES_DIR = "frames_dir"
METADATA = "frames_dir/metadata.json"
RUN_STATE = "run_state.json"
STATE_EVENTS = "state_events.jsonl"
GLOBAL_STATE = "state_level1_global.json"


def video_dir(platform_id: str, video_id: str) -> str:
    return posixpath.join(validate_platform_id(platform_id), validate_video_id(video_id))


@dataclass(frozen=True)
class RunLayout:
    """Store-relative paths of one run's files."""

    platform_id: str
    video_id: str
    run_id: str

    @classmethod
    def of(cls, run: RunIdentity) -> RunLayout:
        return cls(run.platform_id, run.video_id, run.run_id)

    @classmethod
    def from_run_dir(cls, run_dir: str) -> RunLayout:
        parts = run_dir.strip("/").split("/")
        if len(parts) < 3:
            raise ValueError(f"{run_dir!r} is not <platform_id>/<video_id>/<run_id>")
        return cls(*parts[-3:])

    @property
    def run_dir(self) -> str:
        return posixpath.join(video_dir(self.platform_id, self.video_id), self.run_id)

    def path(self, *parts: str) -> str:
        return posixpath.join(self.run_dir, *parts)

    @property
    def manifest(self) -> str:
        return self.path(MANIFEST)

    @property
    def metadata(self) -> str:
        return self.path(METADATA)

    def npz(self, processor: str, component: str) -> str:
        return self.path(processor, f"{component}.npz")

    def npz_rel(self, processor: str, component: str) -> str:
        """The artifact path as the manifest records it (relative to the run directory)."""
        return posixpath.join(processor, f"{component}.npz")

    def state_file(self, processor: str) -> str:
        return self.path(f"state_{processor}.json")
