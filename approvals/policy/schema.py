"""The policy file: parsed and checked once, at start-up, into immutable rules.

Pure Python (no Django models): portal/settings.py loads it, so a bad file stops every entry
point (Daphne, manage.py, the reaper) with a message naming the file, the rule and the key.
The format is documented in docs/policy.md; docs/policy.example.yaml is a commented example.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

KINDS = ("pod", "node", "copy")
PROFILES = ("general", "baseline", "restricted", "netadmin", "sysadmin")
CLOCKS = ("approval", "first_connect")
MAX_APPROVALS = 5
DEFAULT_MAX_DURATION_MINUTES = 120
MAX_DURATION_LIMIT = 24 * 60

_TOP_KEYS = {"images", "rules"}
_RULE_KEYS = {"name", "match", "approvals", "approvers", "max_duration_minutes", "ticket", "images", "clock", "files",
              "approval_reauth_minutes", "approval_webauthn"}
MAX_REAUTH_MINUTES = 24 * 60
_FILES_KEYS = {"download", "upload", "max_mb"}
DEFAULT_FILES_MAX_MB = 50
MAX_FILES_MB = 1024
_MATCH_KEYS = {"cluster", "namespace", "kind", "profile", "image"}
_TICKET_KEYS = {"required", "pattern"}
_NAME = re.compile(r"^[a-z0-9-]+$")

# What applies without EPHEMERA_POLICY_FILE: today's defaults (one approval from the approver
# group, nothing auto-approved, busybox only, at most 120 minutes).
BUILTIN = """\
# Built-in policy (no EPHEMERA_POLICY_FILE): one approval, nothing auto-approved.
images: [busybox]
rules:
  - name: default
    approvals: 1
    max_duration_minutes: 120
"""


class PolicyError(ValueError):
    """A problem in the policy file; the message names the file, the rule and the key."""


@dataclass(frozen=True)
class RequestSpec:
    """What a rule is matched on: the exact debug spec."""

    cluster: str
    namespace: str
    kind: str
    profile: str
    image: str


@dataclass(frozen=True)
class Match:
    cluster: tuple[str, ...] | None = None
    namespace: tuple[str, ...] | None = None  # shell-style globs
    kind: tuple[str, ...] | None = None
    profile: tuple[str, ...] | None = None
    image: tuple[str, ...] | None = None  # shell-style globs

    def matches(self, spec: RequestSpec) -> bool:
        return (
            _any(self.cluster, spec.cluster, glob=False)
            and _any(self.namespace, spec.namespace, glob=True)
            and _any(self.kind, spec.kind, glob=False)
            and _any(self.profile, spec.profile, glob=False)
            and _any(self.image, spec.image, glob=True)
        )

    def can_match(self, *, kind: str | None = None, profile: str | None = None) -> bool:
        """Could a request of this kind / profile ever match (whatever its other fields)?"""
        return (kind is None or self.kind is None or kind in self.kind) and (
            profile is None or self.profile is None or profile in self.profile
        )


def _any(patterns: tuple[str, ...] | None, value: str, *, glob: bool) -> bool:
    if patterns is None:
        return True
    if glob:
        return any(fnmatch.fnmatchcase(value, p) for p in patterns)
    return value in patterns


@dataclass(frozen=True)
class Ticket:
    required: bool = False
    pattern: str = ""

    def problem(self, ticket: str) -> str | None:
        if not ticket:
            return "A ticket is required." if self.required else None
        if self.pattern and not re.search(self.pattern, ticket):
            return f"The ticket must match {self.pattern}."
        return None


@dataclass(frozen=True)
class Files:
    """What a session may move through its debug container: files of the target out, files in."""

    download: bool
    upload: bool
    max_mb: int = DEFAULT_FILES_MAX_MB

    @classmethod
    def default_for(cls, *, kind: str, profile: str) -> Files:
        # A rule that says nothing: downloads for pod sessions below sysadmin; node and
        # sysadmin sessions (the whole node, or everything) move no files unless a rule says so.
        return cls(download=kind != "node" and profile != "sysadmin", upload=False)

    def as_dict(self) -> dict[str, Any]:
        return {"download": self.download, "upload": self.upload, "max_mb": self.max_mb}


@dataclass(frozen=True)
class Rule:
    name: str
    match: Match
    approvals: int
    approvers: tuple[str, ...]
    max_duration_minutes: int
    ticket: Ticket
    images: tuple[str, ...] | None  # None: the policy's allowlist
    clock: str = "approval"
    files: Files | None = None  # None: Files.default_for the request
    # Approvers must have signed in (or re-authenticated) within this many minutes (portal.sso.stepup).
    approval_reauth_minutes: int | None = None
    # Each approval needs a security key touch naming the request (portal.sso.security_keys).
    approval_webauthn: bool = False

    def files_for(self, *, kind: str, profile: str) -> Files:
        return self.files if self.files is not None else Files.default_for(kind=kind, profile=profile)

    def summary(self) -> str:
        """One line for the request form and the queue: what applies under this rule."""
        if self.approvals == 0:
            who = "approved automatically"
        else:
            who = f"{self.approvals} approver{'s' if self.approvals > 1 else ''} from {', '.join(self.approvers)}"
        parts = [f"rule {self.name}: {who}", f"at most {self.max_duration_minutes} minutes"]
        if self.ticket.required:
            parts.append("ticket required")
        if self.clock == "first_connect":
            parts.append("the time starts at the first connect")
        if self.approval_reauth_minutes and self.approvals:
            parts.append(f"approvers sign in again if their last sign-in is over {self.approval_reauth_minutes} minutes old")
        if self.approval_webauthn and self.approvals:
            parts.append("each approval needs a security key touch")
        return ", ".join(parts)


@dataclass(frozen=True)
class Policy:
    images: tuple[str, ...]
    rules: tuple[Rule, ...]
    sha256: str
    source: str  # the file's path, or "built-in"
    approver_groups: frozenset[str] = field(default_factory=frozenset)  # every group any rule names

    def rule_for(self, spec: RequestSpec) -> Rule | None:
        """The first rule whose match fits; None: nothing allows the request."""
        return next((r for r in self.rules if r.match.matches(spec)), None)

    def images_for(self, rule: Rule) -> tuple[str, ...]:
        return rule.images if rule.images is not None else self.images


def load(path: str | None, *, default_approvers: str) -> Policy:
    """The policy from `path`, or the built-in one; raises PolicyError."""
    if not path:
        return parse(BUILTIN, source="built-in", default_approvers=default_approvers)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.__class__.__name__}: {exc})") from None
    return parse(text, source=path, default_approvers=default_approvers)


def parse(text: str, *, source: str, default_approvers: str) -> Policy:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise PolicyError(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: the policy must be a mapping with `images` and `rules`")
    _unknown(data, _TOP_KEYS, f"{source}")
    images = _strings(data.get("images", ["busybox"]), f"{source}: images")
    if not images:
        raise PolicyError(f"{source}: images: list at least one debug image")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PolicyError(f"{source}: rules: give a list of at least one rule")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, i, source, default_approvers)
        if rule.name in seen:
            raise PolicyError(f"{source}: rule {rule.name}: name: another rule already has this name")
        seen.add(rule.name)
        rules.append(rule)
    groups = frozenset(g for r in rules for g in r.approvers)
    return Policy(images=tuple(images), rules=tuple(rules), sha256=hashlib.sha256(text.encode()).hexdigest(), source=source,
                  approver_groups=groups)


def _unknown(data: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(str(k) for k in data if k not in allowed)
    if extra:
        raise PolicyError(f"{where}: unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _strings(value: Any, where: str, *, allowed: Iterable[str] | None = None) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise PolicyError(f"{where}: give a list of non-empty strings")
    if allowed is not None:
        allowed = tuple(allowed)
        bad = [v for v in items if v not in allowed]
        if bad:
            raise PolicyError(f"{where}: {bad[0]!r} is not one of: {', '.join(allowed)}")
    return [v.strip() for v in items]


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyError(f"{where}: give a whole number from {low} to {high}")
    return value


def _rule(raw: Any, index: int, source: str, default_approvers: str) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: rule #{index + 1}: each rule is a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise PolicyError(f"{source}: rule #{index + 1}: name: required, lowercase letters, digits and '-'")
    where = f"{source}: rule {name}"
    _unknown(raw, _RULE_KEYS, where)
    match_raw = raw.get("match") or {}
    if not isinstance(match_raw, dict):
        raise PolicyError(f"{where}: match: a mapping of {', '.join(sorted(_MATCH_KEYS))}")
    _unknown(match_raw, _MATCH_KEYS, f"{where}: match")
    allowed = {"kind": KINDS, "profile": PROFILES}
    parts = {k: tuple(_strings(v, f"{where}: match.{k}", allowed=allowed.get(k))) for k, v in match_raw.items()}
    match = Match(**parts)
    approvals = _int(raw.get("approvals", 1), f"{where}: approvals", 0, MAX_APPROVALS)
    if approvals == 0 and (match.can_match(kind="node") or match.can_match(profile="sysadmin")):
        raise PolicyError(
            f"{where}: approvals: 0 (auto-approval) can't apply to node or sysadmin requests; "
            "restrict match.kind to [pod] and match.profile to lower profiles"
        )
    approvers = tuple(_strings(raw.get("approvers", [default_approvers]), f"{where}: approvers"))
    if not approvers:
        raise PolicyError(f"{where}: approvers: give a list of non-empty strings (at least one group)")
    max_minutes = _int(raw.get("max_duration_minutes", DEFAULT_MAX_DURATION_MINUTES), f"{where}: max_duration_minutes", 1,
                       MAX_DURATION_LIMIT)
    ticket = _ticket(raw.get("ticket"), f"{where}: ticket")
    images = tuple(_strings(raw["images"], f"{where}: images")) if "images" in raw else None
    clock = raw.get("clock", "approval")
    if clock not in CLOCKS:
        raise PolicyError(f"{where}: clock: one of {', '.join(CLOCKS)}")
    files = _files(raw["files"], f"{where}: files") if "files" in raw else None
    reauth = raw.get("approval_reauth_minutes")
    if reauth is not None:
        reauth = _int(reauth, f"{where}: approval_reauth_minutes", 1, MAX_REAUTH_MINUTES)
    webauthn = raw.get("approval_webauthn", False)
    if not isinstance(webauthn, bool):
        raise PolicyError(f"{where}: approval_webauthn: true or false")
    return Rule(name=name, match=match, approvals=approvals, approvers=approvers, max_duration_minutes=max_minutes,
                ticket=ticket, images=images, clock=clock, files=files, approval_reauth_minutes=reauth,
                approval_webauthn=webauthn)


def _files(raw: Any, where: str) -> Files:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a mapping with download, upload and max_mb")
    _unknown(raw, _FILES_KEYS, where)
    flags = {}
    for key in ("download", "upload"):
        value = raw.get(key, False)
        if not isinstance(value, bool):
            raise PolicyError(f"{where}.{key}: true or false")
        flags[key] = value
    max_mb = _int(raw.get("max_mb", DEFAULT_FILES_MAX_MB), f"{where}.max_mb", 1, MAX_FILES_MB)
    return Files(download=flags["download"], upload=flags["upload"], max_mb=max_mb)


def _ticket(raw: Any, where: str) -> Ticket:
    if raw is None:
        return Ticket()
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: a mapping with required and pattern")
    _unknown(raw, _TICKET_KEYS, where)
    required = raw.get("required", False)
    if not isinstance(required, bool):
        raise PolicyError(f"{where}.required: true or false")
    pattern = raw.get("pattern", "")
    if not isinstance(pattern, str):
        raise PolicyError(f"{where}.pattern: a regular expression (quote it)")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise PolicyError(f"{where}.pattern: not a valid regular expression ({exc})") from None
    return Ticket(required=required, pattern=pattern)
