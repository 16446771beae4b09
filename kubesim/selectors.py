"""Label and field selectors with the syntax of apimachinery's labels.Parse / fields.ParseSelector."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubesim.errors import bad_request


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" also match objects without the label, as in apimachinery.
        return not present or value not in self.values


_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|[^\s(),!=]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise bad_request(f"unable to parse requirement: {text!r}")
        out.append(m.group(1))
        pos = m.end()
    return out


def parse_labels(text: str | None) -> list[Requirement]:
    if not text:
        return []
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def need(cond: bool) -> None:
        if not cond:
            raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")

    while i < len(toks):
        if toks[i] == "!":
            need(i + 1 < len(toks))
            reqs.append(Requirement(toks[i + 1], "!"))
            i += 2
        else:
            key = toks[i]
            i += 1
            if i >= len(toks) or toks[i] == ",":
                reqs.append(Requirement(key, "exists"))
            elif toks[i] in ("=", "==", "!="):
                op = "!=" if toks[i] == "!=" else "="
                # `key=` (empty value) is legal and matches an empty label value.
                if i + 1 < len(toks) and toks[i + 1] != ",":
                    val = toks[i + 1]
                    i += 2
                else:
                    val = ""
                    i += 1
                reqs.append(Requirement(key, op, (val,)))
            elif toks[i] in ("in", "notin"):
                op = toks[i]
                need(i + 1 < len(toks) and toks[i + 1] == "(")
                i += 2
                vals: list[str] = []
                while i < len(toks) and toks[i] != ")":
                    if toks[i] != ",":
                        vals.append(toks[i])
                    i += 1
                need(i < len(toks))
                i += 1
                reqs.append(Requirement(key, op, tuple(vals)))
            else:
                need(False)
        if i < len(toks):
            need(toks[i] == ",")
            i += 1
    return reqs


def labels_match(reqs: list[Requirement], obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in reqs)


# Field selectors the apiserver supports for the kinds we serve (anything else is a 400).
_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "pods": {
        "metadata.name": lambda o: o["metadata"].get("name", ""),
        "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
        "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName", ""),
        "spec.restartPolicy": lambda o: o.get("spec", {}).get("restartPolicy", ""),
        "spec.schedulerName": lambda o: o.get("spec", {}).get("schedulerName", ""),
        "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName", ""),
        "status.phase": lambda o: o.get("status", {}).get("phase", ""),
        "status.podIP": lambda o: o.get("status", {}).get("podIP", ""),
    },
    "nodes": {
        "metadata.name": lambda o: o["metadata"].get("name", ""),
        "spec.unschedulable": lambda o: "true" if o.get("spec", {}).get("unschedulable") else "false",
    },
    "namespaces": {
        "metadata.name": lambda o: o["metadata"].get("name", ""),
        "status.phase": lambda o: o.get("status", {}).get("phase", ""),
    },
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


def parse_fields(resource: str, text: str | None) -> list[FieldRequirement]:
    if not text:
        return []
    out: list[FieldRequirement] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "!=" in part:
            field, value = part.split("!=", 1)
            equal = False
        elif "==" in part:
            field, value = part.split("==", 1)
            equal = True
        elif "=" in part:
            field, value = part.split("=", 1)
            equal = True
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field = field.strip()
        if field not in _FIELDS.get(resource, {}) and field not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f"field label not supported: {field}")
        out.append(FieldRequirement(field, equal, value.strip()))
    return out


def fields_match(resource: str, reqs: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    getters = _FIELDS.get(resource, {})
    for r in reqs:
        getter = getters.get(r.field) or _FIELDS["pods"][r.field]
        if (getter(obj) == r.value) != r.equal:
            return False
    return True
