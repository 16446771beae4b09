"""The pieces under the bad-input tests, one by one: the character check, the JSON parser,
and the service-level checks that hold for callers other than the API and the forms."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from rest_framework.exceptions import ParseError

from approvals.validation import validate_request
from portal.api_parsers import MAX_DEPTH, StrictJSONParser, too_deep
from portal.validators import (
    FORBIDDEN_CHARACTERS_MESSAGE,
    ApiTextField,
    ApiWholeNumberField,
    FormTextField,
    forbidden_character_errors,
    has_forbidden_characters,
)
from sessions.review import services as review_services
from tests.portal.api_world import build_world, snapshot


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\ud800", "\udfff", "x\udc00y"])
def test_nul_and_lone_surrogates_are_forbidden(text: str) -> None:
    assert has_forbidden_characters(text)


@pytest.mark.parametrize("text", ["", "plain", "tab\tand\nnewline", "é€😀", "\x01\x1b[31m", "\ufffd", "\U0010ffff"])
def test_other_text_is_not(text: str) -> None:
    assert not has_forbidden_characters(text)


def test_errors_name_only_the_bad_text_fields() -> None:
    errors = forbidden_character_errors({"a": "ok", "b": "x\x00", "c": 5, "d": None, "e": "\ud800"})
    assert set(errors) == {"b", "e"} and all(FORBIDDEN_CHARACTERS_MESSAGE in m[0] for m in errors.values())


def test_each_field_reports_one_message_not_the_frameworks_as_well() -> None:
    from rest_framework import serializers

    with pytest.raises(serializers.ValidationError) as api:
        ApiTextField().run_validation("a\x00")
    assert [str(m) for m in api.value.detail] == [f"This field {FORBIDDEN_CHARACTERS_MESSAGE}."]
    with pytest.raises(serializers.ValidationError) as api_surrogate:
        ApiTextField().run_validation("\ud800")
    assert [str(m) for m in api_surrogate.value.detail] == [f"This field {FORBIDDEN_CHARACTERS_MESSAGE}."]
    with pytest.raises(ValidationError) as form:
        FormTextField().clean("a\x00")
    assert form.value.messages == [f"This field {FORBIDDEN_CHARACTERS_MESSAGE}."]
    with pytest.raises(serializers.ValidationError) as number:
        ApiWholeNumberField().run_validation("1\x00")
    assert FORBIDDEN_CHARACTERS_MESSAGE in str(number.value.detail[0])


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 1e300, "1e999", True, "inf"])
def test_the_api_number_field_refuses_what_is_not_a_whole_number(value: Any) -> None:
    from rest_framework import serializers

    with pytest.raises(serializers.ValidationError):
        ApiWholeNumberField().run_validation(value)


# --- the JSON parser ------------------------------------------------------------------------


def _parse(text: str | bytes) -> Any:
    raw = text.encode() if isinstance(text, str) else text
    return StrictJSONParser().parse(io.BytesIO(raw), "application/json", {})


def test_ordinary_bodies_parse_as_before() -> None:
    assert _parse('{"minutes": 15, "reason": "é \\u00e9 \\ud83d\\ude00", "f": 1.5, "n": null}') == {
        "minutes": 15,
        "reason": "é é 😀",
        "f": 1.5,
        "n": None,
    }


@pytest.mark.parametrize(
    "text", ["1e999", "-1e999", "[1e400]", '{"a": {"b": 2e308}}', "NaN", "Infinity", "-Infinity", '{"x": NaN}']
)
def test_non_finite_numbers_are_refused(text: str) -> None:
    with pytest.raises(ParseError, match="finite"):
        _parse(text)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 500, 10_000, 100_000])
def test_nesting_past_the_limit_is_refused(depth: int) -> None:
    with pytest.raises(ParseError, match="levels deep"):
        _parse("[" * depth + "]" * depth)
    with pytest.raises(ParseError, match="levels deep"):
        _parse('{"a":' * depth + "0" + "}" * depth)


def test_nesting_up_to_the_limit_parses() -> None:
    assert too_deep(_parse("[" * MAX_DEPTH + "]" * MAX_DEPTH)) is False
    assert too_deep(json.loads("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))) is True


@pytest.mark.parametrize("raw", [b"\xff\xfe", b'{"a": "\xed\xa0\x80"}', b"{", b'{"a": 1} x', b"9" * 5000])
def test_undecodable_or_malformed_bodies_are_parse_errors(raw: bytes) -> None:
    with pytest.raises(ParseError):
        _parse(raw)


def test_the_api_answers_a_too_large_body_with_400(people: Any, api_client_for: Any, settings: Any, make_request: Any) -> None:
    """Django's upload limit holds for JSON too (DRF parses request.body)."""
    req = make_request(people.alice)
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = snapshot()
    resp = api_client_for(people.bob).post(
        f"/api/v1/requests/{req.pk}/approve", json.dumps({"comment": "x" * 2000}), content_type="application/json"
    )
    assert resp.status_code == 400
    assert snapshot() == before


def test_the_api_takes_json_only(people: Any, api_client_for: Any, make_request: Any) -> None:
    """A form-encoded body (what a cross-site HTML form can send) is 415, not parsed."""
    req = make_request(people.alice)
    before = snapshot()
    resp = api_client_for(people.bob).post(f"/api/v1/requests/{req.pk}/approve", {"comment": "ok"})  # multipart
    assert resp.status_code == 415
    assert snapshot() == before


# --- the services, for every caller -------------------------------------------------------


def _request(**overrides: Any) -> dict[str, Any]:
    # An invalid namespace keeps the cluster out of it: these are checks of shape only.
    fields = {
        "kind": "pod",
        "namespace": "Bad_Name",
        "pod": "p",
        "container": "c",
        "node": "",
        "image": "busybox",
        "profile": "general",
        "reason": "why",
        "duration_minutes": 15,
    }
    fields.update(overrides)
    return fields


@pytest.mark.parametrize("duration", [float("inf"), float("-inf"), float("nan"), Decimal("Infinity"), Decimal("NaN")])
def test_a_non_finite_duration_is_a_field_error_not_an_overflow(duration: Any, settings: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_request(**_request(duration_minutes=duration))
    assert "duration_minutes" in exc.value.message_dict


@pytest.mark.parametrize("field", ["kind", "namespace", "pod", "container", "image", "profile", "reason", "duration_minutes"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800"])
def test_every_request_field_refuses_forbidden_characters_with_one_message(field: str, bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_request(**_request(**{field: f"x{bad}"}))
    errors = exc.value.message_dict
    assert errors[field] == [f"This field {FORBIDDEN_CHARACTERS_MESSAGE}."], errors


def test_a_review_note_with_nul_is_refused_by_the_service(alice: Any, dave: Any, make_request: Any) -> None:
    world = build_world(alice, make_request)
    before = snapshot()
    with pytest.raises(ValidationError) as exc:
        review_services.session_mark_reviewed(session_id=world.ended.pk, reviewer=dave, note="ok\x00")
    assert "note" in exc.value.message_dict
    assert snapshot() == before
