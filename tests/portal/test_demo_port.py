"""`make run` takes its port from PORT (the README says so); a bad PORT is one clear line."""

from __future__ import annotations

import pytest

from portal.demo import demo_port


def test_the_port_defaults_to_8000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORT", raising=False)
    assert demo_port() == 8000


def test_port_sets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "8123")
    assert demo_port() == 8123


@pytest.mark.parametrize("bad", ["eighty", "0", "70000", "-1", "80.5"])
def test_a_bad_port_is_one_line_naming_it(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", bad)
    with pytest.raises(SystemExit) as info:
        demo_port()
    assert str(info.value) == f"ephemera: PORT={bad!r} is not a port number (1-65535), e.g. PORT=8080 make run"
