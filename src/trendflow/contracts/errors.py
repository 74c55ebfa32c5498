"""Error taxonomy (SPEC section 9): every failure has a code and a retry class.

Transient errors are retried by the queue with backoff; permanent ones fail fast.
`TrendFlowError` is the one exception type the product raises on purpose; anything
else reaching the orchestrator is wrapped as `internal`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorClass(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


class ErrorCode(StrEnum):
    VIDEO_TOO_SHORT = "video_too_short"
    VIDEO_TOO_LONG = "video_too_long"
    INVALID_MEDIA = "invalid_media"
    DOWNLOAD_FAILED = "download_failed"
    SOURCE_NOT_FOUND = "source_not_found"
    SOURCE_UNAVAILABLE = "source_unavailable"
    DEPENDENCY_MISSING = "dependency_missing"
    COMPONENT_FAILED = "component_failed"
    TRITON_UNAVAILABLE = "triton_unavailable"
    MODEL_NOT_FOUND = "model_not_found"
    MODEL_LOAD_FAILED = "model_load_failed"
    INSUFFICIENT_GPU_MEMORY = "insufficient_gpu_memory"
    OUT_OF_MEMORY = "out_of_memory"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    TIMEOUT = "timeout"
    INVALID_REQUEST = "invalid_request"
    CONFIG_ERROR = "config_error"
    INTERNAL = "internal"


# `out_of_memory` is transient once: the queue retries it a single time (SPEC 9).
ERROR_CLASSES: dict[ErrorCode, ErrorClass] = {
    ErrorCode.VIDEO_TOO_SHORT: ErrorClass.PERMANENT,
    ErrorCode.VIDEO_TOO_LONG: ErrorClass.PERMANENT,
    ErrorCode.INVALID_MEDIA: ErrorClass.PERMANENT,
    ErrorCode.DOWNLOAD_FAILED: ErrorClass.TRANSIENT,
    ErrorCode.SOURCE_NOT_FOUND: ErrorClass.PERMANENT,
    ErrorCode.SOURCE_UNAVAILABLE: ErrorClass.PERMANENT,
    ErrorCode.DEPENDENCY_MISSING: ErrorClass.PERMANENT,
    ErrorCode.COMPONENT_FAILED: ErrorClass.PERMANENT,
    ErrorCode.TRITON_UNAVAILABLE: ErrorClass.TRANSIENT,
    ErrorCode.MODEL_NOT_FOUND: ErrorClass.PERMANENT,
    ErrorCode.MODEL_LOAD_FAILED: ErrorClass.PERMANENT,
    ErrorCode.INSUFFICIENT_GPU_MEMORY: ErrorClass.PERMANENT,
    ErrorCode.OUT_OF_MEMORY: ErrorClass.TRANSIENT,
    ErrorCode.STORAGE_UNAVAILABLE: ErrorClass.TRANSIENT,
    ErrorCode.TIMEOUT: ErrorClass.TRANSIENT,
    ErrorCode.INVALID_REQUEST: ErrorClass.PERMANENT,
    ErrorCode.CONFIG_ERROR: ErrorClass.PERMANENT,
    ErrorCode.INTERNAL: ErrorClass.PERMANENT,
}

# Retry budgets per transient code; the queue never retries past these.
MAX_RETRIES: dict[ErrorCode, int] = {
    ErrorCode.OUT_OF_MEMORY: 1,
    ErrorCode.DOWNLOAD_FAILED: 3,
    ErrorCode.TRITON_UNAVAILABLE: 5,
    ErrorCode.STORAGE_UNAVAILABLE: 5,
    ErrorCode.TIMEOUT: 2,
}

# What a user should do next, shown with every error.
HINTS: dict[ErrorCode, str] = {
    ErrorCode.VIDEO_TOO_SHORT: "The product accepts videos of 5 s to 20 min; use a longer clip.",
    ErrorCode.VIDEO_TOO_LONG: "The product accepts videos of 5 s to 20 min; trim the video.",
    ErrorCode.INVALID_MEDIA: "The file is not a decodable video; check it with `ffprobe FILE`.",
    ErrorCode.DOWNLOAD_FAILED: "Check the URL and the network; the job is retried automatically.",
    ErrorCode.SOURCE_NOT_FOUND: "Check the path or URL of the video.",
    ErrorCode.SOURCE_UNAVAILABLE: "The platform refuses this video (see `reason`: private, removed, "
    "age_restricted, members_only, paid, geo_blocked, live, upcoming, drm); cookies or a proxy may help "
    "for age_restricted and geo_blocked.",
    ErrorCode.DEPENDENCY_MISSING: "A component's dependency did not produce a valid result; see the "
    "manifest's components for the first failure.",
    ErrorCode.COMPONENT_FAILED: "See the component's `error` in manifest.json; re-run with --force "
    "after fixing the cause.",
    ErrorCode.TRITON_UNAVAILABLE: "Start the model server (`trendflow serve-models`) or check "
    "TRENDFLOW_TRITON_URL.",
    ErrorCode.MODEL_NOT_FOUND: "Build the model repository (`trendflow models build`) and check the "
    "profile's model mapping.",
    ErrorCode.MODEL_LOAD_FAILED: "Rebuild the model files (`trendflow models build`); see the Triton log.",
    ErrorCode.INSUFFICIENT_GPU_MEMORY: "Lower the batch size or the instance count of the model.",
    ErrorCode.OUT_OF_MEMORY: "Lower the frame budgets or the batch sizes of the profile.",
    ErrorCode.STORAGE_UNAVAILABLE: "Check the result store (path permissions, S3 endpoint, credentials).",
    ErrorCode.TIMEOUT: "The step ran past its time limit; it is retried automatically.",
    ErrorCode.INVALID_REQUEST: "Fix the request (ids, paths, options) and submit it again.",
    ErrorCode.CONFIG_ERROR: "Fix component_graph.yaml or the parameters named in the message.",
    ErrorCode.INTERNAL: "This is a bug; report it with the run's manifest.json.",
}


def error_class(code: ErrorCode | str) -> ErrorClass:
    return ERROR_CLASSES[ErrorCode(code)]


def is_transient(code: ErrorCode | str) -> bool:
    return error_class(code) is ErrorClass.TRANSIENT


class TrendFlowError(Exception):
    """A typed product error: `code` from the taxonomy, a message, and what to do next."""

    def __init__(self, code: ErrorCode | str, message: str, **details: Any) -> None:
        self.code = ErrorCode(code)
        self.message = message
        self.details = details
        super().__init__(f"[{self.code}] {message}")

    @property
    def reason(self) -> str | None:
        """A finer cause within the code (e.g. `private` for `source_unavailable`), when known."""
        reason = self.details.get("reason")
        return str(reason) if reason else None

    @property
    def transient(self) -> bool:
        return is_transient(self.code)

    @property
    def hint(self) -> str:
        return HINTS[self.code]

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_code": str(self.code),
            "error_class": str(error_class(self.code)),
            "message": self.message,
            "hint": self.hint,
            **({"details": self.details} if self.details else {}),
        }
