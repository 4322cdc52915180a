"""deploy/ checked offline: kustomize overlays against the Kubernetes schemas, compose.yaml
against the compose schema, the Dockerfile's references, and the health check script.

Troubleshooting: no Docker engine or cluster runs here, so nothing is built or
applied. `kubectl kustomize` renders the overlays (the test skips, saying so,
only where kubectl is absent); `kubernetes-validate` and `check-jsonschema`
carry their schemas in their packages, so validation needs no network (the
conftest blocks it). A schema failure names the resource and the field.
"""

from __future__ import annotations

import fnmatch
import functools
import http.server
import json
import re
import shlex
import shutil
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

from zhiku.engine.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
OVERLAYS = sorted(p.name for p in (DEPLOY / "k8s" / "overlays").iterdir() if p.is_dir())
# Oldest Kubernetes the manifests promise to work on, and the newest schemas vendored.
K8S_VERSIONS = ("1.30.0", "1.37.0")


# -- Kubernetes ----------------------------------------------------------------------


@functools.cache
def offline() -> list[str]:
    """A command prefix that runs a tool with no network at all (a new network namespace),
    where the machine allows it; the conftest's block covers only this process."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-rn"]
    return []


def render(overlay: str) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: cannot render the kustomize overlays (apt: kubectl)")
    out = subprocess.run(
        [*offline(), kubectl, "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_templates(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """name -> pod template, for every workload."""
    out = {}
    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "Job"):
            out[f'{d["kind"]}/{d["metadata"]["name"]}'] = d["spec"]["template"]
    return out


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_both_overlays_exist() -> None:
    assert OVERLAYS == ["cluster", "single"]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_resource_is_valid_against_the_kubernetes_schemas(
    rendered: tuple[str, list[dict[str, Any]]], version: str
) -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError

    _, docs = rendered
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except ValidationError as exc:
            pytest.fail(f'{doc["kind"]}/{doc["metadata"]["name"]} on {version}: {exc.message} at {list(exc.path)}')


def test_the_overlay_has_every_piece(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("Deployment", "zhiku"), ("Service", "zhiku"), ("HorizontalPodAutoscaler", "zhiku"),
        ("PodDisruptionBudget", "zhiku"), ("StatefulSet", "qdrant"), ("Service", "qdrant"),
        ("Service", "qdrant-headless"), ("Secret", "zhiku-secrets"), ("ConfigMap", "zhiku-config"),
        ("NetworkPolicy", "qdrant-only-from-zhiku"), ("Job", "zhiku-ingest"),
    } <= kinds
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces


def test_zhiku_pods_probe_size_and_run_unprivileged(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    pod = by_kind(docs, "Deployment")["zhiku"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and "memory" in c["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_references_resolve(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """ConfigMaps, Secret keys, Services, HPA and PDBs all point at things that exist."""
    _, docs = rendered
    config_maps, secrets = by_kind(docs, "ConfigMap"), by_kind(docs, "Secret")
    templates = pod_templates(docs)
    for name, template in templates.items():
        spec = template["spec"]
        for c in spec["containers"]:
            for ref in c.get("envFrom", []):
                assert ref["configMapRef"]["name"] in config_maps, name
            for env in c.get("env", []):
                key_ref = env.get("valueFrom", {}).get("secretKeyRef")
                if key_ref:
                    assert key_ref["key"] in secrets[key_ref["name"]]["stringData"], (name, key_ref)
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                secret = secrets[volume["secret"]["secretName"]]
                assert {i["key"] for i in volume["secret"].get("items", [])} <= set(secret["stringData"])
    labels = [t["metadata"]["labels"] for t in templates.values()]
    for svc in by_kind(docs, "Service").values():
        assert any(matches(svc["spec"]["selector"], lab) for lab in labels), svc["metadata"]["name"]
    for pdb in by_kind(docs, "PodDisruptionBudget").values():
        assert any(matches(pdb["spec"]["selector"]["matchLabels"], lab) for lab in labels)
    target = by_kind(docs, "HorizontalPodAutoscaler")["zhiku"]["spec"]["scaleTargetRef"]
    assert target["name"] in by_kind(docs, target["kind"])
    api = by_kind(docs, "Service")["zhiku"]["spec"]["selector"]
    assert not matches(api, templates["Job/zhiku-ingest"]["metadata"]["labels"])  # ingest pods take no traffic


def test_zhiku_settings_in_the_configmap_are_real_settings(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """Every ZHIKU_* key names a settings field, and the values parse (a typo fails here, not in the pod)."""
    _, docs = rendered
    env = dict(by_kind(docs, "ConfigMap")["zhiku-config"]["data"])
    for key in env:
        group, _, field = key.removeprefix("ZHIKU_").lower().partition("__")
        model = Settings.model_fields[group].annotation
        assert field in model.model_fields, key  # type: ignore[union-attr]
    nested: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        group, _, field = key.removeprefix("ZHIKU_").lower().partition("__")
        nested.setdefault(group, {})[field] = value
    settings = Settings(**nested)  # type: ignore[arg-type]
    assert settings.store.backend == "server" and settings.store.url == "http://qdrant:6333"
    qdrant_nodes = by_kind(docs, "StatefulSet")["qdrant"]["spec"]["replicas"]
    assert (settings.store.replication_factor or 1) <= qdrant_nodes


def test_qdrant_runs_distributed_with_volumes_and_anti_affinity(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, docs = rendered
    sts = by_kind(docs, "StatefulSet")["qdrant"]
    assert sts["spec"]["replicas"] == (3 if overlay == "cluster" else 1)
    pod = sts["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["QDRANT__CLUSTER__ENABLED"] == "true"
    assert {p["containerPort"] for p in c["ports"]} == {6333, 6334, 6335}
    assert "--bootstrap" in c["args"][0] and "qdrant-headless" in c["args"][0]
    assert [v["metadata"]["name"] for v in sts["spec"]["volumeClaimTemplates"]] == ["storage", "snapshots"]
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert by_kind(docs, "Service")["qdrant-headless"]["spec"]["clusterIP"] == "None"
    if overlay == "cluster":
        config = by_kind(docs, "ConfigMap")["zhiku-config"]["data"]
        assert int(config["ZHIKU_STORE__REPLICATION_FACTOR"]) >= 2


def test_only_zhiku_reaches_qdrant(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, docs = rendered
    policy = by_kind(docs, "NetworkPolicy")["qdrant-only-from-zhiku"]["spec"]
    assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "qdrant"}
    assert policy["policyTypes"] == ["Ingress"]
    allowed = [rule["from"][0]["podSelector"]["matchLabels"] for rule in policy["ingress"]]
    assert all(len(rule["from"]) == 1 and "namespaceSelector" not in rule["from"][0] for rule in policy["ingress"])
    templates = pod_templates(docs)
    reaching = {name for name, t in templates.items() if any(matches(a, t["metadata"]["labels"]) for a in allowed)}
    assert reaching == {"Deployment/zhiku", "Job/zhiku-ingest", "StatefulSet/qdrant"}
    api_ports = {p["port"] for p in policy["ingress"][0]["ports"]}
    assert api_ports == {6333, 6334}  # zhiku never gets the peer port


def test_the_secret_ships_without_secrets(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """The committed Secret holds no key: zhiku refuses to serve until keys.json is filled."""
    _, docs = rendered
    data = by_kind(docs, "Secret")["zhiku-secrets"]["stringData"]
    assert data["qdrant-api-key"] == "" and json.loads(data["keys.json"])["keys"] == []


# -- compose -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def test_compose_is_valid_against_the_vendored_compose_schema(compose: dict[str, Any]) -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    jsonschema.validate(compose, schema)


def test_compose_passes_the_check_jsonschema_cli_offline() -> None:
    out = subprocess.run(
        [*offline(), sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(DEPLOY / "compose.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_wires_zhiku_to_qdrant_with_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"qdrant", "zhiku", "llm"} <= set(services)
    assert services["llm"]["profiles"] == ["llm"] and "profiles" not in services["zhiku"]
    assert services["zhiku"]["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert "healthcheck" in services["qdrant"] and "healthcheck" in services["llm"]
    env = services["zhiku"]["environment"]
    assert env["ZHIKU_STORE__BACKEND"] == "server" and env["ZHIKU_STORE__URL"] == "http://qdrant:6333"
    assert any(v.endswith(":/qdrant/storage") for v in services["qdrant"]["volumes"])
    assert services["zhiku"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / services["zhiku"]["build"]["context"] / "deploy" / "Dockerfile").is_file()
    for name in env:  # configured only by env, and only with names zhiku knows
        group, _, field = name.removeprefix("ZHIKU_").lower().partition("__")
        assert field in Settings.model_fields[group].annotation.model_fields, name  # type: ignore[union-attr]


# -- Dockerfile ---------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        pending += " " + stripped.removesuffix("\\").strip() if pending else stripped.removesuffix("\\").strip()
        if stripped.endswith("\\"):
            continue
        word, _, rest = pending.partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions(DEPLOY / "Dockerfile")


def stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(step)
    return out


def ignored(rel: str) -> bool:
    patterns = [
        line.strip() for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = Path(rel).parts
    return any(
        fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(parts[0], pat) or fnmatch.fnmatch(rel, pat.lstrip("*/"))
        for pat in patterns
    )


def test_every_copied_path_exists_and_is_sent(dockerfile: list[tuple[str, str]]) -> None:
    copies = [args for word, args in dockerfile if word == "COPY" and "--from=" not in args]
    assert copies
    for args in copies:
        words = [w for w in shlex.split(args) if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
            assert not ignored(source.rstrip("/")), f"COPY {source}: excluded by Dockerfile.dockerignore"


def test_the_make_targets_and_variables_it_uses_exist(dockerfile: list[tuple[str, str]]) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w.-]*):", makefile, re.M))
    variables = set(re.findall(r"^([A-Z_]+)\s*[?:]?=", makefile, re.M))
    commands = [
        [w for w in shlex.split(command) if not w.startswith("--mount=")]
        for word, args in dockerfile if word == "RUN" for command in args.split("&&")
    ]
    makes = [words[1:] for words in commands if words and words[0] == "make"]
    assert makes, "the image must build its models with the Makefile"
    for words in makes:
        named = [w for w in words if "=" not in w and not w.startswith("-")]
        assert named and set(named) <= targets, named
        assert {w.split("=")[0] for w in words if "=" in w} <= variables
    assert any("models" in words for words in makes)


def test_multi_stage_non_root_with_a_readiness_healthcheck(dockerfile: list[tuple[str, str]]) -> None:
    parts = stages(dockerfile)
    assert len(parts) >= 2, "multi-stage: compilers stay in the build stage"
    final = parts[-1]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    (check,) = [args for word, args in final if word == "HEALTHCHECK"]
    assert "deploy/healthcheck.py" in check
    env = " ".join(args for word, args in final if word == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "TRANSFORMERS_OFFLINE=1" in env
    copied_from_build = [args for word, args in final if word == "COPY" and "--from=build" in args]
    assert copied_from_build, "the runtime stage takes the built venv and models from the build stage"
    assert not any("apt-get install" in args and "build-essential" in args for word, args in final if word == "RUN")
    (cmd,) = [args for word, args in final if word == "CMD"]
    assert json.loads(cmd)[:2] == ["zhiku", "serve"]


def test_the_runtime_stage_has_the_system_libraries_the_pinned_wheels_load(dockerfile: list[tuple[str, str]]) -> None:
    """opencv-python (RapidOCR) loads libGL and GLib, which slim images lack: OCR would fail in the container."""
    lock = (DEPLOY.parent / "requirements.lock").read_text()
    installed = " ".join(args for word, args in stages(dockerfile)[-1] if word == "RUN" and "apt-get install" in args)
    assert "libgomp1" in installed
    if "opencv-python==" in lock:
        assert "libgl1" in installed and "libglib2.0-0" in installed


def test_healthcheck_script_is_copied_into_the_image(dockerfile: list[tuple[str, str]]) -> None:
    copied = " ".join(args for word, args in dockerfile if word == "COPY")
    assert "deploy/healthcheck.py" in copied


# -- the health check script ----------------------------------------------------------------


@pytest.fixture
def readyz_server() -> Iterator[tuple[str, list[int]]]:
    """A loopback server whose /readyz answers the status at the head of a list."""
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(status[0] if self.path == "/readyz" else 404)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/readyz", status
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck(argv: list[str]) -> int:
    sys.path.insert(0, str(DEPLOY))
    try:
        import healthcheck
    finally:
        sys.path.remove(str(DEPLOY))
    return healthcheck.main(argv)


def test_healthcheck_exit_codes(readyz_server: tuple[str, list[int]]) -> None:
    url, status = readyz_server
    assert _healthcheck(["--url", url]) == 0
    status[0] = 503  # still loading the models
    assert _healthcheck(["--url", url]) == 1
    assert _healthcheck(["--url", "http://127.0.0.1:9/readyz", "--timeout", "1"]) == 1  # nothing listening


def test_healthcheck_reads_the_port_like_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(DEPLOY))
    try:
        import healthcheck
    finally:
        sys.path.remove(str(DEPLOY))
    monkeypatch.setenv("ZHIKU_SERVER__PORT", "9123")
    assert healthcheck.default_url() == "http://127.0.0.1:9123/readyz"


# -- the image's start, with the network off ---------------------------------------------------


def final_stage_env(steps: list[tuple[str, str]]) -> dict[str, str]:
    """KEY=VALUE pairs of the runtime stage's ENV instructions."""
    env: dict[str, str] = {}
    for word, args in stages(steps)[-1]:
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.integration
def test_the_image_environment_gets_ready_with_the_network_off(
    dockerfile: list[tuple[str, str]], tmp_path: Path
) -> None:
    """The runtime stage's ENV and CMD in a network namespace with only loopback: the real
    default models load from local files, /readyz turns 200, the HEALTHCHECK script says so.

    Stands in for `docker run --network none` where no Docker engine runs.
    """
    from zhiku.api.security import KeyStore

    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("unshare or ip (iproute2) missing: cannot run in a network namespace")
    if subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode != 0:
        pytest.skip("user network namespaces are not allowed on this machine")
    env = final_stage_env(dockerfile)
    assert env["ZHIKU_SERVER__HOST"] == "0.0.0.0"
    bin_dir = Path(sys.executable).parent
    data = tmp_path / "data"
    data.mkdir()
    KeyStore(data).create(["*"], "admin", "healthcheck")  # a public bind needs a key
    port = free_port()
    env.update(PATH=f"{bin_dir}:/usr/sbin:/usr/bin:/bin", HOME=str(tmp_path), ZHIKU_DATA_DIR=str(data),
               ZHIKU_SERVER__PORT=str(port))
    (cmd,) = [args for word, args in stages(dockerfile)[-1] if word == "CMD"]
    serve = " ".join(shlex.quote(w) for w in json.loads(cmd))
    script = (
        f"ip link set lo up && {serve} & pid=$!; "
        f"for i in $(seq 1 600); do "
        f"  if python {shlex.quote(str(DEPLOY / 'healthcheck.py'))} 2>/dev/null; then kill $pid; wait $pid; exit 0; fi; "
        f"  kill -0 $pid 2>/dev/null || exit 3; sleep 0.5; "
        f"done; kill $pid; exit 1"
    )
    out = subprocess.run(["unshare", "-rn", "sh", "-c", script], env=env, capture_output=True, text=True,
                         timeout=400, cwd=tmp_path)
    assert out.returncode == 0, f"rc={out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"

