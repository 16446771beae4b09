"""The Helm chart, rendered by the real helm (tests/deploy/tools.py) and checked object by object:
values against the schema, Pod Security "restricted" on every pod, the PodDisruptionBudget, the
NetworkPolicies, the rollout, and RBAC equal to the calls the code makes."""

from __future__ import annotations

import ast
import json
import re
import subprocess
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy import tools

REPO = tools.REPO
CHART = REPO / "helm" / "ephemera"
REQUIRED = ["--set", "secretKey=k" * 8, "--set", "databaseUrl=postgres://u:p@db:5432/e", "--set", "redisUrl=redis://r:6379/0"]


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tools.helm(), *args], capture_output=True, text=True, timeout=120)


@cache
def _render(args: tuple[str, ...]) -> list[dict[str, Any]]:
    result = helm("template", "rel", str(CHART), "--namespace", "ephemera", *REQUIRED, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(*args: str) -> list[dict[str, Any]]:
    return _render(args)


def objects(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")}


# --- values and schema ----------------------------------------------------------------
def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_values_yaml_validates_against_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.Draft7Validator(schema()).validate(values())


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (["nosuchkey"], 1),  # an unknown top-level key (a typo of a real one)
        (["replicas"], 2),
        (["replicaCount"], "2"),
        (["replicaCount"], 0),
        (["behindTlsProxy"], "yes"),
        (["targetNamespaces"], "default"),
        (["networkPolicy", "enabled"], "true"),
        (["networkPolicy", "egress", "apiserver", "cidrs"], ["not-a-cidr"]),
        (["networkPolicy", "egress", "redis", "ports"], [{"port": 70000}]),
        (["metrics", "workerPort"], "9100"),
        (["metrics", "tokn"], "x"),
        (["logFormat"], "xml"),
        (["antiAffinity", "type"], "strict"),
        (["image", "pullPolicy"], "Sometimes"),
        (["securityContext", "runAsUser"], 0),
        (["redisUrl"], "http://cache:6379"),
    ],
)
def test_the_schema_rejects_wrong_types_and_unknown_keys(path: list[str], bad: Any) -> None:
    changed = values()
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema()).validate(changed)


def test_helm_itself_enforces_the_schema() -> None:
    result = helm("template", "rel", str(CHART), *REQUIRED, "--set", "replicaCount=two", "--set", "nosuchkey=1")
    assert result.returncode != 0
    assert "replicaCount" in result.stderr and "nosuchkey" in result.stderr


def test_helm_lint_is_clean() -> None:
    result = helm("lint", "--strict", str(CHART), *REQUIRED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_chart_refuses_to_render_without_its_secrets() -> None:
    result = helm("template", "rel", str(CHART))
    assert result.returncode != 0 and "set secretKey, databaseUrl and redisUrl, or existingSecret" in result.stderr
    result = helm("template", "rel", str(CHART), *REQUIRED, "--set", "metrics.enabled=true")
    assert result.returncode != 0 and "metrics.token" in result.stderr


# --- Pod Security "restricted" ----------------------------------------------------------
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """The checks of the Pod Security Standard "restricted" (v1.30+), on one pod spec."""
    problems = []
    pod_ctx = spec.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(key)
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume['name']}: {kinds - ALLOWED_VOLUMES}")
    if (pod_ctx.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("pod seccompProfile")
    if pod_ctx.get("runAsUser") == 0:
        problems.append("pod runAsUser 0")
    containers = [*(spec.get("initContainers") or []), *spec["containers"]]
    for c in containers:
        ctx = c.get("securityContext") or {}
        name = c["name"]
        if ctx.get("privileged"):
            problems.append(f"{name}: privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{name}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not (ctx.get("runAsNonRoot") is True or (pod_ctx.get("runAsNonRoot") is True and ctx.get("runAsNonRoot") is not False)):
            problems.append(f"{name}: runAsNonRoot")
        if ctx.get("runAsUser") == 0:
            problems.append(f"{name}: runAsUser 0")
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile")
        if c.get("ports") and any(p.get("hostPort") for p in c["ports"]):
            problems.append(f"{name}: hostPort")
        # Not part of the standard, but asked of this chart: nothing may write the image.
        if ctx.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: readOnlyRootFilesystem")
    return problems


@pytest.mark.parametrize("extra", [(), ("--set", "metrics.enabled=true", "--set", "metrics.token=" + "t" * 20)])
def test_every_container_of_every_template_is_restricted(extra: tuple[str, ...]) -> None:
    specs = pod_specs(render(*extra))
    assert set(specs) == {"Deployment/rel-ephemera-portal", "Deployment/rel-ephemera-reaper", "Job/rel-ephemera-migrate-1"}
    for name, spec in specs.items():
        assert restricted_violations(spec) == [], name
        assert spec["securityContext"]["runAsUser"] == 10001


def test_the_restricted_check_catches_what_it_checks() -> None:
    # The checker itself, on a pod that breaks each rule: a checker that passed everything
    # would make the test above worthless.
    bad = {"hostPID": True, "volumes": [{"name": "h", "hostPath": {"path": "/"}}], "securityContext": {},
           "containers": [{"name": "c", "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}}}]}
    found = " ".join(restricted_violations(bad))
    for rule in ("hostPID", "hostPath", "pod seccompProfile", "privileged", "allowPrivilegeEscalation", "drop ALL",
                 "adds capabilities", "runAsNonRoot", "readOnlyRootFilesystem"):
        assert rule in found, rule


def test_writable_places_are_empty_dirs_and_the_policy_is_still_mounted() -> None:
    for name, spec in pod_specs(render()).items():
        mounts = {m["mountPath"]: m for c in spec["containers"] for m in c.get("volumeMounts") or []}
        volumes = {v["name"]: v for v in spec["volumes"]}
        for path in ("/var/lib/ephemera", "/tmp"):
            assert "emptyDir" in volumes[mounts[path]["name"]], (name, path)
        if name.startswith("Deployment/"):
            assert mounts["/etc/ephemera"]["readOnly"] is True
            assert volumes["policy"]["configMap"]["name"] == "rel-ephemera-policy"


# --- availability -----------------------------------------------------------------------
def test_the_portal_rolls_without_losing_capacity_and_spreads_over_nodes() -> None:
    portal = objects(render(), "Deployment")["rel-ephemera-portal"]["spec"]
    assert portal["replicas"] == 2
    assert portal["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    soft = portal["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    term = soft[0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "rel", "app.kubernetes.io/component": "portal"}
    hard = objects(render("--set", "antiAffinity.type=hard"), "Deployment")["rel-ephemera-portal"]["spec"]["template"]["spec"]
    assert hard["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0] == term


def test_a_disruption_budget_covers_the_portal() -> None:
    docs = render()
    (pdb,) = objects(docs, "PodDisruptionBudget").values()
    portal = objects(docs, "Deployment")["rel-ephemera-portal"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == portal["spec"]["selector"]["matchLabels"]
    assert not objects(render("--set", "podDisruptionBudget.enabled=false"), "PodDisruptionBudget")


def test_probes_ask_readyz_for_readiness_and_healthz_for_liveness() -> None:
    (container,) = objects(render(), "Deployment")["rel-ephemera-portal"]["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # Longer than the slowest readiness check (portal/health.py), or a slow cluster looks like a dead pod.
    from portal import health

    assert container["readinessProbe"]["timeoutSeconds"] > max(health.DATABASE_TIMEOUT, health.REDIS_TIMEOUT, health.CLUSTER_TIMEOUT)


def test_logs_are_json_and_metrics_are_opt_in_behind_the_secret() -> None:
    def env(docs: list[dict[str, Any]], deployment: str) -> dict[str, Any]:
        (c,) = objects(docs, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}

    plain = render()
    assert env(plain, "rel-ephemera-portal")["LOG_FORMAT"] == "json"
    assert "EPHEMERA_METRICS_TOKEN" not in env(plain, "rel-ephemera-portal")
    on = render("--set", "metrics.enabled=true", "--set", "metrics.token=" + "t" * 20)
    ref = {"secretKeyRef": {"name": "rel-ephemera", "key": "EPHEMERA_METRICS_TOKEN"}}
    assert env(on, "rel-ephemera-portal")["EPHEMERA_METRICS_TOKEN"] == ref
    assert env(on, "rel-ephemera-reaper")["EPHEMERA_METRICS_PORT"] == "9100"
    assert objects(on, "Secret")["rel-ephemera"]["stringData"]["EPHEMERA_METRICS_TOKEN"] == "t" * 20


def test_single_sign_on_is_configured_from_values_and_its_secret() -> None:
    def env(docs: list[dict[str, Any]]) -> dict[str, Any]:
        (c,) = objects(docs, "Deployment")["rel-ephemera-portal"]["spec"]["template"]["spec"]["containers"]
        return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}

    plain = env(render())
    assert plain["EPHEMERA_LOCAL_LOGIN"] == "1" and "OIDC_ISSUER" not in plain
    docs = render("--set", "sso.issuer=https://idp.example/realms/corp", "--set", "sso.clientId=ephemera",
                  "--set", "sso.clientSecret=s3cret-from-the-idp", "--set", "sso.adminGroups={platform,sre-leads}",
                  "--set", "sso.localLogin=false", "--set", "sso.providerName=Corp SSO")
    on = env(docs)
    assert on["OIDC_ISSUER"] == "https://idp.example/realms/corp" and on["OIDC_CLIENT_ID"] == "ephemera"
    assert on["OIDC_CLIENT_SECRET"] == {"secretKeyRef": {"name": "rel-ephemera", "key": "OIDC_CLIENT_SECRET"}}
    assert on["OIDC_ADMIN_GROUPS"] == "platform,sre-leads" and on["EPHEMERA_LOCAL_LOGIN"] == "0"
    assert on["OIDC_PROVIDER_NAME"] == "Corp SSO" and on["OIDC_SCOPES"] == "openid email profile groups"
    assert objects(docs, "Secret")["rel-ephemera"]["stringData"]["OIDC_CLIENT_SECRET"] == "s3cret-from-the-idp"
    # Refused: no secret, no issuer with local login off, a plain-http issuer.
    no_secret = helm("template", "rel", str(CHART), *REQUIRED, "--set", "sso.issuer=https://idp.example", "--set", "sso.clientId=e")
    assert no_secret.returncode != 0 and "sso.clientSecret" in no_secret.stderr
    locked_out = helm("template", "rel", str(CHART), *REQUIRED, "--set", "sso.localLogin=false")
    assert locked_out.returncode != 0 and "needs sso.issuer" in locked_out.stderr
    plain_http = helm("template", "rel", str(CHART), *REQUIRED, "--set", "sso.issuer=http://idp.example")
    assert plain_http.returncode != 0 and "/sso/issuer" in plain_http.stderr


# --- NetworkPolicy ----------------------------------------------------------------------
def test_only_the_ingress_controller_reaches_the_portal() -> None:
    policies = objects(render(), "NetworkPolicy")
    portal = policies["rel-ephemera-portal-ingress"]["spec"]
    assert portal["podSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "rel", "app.kubernetes.io/component": "portal"}
    assert portal["policyTypes"] == ["Ingress"]
    (rule,) = portal["ingress"]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}}]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]
    worker = policies["rel-ephemera-worker-ingress"]["spec"]
    assert worker["ingress"] == [] and worker["policyTypes"] == ["Ingress"]


def test_the_ingress_controller_and_scraper_are_configurable() -> None:
    docs = render("--set", "networkPolicy.ingressController.namespaceSelector.matchLabels.team=edge",
                  "--set", "networkPolicy.ingressController.podSelector=null",
                  "--set", "metrics.enabled=true", "--set", "metrics.token=" + "t" * 20)
    policies = objects(docs, "NetworkPolicy")
    controller, scraper = policies["rel-ephemera-portal-ingress"]["spec"]["ingress"]
    assert controller["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx", "team": "edge"}}}]
    assert scraper["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    (worker,) = policies["rel-ephemera-worker-ingress"]["spec"]["ingress"]
    assert worker["ports"] == [{"protocol": "TCP", "port": 9100}]


def test_egress_goes_only_to_dns_the_apiserver_postgresql_and_redis() -> None:
    docs = render("--set", "networkPolicy.egress.apiserver.cidrs={10.0.0.1/32}",
                  "--set", "networkPolicy.egress.postgresql.cidrs={10.20.0.0/24}",
                  "--set", "networkPolicy.egress.postgresql.anyPod=false")
    egress = objects(docs, "NetworkPolicy")["rel-ephemera-egress"]["spec"]
    assert egress["podSelector"]["matchLabels"] == {"app.kubernetes.io/instance": "rel"}  # the migrate Job too
    assert egress["policyTypes"] == ["Egress"]
    dns, apiserver, postgresql, redis = egress["egress"]
    assert {"protocol": "UDP", "port": 53} in dns["ports"] and {"protocol": "TCP", "port": 53} in dns["ports"]
    assert dns["to"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                          "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}]
    assert apiserver == {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}],
                         "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 6443}]}
    assert postgresql == {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 5432}]}
    assert redis["ports"] == [{"protocol": "TCP", "port": 6379}] and {"namespaceSelector": {}} in redis["to"]
    # Every pod of the release is covered by the egress policy; the ingress ones cover both Deployments.
    for deployment in objects(docs, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels.items() >= egress["podSelector"]["matchLabels"].items()


def test_network_policies_can_be_left_out() -> None:
    assert not objects(render("--set", "networkPolicy.enabled=false"), "NetworkPolicy")


# --- RBAC equals the calls the code makes -----------------------------------------------
# Each KubeClient method and attach.py stream, with what it asks of the apiserver. A method
# that makes a new call, a call that changes, or a rule that changes in rbac.yaml alone fails
# the tests below. "node" = in the node-debug namespace only; "cluster" = wherever pods are debugged.
USES: dict[str, set[tuple[str, str, str]]] = {
    "list_namespaces": {("cluster", "namespaces", "list")},
    "list_pods": {("cluster", "pods", "list")},
    "get_pod_raw": {("cluster", "pods", "get")},
    "get_pod": set(),  # get_pod_raw
    "list_nodes": {("cluster", "nodes", "list")},
    "list_pods_raw": {("cluster", "pods", "list")},
    "create_pod": {("node", "pods", "create"), ("debug", "pods", "create")},  # node debuggers; copies
    "delete_pod": {("node", "pods", "delete"), ("debug", "pods", "delete")},
    "add_ephemeral_container": {("debug", "pods/ephemeralcontainers", "patch")},
    "watch_ephemeral_container": {("cluster", "pods", "list"), ("cluster", "pods", "watch")},
    "ephemeral_container_state": set(),  # get_pod_raw
    "exec_command": set(),  # attach.py's exec stream
    "readyz": set(),  # /readyz: a nonResourceURL everyone may read (system:public-info-viewer)
    # attach.py: websocket GETs, authorized as create (apiserver 1.30+) or get (before).
    "attach stream": {("debug", "pods/attach", "get"), ("debug", "pods/attach", "create"),
                      ("node", "pods/attach", "get"), ("node", "pods/attach", "create")},
    "exec stream": {("debug", "pods/exec", "get"), ("debug", "pods/exec", "create")},
}
# The official client's methods the code calls -> (resource, verb); watch=True makes list a watch.
API = {
    "list_namespace": ("namespaces", "list"),
    "list_namespaced_pod": ("pods", "list"),
    "list_pod_for_all_namespaces": ("pods", "list"),
    "read_namespaced_pod": ("pods", "get"),
    "list_node": ("nodes", "list"),
    "create_namespaced_pod": ("pods", "create"),
    "delete_namespaced_pod": ("pods", "delete"),
    "patch_namespaced_pod_ephemeralcontainers": ("pods/ephemeralcontainers", "patch"),
}


def calls_in_client() -> dict[str, set[tuple[str, str]]]:
    """(resource, verb) of every `self.core.X(...)` in each KubeClient method, read from the source."""
    tree = ast.parse((REPO / "portal" / "kube" / "client.py").read_text())
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "KubeClient"]
    found: dict[str, set[tuple[str, str]]] = {}
    for method in cls.body:
        if not isinstance(method, ast.FunctionDef) or method.name.startswith("_") or method.name == "close":
            continue
        uses: set[tuple[str, str]] = set()
        for node in ast.walk(method):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "core":
                assert node.attr in API, f"{method.name} calls CoreV1Api.{node.attr}: add it to API and USES"
                resource, verb = API[node.attr]
                uses.add((resource, verb))
            if isinstance(node, ast.keyword) and node.arg == "watch" and isinstance(node.value, ast.Constant) and node.value.value:
                uses.add(("pods", "watch"))
        found[method.name] = uses
    return found


def test_the_table_is_what_the_client_calls() -> None:
    found = calls_in_client()
    assert set(found) == set(USES) - {"attach stream", "exec stream"}, "a KubeClient method was added or removed: add it to USES"
    for method, uses in found.items():
        assert uses == {(resource, verb) for _scope, resource, verb in USES[method]}, method


def test_attach_and_exec_are_the_only_streams() -> None:
    source = (REPO / "portal" / "kube" / "attach.py").read_text()
    assert sorted(set(re.findall(r"/pods/\{[^}]+\}/(\w+)", source))) == ["attach", "exec"]


def rbac_rules(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(scope, resource, verb) the rendered chart grants, by where the grant applies."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("ClusterRole", "Role")}
    granted: set[tuple[str, str, str]] = set()
    for binding in (d for d in docs if d["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-ephemera", "namespace": "ephemera"}]
        role = roles[(binding["roleRef"]["kind"], binding["roleRef"]["name"])]
        namespace = binding["metadata"].get("namespace")
        if binding["kind"] == "ClusterRoleBinding":
            scope = "cluster"
        elif namespace == "ephemera-debug":
            scope = "node"
        else:
            scope = f"ns:{namespace}"
        for rule in role["rules"]:
            assert rule["apiGroups"] == [""], rule
            granted |= {(scope, resource, verb) for resource in rule["resources"] for verb in rule["verbs"]}
    return granted


def test_rbac_grants_exactly_what_the_code_uses_cluster_wide() -> None:
    needed = set().union(*USES.values())
    expected = {("cluster" if scope == "debug" else scope, resource, verb) for scope, resource, verb in needed}
    assert rbac_rules(render()) == expected


def test_rbac_with_target_namespaces_grants_debugging_there_only() -> None:
    granted = rbac_rules(render("--set", "targetNamespaces={payments,web}"))
    needed = set().union(*USES.values())
    expected = {("cluster", r, v) for s, r, v in needed if s == "cluster"} | {("node", r, v) for s, r, v in needed if s == "node"}
    expected |= {(f"ns:{ns}", r, v) for s, r, v in needed if s == "debug" for ns in ("payments", "web")}
    assert granted == expected
    # The reads the request form and oversight make stay cluster-wide (a RoleBinding can't grant
    # nodes or all-namespace lists); nothing that changes a pod is granted outside those namespaces.
    assert not {g for g in granted if g[0] == "cluster" and g[2] not in ("get", "list", "watch")}


def test_the_rbac_doc_matches_the_chart() -> None:
    doc = (REPO / "docs" / "deploy.md").read_text()
    assert "`pods/ephemeralcontainers`: patch" in doc and "update" not in doc.split("## The cluster credentials")[1].split("##")[0]

