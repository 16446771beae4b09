"""The recordings' writer thread keeps its database connection while busy, and lets it go."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, connection

from sessions.recording.writer import Writer


def test_the_writer_keeps_its_connection_while_busy_and_closes_it_when_asked_or_idle(transactional_db: Any) -> None:
    writer = Writer("test-writer")
    opened: list[Any] = []

    def create(name: str) -> None:
        Group.objects.create(name=name)
        opened.append(connection.connection)

    writer.submit(create, name="one").result(10)
    writer.submit(create, name="two").result(10)
    assert set(Group.objects.values_list("name", flat=True)) == {"one", "two"}  # committed
    assert opened[0] is not None and opened[1] is opened[0]  # one connection for both writes
    with pytest.raises(IntegrityError):
        writer.submit(create, name="one").result(10)  # the caller gets the error (and retries)
    writer.submit(lambda: opened.append(connection.connection)).result(10)
    assert opened[-1] is None  # a connection that failed is not reused
    writer.submit(create, name="three").result(10)
    writer.close_connection().result(10)
    writer.submit(lambda: opened.append(connection.connection)).result(10)
    assert opened[-1] is None  # closed: nothing held for a database restart or a drop
