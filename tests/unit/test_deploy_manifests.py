"""The deployment files are checked, not just written: the Kubernetes manifests against the
Kubernetes schemas (kubernetes-validate, offline), every liveclass flag and value they pass
through liveclass's own parser, their HAProxy config through ``haproxy -c``, and the Dockerfile
against the runtime lock. There is no Kubernetes cluster or Docker engine here: what needs one
(pulling images, scheduling, a real rollout) is not checked (deploy/README.md says so)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from liveclass.cli import build_parser
from liveclass.config import ServeConfig, SfuConfig

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
#: The Kubernetes version the manifests are validated against (a recent, supported release).
KUBERNETES_VERSION = "1.34.0"
#: What the pods' $(VAR) references stand for in these checks (never contacted).
POD_FIELDS = {"POD_NAME": "liveclass-signaling-7d9f-abcde", "HOST_IP": "10.0.3.7"}
POD_FIELDS["NODE_NAME"] = "media-node-1"


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path, doc


def resource(kind: str, name: str) -> dict[str, Any]:
    [found] = [d for _, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def container(workload: dict[str, Any]) -> dict[str, Any]:
    [first] = workload["spec"]["template"]["spec"]["containers"]
    return first


def secret_env() -> dict[str, str]:
    """Every Secret's keys, the placeholders replaced by values liveclass accepts."""
    env: dict[str, str] = {}
    for _, doc in manifests():
        if doc["kind"] == "Secret":
            env.update(doc["stringData"])
    assert env["LIVECLASS_SECRETS"].startswith("k1:")
    env["LIVECLASS_SECRETS"] = "k1:" + "x" * 64
    env["LIVECLASS_TURN_SECRET"] = "t" * 32
    return env


def expanded(args: list[str], env: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion of container args."""
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in args]


@pytest.mark.parametrize(
    "path, doc",
    list(manifests()),
    ids=[f"{p.name}:{d['kind']}/{d['metadata']['name']}" for p, d in manifests()],
)
def test_every_manifest_validates_against_the_kubernetes_schema(
    path: Path, doc: dict[str, Any]
) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_manifest_with_a_mistake_is_refused() -> None:
    deployment = resource("Deployment", "liveclass-signaling")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pahth"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    files = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)


def test_the_signaling_pods_args_parse_as_liveclass_serve_with_the_secrets_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deployment = resource("Deployment", "liveclass-signaling")
    pod = container(deployment)
    env = {**secret_env(), **POD_FIELDS}
    for name, value in env.items():
        if name.startswith("LIVECLASS_"):
            monkeypatch.setenv(name, value)
    args = build_parser().parse_args(["serve", *expanded(pod["args"], env)])
    config = ServeConfig.from_args(args)
    assert config.cluster is not None, "the pods must run on the Redis Cluster"
    assert config.cluster.node_id == POD_FIELDS["POD_NAME"]
    assert (config.node.host, config.node.port) == ("0.0.0.0", 8080)
    assert [p["containerPort"] for p in pod["ports"]] == [8080]
    assert config.log_format == "json"
    # The secrets come from the Secrets, not from the manifest's args.
    secret_flags = ("--secrets", "--redis-password", "--turn-secret")
    assert not any(a.startswith(secret_flags) for a in pod["args"])


def test_the_sfu_pods_args_parse_as_liveclass_sfu_announcing_the_nodes_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemonset = resource("DaemonSet", "liveclass-sfu")
    pod = container(daemonset)
    assert pod["command"] == ["liveclass", "sfu"]
    assert daemonset["spec"]["template"]["spec"]["hostNetwork"] is True
    env = {**secret_env(), **POD_FIELDS}
    for name, value in env.items():
        if name.startswith("LIVECLASS_"):
            monkeypatch.setenv(name, value)
    config = SfuConfig.from_args(build_parser().parse_args(["sfu", *expanded(pod["args"], env)]))
    assert config.worker_id == POD_FIELDS["NODE_NAME"]
    assert config.rpc_url == f"ws://{POD_FIELDS['HOST_IP']}:8090"
    assert config.announced_ip == POD_FIELDS["HOST_IP"]
    assert config.listen_ips == (POD_FIELDS["HOST_IP"],)
    assert config.log_format == "json"
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in pod["env"]}
    assert fields == {"HOST_IP": "status.hostIP", "NODE_NAME": "spec.nodeName"}


def test_health_probes_drain_and_disruption_budget_match_what_the_node_does() -> None:
    deployment = resource("Deployment", "liveclass-signaling")
    spec = deployment["spec"]["template"]["spec"]
    pod = container(deployment)
    assert pod["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # SIGTERM drains within about 5 s (docs/operations.md); the grace period covers the
    # preStop pause and the drain.
    pause = pod["lifecycle"]["preStop"]["exec"]["command"]
    assert pause[0] == "sleep"
    assert spec["terminationGracePeriodSeconds"] >= int(pause[1]) + 10
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    budget = resource("PodDisruptionBudget", "liveclass-signaling")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    sfu = container(resource("DaemonSet", "liveclass-sfu"))
    assert sfu["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert sfu["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_service_selects_pods_and_every_reference_names_a_resource() -> None:
    docs = [d for _, d in manifests()]
    pod_labels = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in docs
        if d["kind"] in ("Deployment", "DaemonSet")
    ]
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        assert any(selector.items() <= labels.items() for labels in pod_labels), service
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    # Made by the operator from files in this repository (deploy/kubernetes/README.md).
    made_by_hand = {"liveclass-coturn", "liveclass-turn-tls"}
    text = "\n".join(yaml.safe_dump(d) for d in docs)
    for name in re.findall(r"secretName: (\S+)|name: (\S+)\n\s+key:", text):
        for n in filter(None, name):
            assert n in secrets | made_by_hand, n
    for doc in docs:
        for ref in _walk(doc, "secretRef"):
            assert ref["name"] in secrets
        for ref in _walk(doc, "configMap"):
            assert ref["name"] in config_maps | made_by_hand
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "liveclass"
    }


def _walk(node: Any, key: str) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, dict):
                yield v
            yield from _walk(v, key)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item, key)


def kubernetes_haproxy_config() -> str:
    [config_map] = [
        d for _, d in manifests() if d["kind"] == "ConfigMap" and "haproxy.cfg" in d["data"]
    ]
    return str(config_map["data"]["haproxy.cfg"])


def test_the_kubernetes_haproxy_config_is_the_shipped_one_but_for_bind_and_servers() -> None:
    shipped = (ROOT / "deploy" / "haproxy" / "haproxy.cfg").read_text()
    mounted = kubernetes_haproxy_config()
    servers = re.compile(r"# rendered: servers begin.*?# rendered: servers end", re.S)
    bind = re.compile(r"bind \S+(\s+# rendered: bind)")

    def common(text: str) -> str:
        text = servers.sub("SERVERS", bind.sub(r"bind ADDRESS\1", text))
        return text.split("\n# Kubernetes DNS")[0].rstrip()

    assert common(mounted) == common(shipped)
    assert "server-template node" in mounted and "resolvers cluster" in mounted
    assert "liveclass-signaling.liveclass.svc.cluster.local" in mounted


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs haproxy (bootstrap)")
def test_the_kubernetes_haproxy_config_passes_haproxy_check(tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text(kubernetes_haproxy_config())
    check = subprocess.run(
        ["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


# -- the Dockerfile ------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_installs_exactly_the_runtime_lock_and_starts_liveclass_serve() -> None:
    steps = dockerfile()
    pip_installs = [
        shlex.split(args) for keyword, args in steps if keyword == "RUN" and "pip install" in args
    ]
    assert len(pip_installs) == 2, pip_installs
    locked, project = pip_installs
    assert locked[:2] == ["pip", "install"] and "--require-hashes" in locked
    assert locked[locked.index("-r") + 1] == "requirements-runtime.lock"
    assert len(locked) == 5, "nothing but the lock is installed with it"
    assert project[:4] == ["pip", "install", "--no-deps", "."], "the project adds no package"
    assert ("COPY", "requirements-runtime.lock ./") in steps
    entrypoint = next(args for keyword, args in steps if keyword == "ENTRYPOINT")
    assert yaml.safe_load(entrypoint) == ["liveclass", "serve"]
    cmd = yaml.safe_load(next(args for keyword, args in steps if keyword == "CMD"))
    args = build_parser().parse_args(["serve", *cmd])
    assert (args.host, args.port, str(args.data_dir)) == ("0.0.0.0", 8080, "/data")
    assert ("STOPSIGNAL", "SIGTERM") in steps
    assert ("USER", "liveclass") in steps
    health = next(args for keyword, args in steps if keyword == "HEALTHCHECK")
    assert "http://127.0.0.1:8080/healthz" in health


def test_the_runtime_lock_pins_every_runtime_dependency_and_no_tool() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = pyproject.split("dependencies = [", 1)[1].split("]", 1)[0]
    wanted = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', block))
    lock = (ROOT / "requirements-runtime.lock").read_text()
    pinned = {
        name.lower().replace("_", "-"): version
        for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M)
    }
    for name, version in wanted.items():
        assert pinned.get(name.lower().replace("_", "-")) == version, name
    for tool in ("pytest", "locust", "playwright", "ruff", "mypy", "kubernetes-validate"):
        assert tool not in pinned
    assert all("--hash=sha256:" in entry for entry in lock.split("\n\n") if "==" in entry)


# -- the compose file ----------------------------------------------------------------------------

COMPOSE = ROOT / "deploy" / "compose" / "compose.yaml"


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines (comments and blanks skipped), placeholders made valid."""
    pairs = dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    for key, value in pairs.items():
        if "CHANGE-ME" in value:
            pairs[key] = ("k1:" if key == "LIVECLASS_SECRETS" else "") + "x" * 48
    return pairs


def compose_services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_the_compose_files_liveclass_services_parse_with_liveclass_and_match_haproxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose_services()
    env = env_file(COMPOSE.parent / "liveclass.env.example")
    nodes, workers = [], []
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        if service.get("image") != "liveclass:latest":
            continue
        assert (COMPOSE.parent / service["build"]["context"] / "Dockerfile").is_file()
        assert service["env_file"] == "liveclass.env"
        with monkeypatch.context() as patch:
            for key, value in {**env, **service["environment"]}.items():
                patch.setenv(key, value)
            if service.get("entrypoint") == ["liveclass", "sfu"]:
                workers.append(
                    SfuConfig.from_args(build_parser().parse_args(["sfu", *service["command"]]))
                )
            else:
                args = build_parser().parse_args(["serve", *service["command"]])
                nodes.append(ServeConfig.from_args(args))
    assert len(nodes) == 3 and len(workers) == 2
    assert all(n.cluster is not None for n in nodes)
    assert len({n.cluster.node_id for n in nodes if n.cluster}) == 3
    assert len({w.worker_id for w in workers}) == 2
    # HAProxy runs the shipped config, whose servers are these nodes.
    [mount] = services["haproxy"]["volumes"]
    shipped = (COMPOSE.parent / mount.split(":")[0]).resolve()
    assert shipped == ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    servers = re.findall(r"^\s*server \S+ (\S+)", shipped.read_text(), re.M)
    assert sorted(servers) == sorted(f"{n.node.host}:{n.node.port}" for n in nodes)
    # The seeds name Redis services of the file, which redis-init makes into one cluster.
    ports = (
        {int(s.rsplit(":", 1)[1]) for s in nodes[0].cluster.seeds.split(",")}
        if nodes[0].cluster
        else set()
    )
    redis = {int(n.split("-")[1]) for n in services if re.fullmatch(r"redis-\d+", n)}
    assert ports <= redis and len(redis) == 6
    assert all(f"127.0.0.1:{p}" in services["redis-init"]["command"] for p in redis)


# -- the systemd units ---------------------------------------------------------------------------

SYSTEMD = ROOT / "deploy" / "systemd"


def unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys (a key may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@pytest.mark.parametrize(
    "name, command, instance",
    [("liveclass@.service", "serve", "node1"), ("liveclass-sfu@.service", "sfu", "sfu1")],
)
def test_each_unit_starts_liveclass_with_flags_and_environment_it_accepts(
    name: str, command: str, instance: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    service = unit(SYSTEMD / name)["Service"]
    [exec_start] = service["ExecStart"]
    argv = shlex.split(exec_start.replace("%i", instance))
    assert argv[0].endswith("/liveclass") and argv[1] == command
    argv = [a.replace("${STATE_DIRECTORY}", str(tmp_path)) for a in argv]
    files = [SYSTEMD / "liveclass.env.example", SYSTEMD / f"{instance}.env.example"]
    assert [
        f.removeprefix("/etc/liveclass/").replace("%i", instance)
        for f in service["EnvironmentFile"]
    ] == [f.name.removesuffix(".example") for f in files]
    for path in files:
        for key, value in env_file(path).items():
            monkeypatch.setenv(key, value)
    args = build_parser().parse_args(argv[1:])
    config = ServeConfig.from_args(args) if command == "serve" else SfuConfig.from_args(args)
    assert config.log_format == "json"
    assert service["KillSignal"] == ["SIGTERM"]
    assert int(service["TimeoutStopSec"][0]) >= 15  # the drain takes about 5 s
    assert service["Restart"] == ["on-failure"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd (bootstrap)")
@pytest.mark.parametrize("name", ["liveclass@.service", "liveclass-sfu@.service"])
def test_each_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    liveclass = Path(sys.executable).with_name("liveclass")
    text = (SYSTEMD / name).read_text().replace("/opt/liveclass/venv/bin/liveclass", str(liveclass))
    (tmp_path / name).write_text(text)
    check = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / name)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Unknown keys and bad values are warnings (exit 0): none is allowed.
    assert check.returncode == 0 and check.stderr.strip() == "", check.stderr


# -- coturn's config, rendered per deployment ----------------------------------------------------


def render_coturn(script: str, env: dict[str, str], tmp_path: Path) -> dict[str, list[str]]:
    """Run a deployment's coturn start-up script with sh against the shipped turnserver.conf,
    coturn itself replaced by a no-op; returns the rendered config's keys."""
    script = script.replace(
        "/etc/coturn/turnserver.conf", str(ROOT / "deploy/coturn/turnserver.conf")
    )
    script = script.replace("/tmp/turnserver.conf", str(tmp_path / "turnserver.conf"))
    script = script.replace("/tmp/turndb", str(tmp_path / "turndb"))
    script = script.replace("exec turnserver", "exec true")
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=10)
    keys: dict[str, list[str]] = {}
    for line in (tmp_path / "turnserver.conf").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys.setdefault(key, []).append(value)
    return keys


def test_the_compose_coturn_runs_the_shipped_config_on_loopback_with_the_one_secret(
    tmp_path: Path,
) -> None:
    [script] = compose_services()["coturn"]["command"]
    secret = "f" * 64
    keys = render_coturn(script.replace("$$", "$"), {"LIVECLASS_TURN_SECRET": secret}, tmp_path)
    assert keys["listening-ip"] == ["127.0.0.1"] and keys["relay-ip"] == ["127.0.0.1"]
    assert keys["static-auth-secret"] == [secret]
    assert "allow-loopback-peers" in keys and "no-tls" in keys
    assert "cert" not in keys and "pkey" not in keys
    assert "use-auth-secret" in keys  # liveclass's credentials (turn_config/)


def test_the_kubernetes_coturn_runs_the_shipped_config_on_the_nodes_address(
    tmp_path: Path,
) -> None:
    pod = container(resource("DaemonSet", "liveclass-coturn"))
    assert pod["command"] == ["sh", "-c"]
    [script] = pod["args"]
    secret = "e" * 64
    env = {"HOST_IP": POD_FIELDS["HOST_IP"], "LIVECLASS_TURN_SECRET": secret}
    keys = render_coturn(script, env, tmp_path)
    assert keys["listening-ip"] == [POD_FIELDS["HOST_IP"]]
    assert keys["relay-ip"] == [POD_FIELDS["HOST_IP"]]
    assert keys["static-auth-secret"] == [secret]
    assert "allow-loopback-peers" not in keys
    from_secret = {e["name"]: e["valueFrom"] for e in pod["env"]}
    assert from_secret["LIVECLASS_TURN_SECRET"]["secretKeyRef"]["name"] == "liveclass-secrets"
