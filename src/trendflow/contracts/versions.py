"""Schema and policy versions. Bump a version whenever its contract changes shape or meaning."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

METADATA_SCHEMA_VERSION = "1.0.0"
NPZ_META_SCHEMA_VERSION = "1.0.0"
MANIFEST_SCHEMA_VERSION = "1.0.0"
STATE_SCHEMA_VERSION = "1.0.0"
# Changes whenever the segmenter would pick different frames for the same profile.
SAMPLING_POLICY_VERSION = "sampling-1.0.0"


def dataprocessor_version() -> str:
    """The installed package version; SPEC allows "unknown" when the package is not installed."""
    try:
        return version("trendflow")
    except PackageNotFoundError:
        return "unknown"
