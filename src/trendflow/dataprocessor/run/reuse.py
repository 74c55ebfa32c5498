"""On a resume: which components keep their artifacts, and whether the segmenter agrees.

A new run has no `ReusePlan` (`invalid` None): everything is computed. A resumed run's plan
drops crash leftovers, keeps the components whose artifacts still match their sha256 (and whose
dependencies are kept too), and, after the segmenter re-ran, drops every kept component if its
metadata.json differs from the recorded one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trendflow.contracts.manifest import ComponentRecord
from trendflow.dataprocessor.graph import Profile
from trendflow.dataprocessor.state import RunRecorder


@dataclass
class ReusePlan:
    invalid: set[str] | None  # None: a new run; a set: components a resume must recompute anyway
    reusable: set[str] = field(default_factory=set)
    recorded_metadata: str | None = None

    @property
    def resuming(self) -> bool:
        return self.invalid is not None

    def plan(self, profile: Profile, recorder: RunRecorder) -> None:
        if self.invalid is None:
            return
        recorder.sweep_orphans()
        segmenter = recorder.component("segmenter")
        ok = segmenter.status == "ok" and segmenter.artifacts
        self.recorded_metadata = segmenter.artifacts[0].sha256 if ok else None
        # The segmenter is deterministic: it counts as reusable here and is checked after it re-runs.
        for name in profile.order:
            deps = profile.components[name].depends_on
            if name in self.invalid or any(d not in self.reusable and d != "segmenter" for d in deps):
                continue
            if recorder.verify(name):
                self.reusable.add(name)

    def all_reusable(self, profile: Profile, keep_frames: bool) -> bool:
        """Nothing to recompute: the frames are not needed (unless the policy keeps them)."""
        return self.resuming and set(profile.order) <= self.reusable and not keep_frames

    def check_segmenter(self, record: ComponentRecord | None, recorder: RunRecorder) -> None:
        if not self.resuming or not self.reusable - {"segmenter"}:
            return
        current = record.artifacts[0].sha256 if record and record.artifacts else None
        if current is None or current != self.recorded_metadata:
            self.reusable.clear()
            recorder.warning(
                "the segmenter's output differs from the recorded one; every component recomputed"
            )
