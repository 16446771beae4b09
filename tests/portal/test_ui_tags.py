"""Template helpers of portal/templatetags/ephemera_ui.py."""

from __future__ import annotations

from portal.templatetags.ephemera_ui import ticks_as_code


def test_backticks_become_code_and_everything_is_escaped() -> None:
    assert ticks_as_code("run `chroot /host` as <root>") == "run <code>chroot /host</code> as &lt;root&gt;"
    assert ticks_as_code("`<b>`") == "<code>&lt;b&gt;</code>"
    assert ticks_as_code("one ` only <x>") == "one ` only &lt;x&gt;"  # unbalanced: shown as written
    assert ticks_as_code("") == ""
