"""Sign-in, session and TLS settings: a bad value stops start-up with a message naming it."""

from __future__ import annotations

import pytest

from tests.portal.test_settings import start


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"EPHEMERA_LOGIN_ACCOUNT_FAILURES": "0"}, "EPHEMERA_LOGIN_ACCOUNT_FAILURES=0 is below the minimum 1"),
        ({"EPHEMERA_LOGIN_ADDRESS_FAILURES": "many"}, "EPHEMERA_LOGIN_ADDRESS_FAILURES='many' is not an integer"),
        ({"EPHEMERA_LOGIN_WINDOW_MINUTES": "-5"}, "EPHEMERA_LOGIN_WINDOW_MINUTES=-5 is below the minimum 1"),
        ({"EPHEMERA_SESSION_MAX_AGE_HOURS": "8h"}, "EPHEMERA_SESSION_MAX_AGE_HOURS='8h' is not an integer"),
        ({"EPHEMERA_SESSION_IDLE_MINUTES": "0"}, "EPHEMERA_SESSION_IDLE_MINUTES=0 is below the minimum 1"),
        ({"EPHEMERA_SESSION_MAX_AGE_HOURS": "1", "EPHEMERA_SESSION_IDLE_MINUTES": "90"}, "EPHEMERA_SESSION_IDLE_MINUTES is above EPHEMERA_SESSION_MAX_AGE_HOURS"),
    ],
)
def test_it_refuses_to_start_with_a_bad_security_setting(env: dict[str, str], message: str) -> None:
    result = start({"EPHEMERA_DEMO": "1", **env})
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]


def test_the_sign_in_limits_are_read_from_the_environment() -> None:
    result = start(
        {"EPHEMERA_DEMO": "1", "EPHEMERA_LOGIN_ACCOUNT_FAILURES": "3", "EPHEMERA_LOGIN_ADDRESS_FAILURES": "50",
         "EPHEMERA_LOGIN_WINDOW_MINUTES": "30", "EPHEMERA_BEHIND_TLS_PROXY": "1"},
        probe="EPHEMERA_LOGIN_ACCOUNT_FAILURES,EPHEMERA_LOGIN_ADDRESS_FAILURES,EPHEMERA_LOGIN_WINDOW_MINUTES,EPHEMERA_BEHIND_TLS_PROXY",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'EPHEMERA_LOGIN_ACCOUNT_FAILURES': 3, 'EPHEMERA_LOGIN_ADDRESS_FAILURES': 50" in result.stdout
    assert "'EPHEMERA_LOGIN_WINDOW_MINUTES': 30, 'EPHEMERA_BEHIND_TLS_PROXY': True" in result.stdout


def test_web_sessions_last_8_hours_by_default() -> None:
    result = start({"EPHEMERA_DEMO": "1"}, probe="SESSION_COOKIE_AGE,EPHEMERA_SESSION_IDLE_MINUTES")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'SESSION_COOKIE_AGE': 28800, 'EPHEMERA_SESSION_IDLE_MINUTES': 60" in result.stdout


def test_the_session_age_is_read_from_the_environment() -> None:
    result = start({"EPHEMERA_DEMO": "1", "EPHEMERA_SESSION_MAX_AGE_HOURS": "2", "EPHEMERA_SESSION_IDLE_MINUTES": "15"},
                   probe="SESSION_COOKIE_AGE,EPHEMERA_SESSION_IDLE_MINUTES")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "'SESSION_COOKIE_AGE': 7200, 'EPHEMERA_SESSION_IDLE_MINUTES': 15" in result.stdout
