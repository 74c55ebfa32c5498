"""Contracts: pydantic models, versions and error codes shared by every part of TrendFlow."""

from trendflow.contracts.errors import ErrorClass, ErrorCode, TrendFlowError, is_transient
from trendflow.contracts.identity import RunIdentity, compute_config_hash
from trendflow.contracts.manifest import ArtifactRef, ComponentRecord, Manifest, ResolvedModel
from trendflow.contracts.metadata import FramesMetadata, SourceFacts
from trendflow.contracts.npz_meta import MASK_SUFFIX, ModelUsed, NpzMeta, Producer, model_signature

__all__ = [
    "MASK_SUFFIX",
    "ArtifactRef",
    "ComponentRecord",
    "ErrorClass",
    "ErrorCode",
    "FramesMetadata",
    "Manifest",
    "ModelUsed",
    "NpzMeta",
    "Producer",
    "ResolvedModel",
    "RunIdentity",
    "SourceFacts",
    "TrendFlowError",
    "compute_config_hash",
    "is_transient",
    "model_signature",
]
