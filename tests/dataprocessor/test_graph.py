from __future__ import annotations

import copy
from typing import Any

import pytest

from trendflow.contracts.errors import ErrorCode, TrendFlowError
from trendflow.dataprocessor.component import registered_components
from trendflow.dataprocessor.graph import DEFAULT_GRAPH, ComponentGraph

BASE: dict[str, Any] = {
    "components": {
        "segmenter": {"processor": "segmenter", "unit": "video", "description": "s"},
        "a": {
            "processor": "visual",
            "unit": "frame",
            "description": "a",
            "depends_on": ["segmenter"],
            "sampling": {"fps": 1.0},
        },
        "b": {
            "processor": "visual",
            "unit": "frame",
            "description": "b",
            "depends_on": ["a"],
            "sampling": {"count": 4},
        },
    },
    "profiles": {
        "p": {"description": "p", "components": {"segmenter": {}, "a": {}, "b": {"required": False}}},
    },
}


def _config_error(raw: dict[str, Any]) -> str:
    with pytest.raises(TrendFlowError) as err:
        ComponentGraph.from_dict(raw)
    assert err.value.code is ErrorCode.CONFIG_ERROR
    return err.value.message


def test_topological_order_and_required_flags() -> None:
    profile = ComponentGraph.from_dict(BASE).profile("p")
    assert profile.order == ["segmenter", "a", "b"]
    assert profile.components["b"].required is False


def test_cycle_is_rejected() -> None:
    raw = copy.deepcopy(BASE)
    raw["components"]["a"]["depends_on"] = ["b"]
    assert "cycle" in _config_error(raw)


def test_unknown_component_is_rejected() -> None:
    raw = copy.deepcopy(BASE)
    raw["profiles"]["p"]["components"]["ghost"] = {}
    assert "unknown component ghost" in _config_error(raw)
    raw = copy.deepcopy(BASE)
    raw["components"]["b"]["depends_on"] = ["ghost"]
    assert "unknown component ghost" in _config_error(raw)


def test_dependency_on_disabled_component_is_rejected() -> None:
    raw = copy.deepcopy(BASE)
    raw["profiles"]["p"]["components"]["a"] = {"enabled": False}
    assert "does not enable" in _config_error(raw)


def test_typo_in_graph_is_rejected() -> None:
    raw = copy.deepcopy(BASE)
    raw["components"]["a"]["depnds_on"] = []
    _config_error(raw)


def test_profile_overrides_and_inheritance() -> None:
    raw = copy.deepcopy(BASE)
    raw["profiles"]["q"] = {
        "description": "q",
        "extends": "p",
        "components": {"b": {"required": True, "sampling": {"count": 8}}},
    }
    graph = ComponentGraph.from_dict(raw)
    q = graph.profile("q")
    assert q.components["b"].required and q.components["b"].sampling.count == 8
    assert graph.profile("p").components["b"].sampling.count == 4
    assert q.canonical() != graph.profile("p").canonical()


def test_unknown_profile_is_invalid_request() -> None:
    with pytest.raises(TrendFlowError) as err:
        ComponentGraph.from_dict(BASE).profile("nope")
    assert err.value.code is ErrorCode.INVALID_REQUEST


def test_project_graph_loads_and_every_component_is_implemented() -> None:
    graph = ComponentGraph.load(DEFAULT_GRAPH)
    implemented = set(registered_components()) | {"segmenter"}
    for name, profile in graph.profiles.items():
        missing = set(profile.components) - implemented
        assert not missing, f"profile {name} uses unimplemented components {missing}"
    assert graph.profile("baseline").components.keys() >= graph.profile("signals").components.keys()


def test_draft_profiles_list_only_components_that_exist() -> None:
    graph = ComponentGraph.load(DEFAULT_GRAPH)
    implemented = set(registered_components()) | {"segmenter"}
    assert set(graph.spec.components) <= implemented  # the graph defines no component without code
    baseline = graph.profile("baseline").components.keys()
    for name in ("v1", "v2"):
        assert set(graph.spec.profiles[name].components) <= implemented
        assert graph.profile(name).components.keys() == baseline


def test_a_profile_cannot_disable_a_dependency_of_an_enabled_component() -> None:
    import yaml

    raw = yaml.safe_load(DEFAULT_GRAPH.read_text())
    raw["profiles"]["v1"]["components"] = {"transcript": {"enabled": False, "required": False}}
    assert "depends on transcript" in _config_error(raw)
