"""The debug request form: it only parses input; every rule lives in approvals.services.

The fields refuse only text no database can store (portal.validators). The service checks
names, the live cluster and the policy rule (images, duration, ticket) and raises
ValidationError per field; the view puts those messages on these fields. The HTML attributes
of the template (required, min/max, choices) only help the browser.
"""

from __future__ import annotations

import shlex

from django import forms
from django.conf import settings

from approvals import policy
from approvals.choices import Profile, Verdict
from portal.validators import FormTextField

# One line per profile, shown next to each choice (what kubectl debug --profile grants).
PROFILE_HELP: dict[str, str] = {
    Profile.GENERAL: "Default. Adds SYS_PTRACE so you can inspect the target's processes and files.",
    Profile.BASELINE: "No extra privileges; fits namespaces that enforce the baseline Pod Security level.",
    Profile.RESTRICTED: "Non-root, all capabilities dropped, RuntimeDefault seccomp: the least you can ask for.",
    Profile.NETADMIN: "Adds NET_ADMIN and NET_RAW for tcpdump, iptables and other network tools.",
    Profile.SYSADMIN: "Privileged container: full access to the node. Ask only when nothing else will do.",
}


class DebugRequestForm(forms.Form):
    # Not required and untyped on purpose: the raw values go to request_create, which
    # reports every field's problem at once (a form-level "required" would hide the rest).
    kind = FormTextField(required=False, initial="pod")  # "pod" or "node"
    node = FormTextField(required=False)
    namespace = FormTextField(required=False)
    pod = FormTextField(required=False)
    container = FormTextField(required=False, label="Target container")
    image = FormTextField(required=False, label="Debug image")
    profile = FormTextField(required=False, initial=Profile.GENERAL)
    reason = FormTextField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    ticket = FormTextField(required=False, label="Ticket")
    duration_minutes = FormTextField(required=False, label="Duration (minutes)")
    # kind copy (`kubectl debug POD --copy-to`): how the copy differs from the pod.
    copy_command = FormTextField(required=False, label="Command of the target container in the copy")
    copy_set_image = FormTextField(required=False, label="Images to replace")
    copy_share_processes = forms.BooleanField(required=False, initial=True, label="One process namespace for the copy")
    copy_same_node = forms.BooleanField(required=False, label="On the pod's node")

    def copy_options(self) -> tuple[dict[str, object], dict[str, str]]:
        """The copy's options from the form's text, and errors by field (shell-like words, `c=image, ...`)."""
        data = self.cleaned_data
        errors: dict[str, str] = {}
        try:
            command = shlex.split(data.get("copy_command") or "")
        except ValueError as exc:
            command, errors["command"] = [], f"The command can't be read: {exc}."
        images: dict[str, str] = {}
        for part in (data.get("copy_set_image") or "").split(","):
            if not part.strip():
                continue
            name, eq, image = part.partition("=")
            if not eq:
                errors["set_image"] = "Write container=image, separated by commas (e.g. worker=busybox or *=busybox)."
                break
            images[name.strip()] = image.strip()
        return ({"command": command, "set_image": images, "share_processes": bool(data.get("copy_share_processes")),
                 "same_node": bool(data.get("copy_same_node"))}, errors)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["image"].initial = policy.current().images[0]
        self.fields["duration_minutes"].initial = min(settings.EPHEMERA_DEFAULT_DURATION_MINUTES, self.max_duration())

    @staticmethod
    def image_choices() -> list[str]:
        """Every image some rule allows (the rule that applies narrows it: the preview says)."""
        current = policy.current()
        images = list(current.images)
        for rule in current.rules:
            images += [i for i in rule.images or () if i not in images]
        return images

    @staticmethod
    def max_duration() -> int:
        """The longest any rule allows (the browser's bound; the rule that applies decides)."""
        return max(r.max_duration_minutes for r in policy.current().rules)

    @staticmethod
    def profile_choices() -> list[tuple[str, str, str]]:
        return [(value, label, PROFILE_HELP.get(value, "")) for value, label in Profile.choices]


class DecisionForm(forms.Form):
    verdict = forms.ChoiceField(choices=Verdict.choices)
    comment = FormTextField(required=False, max_length=2000)
