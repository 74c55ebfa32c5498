"""deploy/k8s: schema-valid manifests (kubernetes-validate, offline schemas) that agree with each other
and with the worker: probes on /health/live and /health, KEDA on the worker's Redis queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import ROOT
from trendflow.worker.config import ENV_FIELDS, WorkerSettings

K8S_VERSION = "1.30.0"
STANDARD_GROUPS = ("v1", "apps/v1", "batch/v1", "autoscaling/v2", "networking.k8s.io/v1")


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_every_standard_object_is_valid_against_the_kubernetes_schema(k8s_objects) -> None:
    standard = {key: obj for key, obj in k8s_objects.items() if obj["apiVersion"] in STANDARD_GROUPS}
    assert {kind for kind, _ in standard} >= {"Deployment", "Service", "ConfigMap", "StatefulSet"}
    for obj in standard.values():
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)  # raises with the path of the error
    assert {key for key in k8s_objects if key not in standard} == {("ScaledObject", "trendflow-worker")}


def test_the_validator_rejects_a_broken_manifest(k8s_objects) -> None:
    broken = yaml.safe_load(yaml.safe_dump(k8s_objects[("Deployment", "trendflow-worker")]))
    containers(broken)[0]["livenessProbe"]["httpGet"]["port"] = {"name": "health"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(k8s_objects[("Deployment", "trendflow-worker")]))
    containers(broken)[0]["readinesProbe"] = containers(broken)[0].pop("readinessProbe")  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_worker_probes_config_and_security(k8s_objects) -> None:
    worker = k8s_objects[("Deployment", "trendflow-worker")]
    [container] = containers(worker)
    config = k8s_objects[("ConfigMap", "trendflow-config")]["data"]
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["health"]
    assert int(config["TRENDFLOW_HEALTH_PORT"]) == port and config["TRENDFLOW_HEALTH_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "health"}
    # /health answers within its checks' deadline (10 s): the probe waits longer than that.
    assert container["readinessProbe"]["timeoutSeconds"] > 10
    assert container["command"][:2] == ["trendflow", "worker"]
    refs = {next(iter(ref.values()))["name"] for ref in container["envFrom"]}
    assert refs == {"trendflow-config", "trendflow-s3"}  # settings from the ConfigMap, keys from the Secret
    # Every TRENDFLOW_* key is a worker setting (or an S3/observability variable), and valid.
    known = set(ENV_FIELDS) | {"TRENDFLOW_S3_ENDPOINT_URL"}
    assert {k for k in config if k.startswith("TRENDFLOW_")} <= known
    WorkerSettings.from_env({k: v for k, v in config.items() if k in ENV_FIELDS})
    assert not any(word in key.lower() for key in config for word in ("secret", "password", "key"))
    # The metrics folder is its own volume, outside the scratch the jobs empty.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert (
        mounts["metrics"] == config["PROMETHEUS_MULTIPROC_DIR"]
        and mounts["scratch"] == config["TRENDFLOW_SCRATCH"]
    )
    pod = worker["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "replicas" not in worker["spec"]  # KEDA owns the replica count


def test_keda_scales_the_worker_on_its_redis_queue(k8s_objects) -> None:
    scaled = k8s_objects[("ScaledObject", "trendflow-worker")]
    config = k8s_objects[("ConfigMap", "trendflow-config")]["data"]
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert (target.get("kind", "Deployment"), target["name"]) in k8s_objects
    assert target["name"] == "trendflow-worker"
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    [trigger] = spec["triggers"]
    assert trigger["type"] == "redis"
    meta = trigger["metadata"]
    # KEDA reads LLEN of the list Celery pushes the jobs to: the queue's name.
    assert meta["listName"] == config["TRENDFLOW_QUEUE"]
    assert int(meta["listLength"]) >= 1 and all(isinstance(v, str) for v in meta.values())
    host, port = meta["address"].split(":")
    service = k8s_objects[("Service", host.split(".")[0])]
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}
    assert config["TRENDFLOW_REDIS_URL"].endswith(f"{host.split('.')[0]}:{port}/{meta['databaseIndex']}")
    allowed = {"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval", "cooldownPeriod",
               "idleReplicaCount", "fallback", "advanced", "triggers"}  # fmt: skip
    assert set(spec) <= allowed


def test_services_select_their_pods_and_triton_serves_the_workers_url(k8s_objects) -> None:
    for (kind, name), obj in k8s_objects.items():
        if kind != "Service":
            continue
        owners = [o for (k, _), o in k8s_objects.items() if k in ("Deployment", "StatefulSet")]
        labels = [o["spec"]["template"]["metadata"]["labels"] for o in owners]
        assert any(obj["spec"]["selector"].items() <= lbl.items() for lbl in labels), name
    triton = k8s_objects[("Deployment", "trendflow-triton")]
    [container] = containers(triton)
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert "--host=0.0.0.0" in container["command"]
    config = k8s_objects[("ConfigMap", "trendflow-config")]["data"]
    host, port = config["TRENDFLOW_TRITON_URL"].split(":")
    service = k8s_objects[("Service", host)]
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}


def test_kustomization_lists_every_manifest() -> None:
    folder = ROOT / "deploy" / "k8s"
    listed = set(yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert not any(Path(folder, name).is_dir() for name in listed)


def _merge(base: Any, patch: Any) -> Any:
    """A strategic merge good enough for this patch: dicts deep-merged, lists of named items merged by
    name, other lists appended (volumes) or replaced (command)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {k: _merge(base[k], v) if k in base else v for k, v in {**base, **patch}.items()}
    if isinstance(base, list) and isinstance(patch, list) and patch and isinstance(patch[0], dict):
        if "name" in patch[0] and all("name" in b for b in base):
            named = {b["name"]: b for b in base}
            for item in patch:
                named[item["name"]] = _merge(named.get(item["name"], {}), item)
            return list(named.values())
        return base + [p for p in patch if p not in base]
    return patch


def test_the_gpu_overlay_yields_a_valid_gpu_triton(k8s_objects) -> None:
    folder = ROOT / "deploy" / "k8s" / "gpu"
    overlay = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert overlay["resources"] == [".."]
    [patch_ref] = overlay["patches"]
    patch = yaml.safe_load((folder / patch_ref["path"]).read_text())
    triton = _merge(k8s_objects[("Deployment", "trendflow-triton")], patch)
    kubernetes_validate.validate(triton, K8S_VERSION, strict=True)
    [container] = containers(triton)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["command"][0] == "tritonserver" and container["image"] == "trendflow-triton-gpu"
    mounted = {m["name"] for m in container["volumeMounts"]}
    assert mounted <= {v["name"] for v in triton["spec"]["template"]["spec"]["volumes"]}
    assert "ORT_TENSORRT_CACHE_PATH=/trt-cache" in (ROOT / "Dockerfile.triton-gpu").read_text()
