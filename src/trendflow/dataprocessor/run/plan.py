"""What a run will compute: its model mapping, config hash and the record of its source.

Both admission (a new run) and resume (a crashed one) need these, so they live apart from both.
"""

from __future__ import annotations

import hashlib

from trendflow.contracts.identity import canonical_json, compute_config_hash
from trendflow.contracts.manifest import ResolvedModel
from trendflow.contracts.versions import SAMPLING_POLICY_VERSION
from trendflow.dataprocessor.component import component_class
from trendflow.dataprocessor.graph import Profile
from trendflow.dataprocessor.run.request import ProcessRequest
from trendflow.dataprocessor.sources import ResolvedSource


def resolve_models(request: ProcessRequest, profile: Profile) -> dict[str, ResolvedModel]:
    """The run's model mapping with weights digests (SPEC 12). Profiles without models need no
    model repository; the others resolve against the built repository unless the caller
    supplies its own resolver. Components find the mapping in `services.resolved_models`."""
    if not profile.model_mapping():
        return {}
    if request.model_resolver is None:
        from trendflow.serving.model_resolution import resolve_profile_models

        request.model_resolver = resolve_profile_models
    resolved = request.model_resolver(profile)
    if not request.services.resolved_models:
        request.services.resolved_models = resolved
    return resolved


def check_params(profile: Profile) -> None:
    """Every component's params typed against its declaration: a bad one rejects the run up front
    (config_error) instead of failing that component mid-run."""
    for name, spec in profile.components.items():
        if name != "segmenter":
            component_class(name).parse_params(spec.params)


def config_hash_for(profile: Profile) -> str:
    return compute_config_hash(profile.canonical(), SAMPLING_POLICY_VERSION, profile.model_mapping())


def source_record(source: ResolvedSource) -> dict[str, str | bool]:
    """What the state keeps about the source: enough to check a resume got the same one, no raw text."""
    info_json = canonical_json(source.info.model_dump(mode="json"))
    return {
        "kind": source.kind,
        "uri": source.uri,
        "downloaded": source.downloaded,
        "info_sha256": hashlib.sha256(info_json.encode()).hexdigest(),
    }
