"""The one check for text that comes from outside, and the form and API fields that apply it.

Two kinds of character never belong in anything a person types here, and each crashed the
portal when it reached the database or an encoder: NUL (PostgreSQL refuses it in text and in
JSON; psycopg raises before the query is sent) and a lone UTF-16 surrogate (U+D800..U+DFFF,
which JSON's `\\ud800` escape produces and no UTF-8 encoder can write). They are refused at
the edge, against the field that carried them, so the services and the audit trail only ever
see text every database can store.

Django's and DRF's own NUL/surrogate validators are replaced (not stacked) so each field
reports one message, the same on every way in.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.validators import ProhibitSurrogateCharactersValidator

FORBIDDEN_CHARACTERS_MESSAGE = "contains characters that are not allowed (NUL or an unpaired UTF-16 surrogate)"
FORBIDDEN_CHARACTERS_CODE = "forbidden_characters"

# In a Python str every surrogate code point is unpaired: a valid pair decodes to one character.
_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")


def has_forbidden_characters(value: str) -> bool:
    return _FORBIDDEN.search(value) is not None


def forbidden_characters_message() -> str:
    return f"This field {FORBIDDEN_CHARACTERS_MESSAGE}."


def reject_forbidden_characters(value: Any) -> None:
    """Validator (Django forms, DRF fields, models): refuse a str carrying NUL or a lone surrogate."""
    if isinstance(value, str) and has_forbidden_characters(value):
        raise ValidationError(forbidden_characters_message(), code=FORBIDDEN_CHARACTERS_CODE)


def forbidden_character_errors(values: Mapping[str, Any]) -> dict[str, list[str]]:
    """{field: [message]} for every str value that carries a forbidden character (others ignored)."""
    return {
        field: [forbidden_characters_message()]
        for field, value in values.items()
        if isinstance(value, str) and has_forbidden_characters(value)
    }


def forbidden_character_messages(values: Mapping[str, Any]) -> list[str]:
    """The same, as "Field: message" lines for pages that answer with flash messages."""
    return [f"{field[:1].upper()}{field[1:]}: {msgs[0]}" for field, msgs in forbidden_character_errors(values).items()]


class FormTextField(forms.CharField):
    """forms.CharField with the project's character check instead of Django's NUL-only one."""

    default_validators = [reject_forbidden_characters]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]


class ApiTextField(serializers.CharField):
    """serializers.CharField with the project's character check instead of DRF's two."""

    validators: list[Any]  # DRF's property (a list once set); declared for the type checker

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        own = ProhibitNullCharactersValidator | ProhibitSurrogateCharactersValidator  # DRF uses Django's NUL one
        kept = [v for v in self.validators if not isinstance(v, own)]
        self.validators = [*kept, reject_forbidden_characters]


class ApiWholeNumberField(serializers.IntegerField):
    """serializers.IntegerField that names forbidden characters in a numeric string as such.

    DRF's IntegerField converts through str(), so inf, NaN and floats too large for an int
    are already "not a valid integer" (never an OverflowError); the JSON parser refuses
    non-finite numbers before this.
    """

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and has_forbidden_characters(data):
            raise serializers.ValidationError(forbidden_characters_message(), code=FORBIDDEN_CHARACTERS_CODE)
        return super().to_internal_value(data)  # type: ignore[no-any-return]
