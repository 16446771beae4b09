"""The policy file: every problem stops start-up (and `check_policy`) naming the file, the rule and the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from approvals.policy.schema import BUILTIN, Files, PolicyError, RequestSpec, parse
from tests.portal.test_settings import start

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "policy.example.yaml"


def _parse(text: str):  # type: ignore[no-untyped-def]
    return parse(text, source="team-policy.yaml", default_approvers="approvers")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [", "team-policy.yaml: not valid YAML (line 1"),
        ("- just a list", "the policy must be a mapping"),
        ("rules: []", "rules: give a list of at least one rule"),
        ("colour: blue\nrules: [{name: a}]", "team-policy.yaml: unknown key 'colour'"),
        ("rules: [{name: a, approve: 2}]", "rule a: unknown key 'approve'"),
        ("rules: [{name: a, match: {team: [x]}}]", "rule a: match: unknown key 'team'"),
        ("rules: [{name: a, match: {kind: [vm]}}]", "rule a: match.kind: 'vm' is not one of: pod, node"),
        ("rules: [{name: a, match: {profile: [root]}}]", "rule a: match.profile: 'root' is not one of"),
        ("rules: [{name: a, ticket: {required: yes-please}}]", "rule a: ticket.required: true or false"),
        ("rules: [{name: a, ticket: {pattern: '(INC'}}]", "rule a: ticket.pattern: not a valid regular expression"),
        ("rules: [{name: a, ticket: {pattern: x, owner: y}}]", "rule a: ticket: unknown key 'owner'"),
        ("rules: [{name: a}, {name: a}]", "rule a: name: another rule already has this name"),
        ("rules: [{name: Not_OK}]", "rule #1: name: required, lowercase letters, digits and '-'"),
        ("rules: [{name: a, approvals: 6}]", "rule a: approvals: give a whole number from 0 to 5"),
        ("rules: [{name: a, approvals: -1}]", "rule a: approvals: give a whole number from 0 to 5"),
        ("rules: [{name: a, approvals: 0}]", "rule a: approvals: 0 (auto-approval) can't apply to node or sysadmin"),
        ("rules: [{name: a, approvals: 0, match: {kind: [pod]}}]", "can't apply to node or sysadmin"),
        ("rules: [{name: a, approvals: 0, match: {profile: [baseline]}}]", "can't apply to node or sysadmin"),
        ("rules: [{name: a, max_duration_minutes: 0}]", "rule a: max_duration_minutes: give a whole number from 1 to 1440"),
        ("rules: [{name: a, clock: midnight}]", "rule a: clock: one of approval, first_connect"),
        ("rules: [{name: a, approvers: []}]", "rule a: approvers: give a list of non-empty strings"),
        ("images: []\nrules: [{name: a}]", "images: list at least one debug image"),
        ("rules: [{name: a, files: true}]", "rule a: files: a mapping with download, upload and max_mb"),
        ("rules: [{name: a, files: {download: yes-please}}]", "rule a: files.download: true or false"),
        ("rules: [{name: a, files: {upload: 1}}]", "rule a: files.upload: true or false"),
        ("rules: [{name: a, files: {max_mb: 0}}]", "rule a: files.max_mb: give a whole number from 1 to 1024"),
        ("rules: [{name: a, files: {ftp: true}}]", "rule a: files: unknown key 'ftp'"),
    ],
)
def test_every_problem_names_the_file_the_rule_and_the_key(text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        _parse(text)
    assert message in str(info.value)
    assert str(info.value).startswith("team-policy.yaml")


def test_the_first_matching_rule_decides_with_globs_and_lists() -> None:
    policy = _parse("""
rules:
  - {name: nodes, match: {kind: [node]}, approvals: 2}
  - {name: dev, match: {namespace: ["dev-*"], profile: [restricted, baseline], kind: [pod]}, approvals: 0}
  - {name: netshoot, match: {image: ["nicolaka/netshoot:*"]}}
  - {name: prod-cluster, match: {cluster: [prod]}, approvals: 2}
  - {name: copies, match: {kind: [copy]}, approvals: 2, files: {download: false, upload: true, max_mb: 5}}
  - {name: default}
""")

    def rule(**spec: str) -> str:
        base = {"cluster": "staging", "namespace": "default", "kind": "pod", "profile": "general", "image": "busybox"}
        found = policy.rule_for(RequestSpec(**{**base, **spec}))
        return found.name if found else ""

    assert rule(kind="node", namespace="") == "nodes"
    assert rule(namespace="dev-alice", profile="baseline") == "dev"
    assert rule(namespace="dev-alice", profile="general") == "default"  # a list means "any of": general isn't in it
    assert rule(namespace="devops", profile="baseline") == "default"  # the glob is dev-*, not dev*
    assert rule(image="nicolaka/netshoot:v0.13") == "netshoot"
    assert rule(cluster="prod") == "prod-cluster"
    assert rule(cluster="prod", kind="node", namespace="") == "nodes"  # order decides
    assert rule(kind="copy") == "copies"
    assert rule(kind="copy", namespace="dev-x", profile="baseline") == "copies"  # dev matches pods only
    copies = policy.rule_for(RequestSpec("c", "default", "copy", "general", "busybox"))
    assert copies is not None and copies.files_for(kind="copy", profile="general") == Files(False, True, 5)
    without_default = _parse("rules: [{name: nodes, match: {kind: [node]}}]")
    assert without_default.rule_for(RequestSpec("c", "default", "pod", "general", "busybox")) is None


@pytest.mark.parametrize(("kind", "profile", "download"), [
    ("pod", "general", True), ("pod", "restricted", True), ("copy", "baseline", True),
    ("pod", "sysadmin", False), ("copy", "sysadmin", False), ("node", "general", False), ("node", "baseline", False),
])
def test_a_rule_that_says_nothing_of_files_allows_downloads_below_sysadmin_and_never_uploads(
    kind: str, profile: str, download: bool
) -> None:
    rule = _parse("rules: [{name: default}]").rule_for(RequestSpec("c", "default", kind, profile, "busybox"))
    assert rule is not None and rule.files_for(kind=kind, profile=profile) == Files(download, False, 50)


def test_the_builtin_policy_behaves_like_the_old_defaults() -> None:
    policy = _parse(BUILTIN)
    (rule,) = policy.rules
    assert (rule.approvals, rule.approvers, rule.max_duration_minutes, policy.images) == (1, ("approvers",), 120, ("busybox",))
    assert len(policy.sha256) == 64


def test_the_shipped_example_and_demo_policies_are_valid() -> None:
    for path in (EXAMPLE, REPO / "portal" / "demo_policy.yaml"):
        assert _parse(path.read_text()).rules, path


def test_check_policy_prints_the_rules_or_the_problem(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "manage.py", "check_policy", str(EXAMPLE)], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={"EPHEMERA_DEMO": "1", "PATH": "/usr/bin:/bin"})
    assert good.returncode == 0, good.stderr
    assert "OK, sha256" in good.stdout and "- node-and-sysadmin: when kind in ['node']" in good.stdout
    assert "2 approvers from sre-leads, at most 30 minutes, ticket required" in good.stdout
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: [{name: a, approvals: 9}]")
    result = subprocess.run([sys.executable, "manage.py", "check_policy", str(bad)], cwd=REPO, capture_output=True,
                            text=True, timeout=60, env={"EPHEMERA_DEMO": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1 and f"{bad}: rule a: approvals: give a whole number from 0 to 5" in result.stderr


def test_a_bad_policy_file_stops_start_up(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: [{name: a, approvals: 0}]")
    result = start({"EPHEMERA_DEMO": "1", "EPHEMERA_POLICY_FILE": str(bad)})
    assert result.returncode != 0
    assert f"EPHEMERA_POLICY_FILE {bad}: rule a: approvals: 0 (auto-approval) can't apply" in result.stderr


def test_the_helm_charts_policy_value_is_a_valid_policy_mounted_where_the_pods_read_it() -> None:
    import yaml

    chart = REPO / "helm" / "ephemera"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert [r.name for r in _parse(values["policy"]["file"]).rules] == ["node-and-sysadmin", "sysadmin", "default"]
    deployment = (chart / "templates" / "deployment.yaml").read_text()
    assert "{name: EPHEMERA_POLICY_FILE, value: /etc/ephemera/policy.yaml}" in deployment
    assert "{name: policy, mountPath: /etc/ephemera, readOnly: true}" in deployment
    assert "checksum/policy: {{ $.Values.policy.file | sha256sum }}" in deployment  # a policy change rolls the pods
    configmap = (chart / "templates" / "policy-configmap.yaml").read_text()
    assert "policy.yaml: |" in configmap and ".Values.policy.file" in configmap
    # None of the removed settings is still passed to the pods.
    helpers = (chart / "templates" / "_helpers.tpl").read_text()
    for removed in ("EPHEMERA_DEBUG_IMAGES", "EPHEMERA_MAX_DURATION_MINUTES", "EPHEMERA_APPROVALS_REQUIRED",
                    "EPHEMERA_AUTO_APPROVE"):
        assert removed not in helpers + deployment
