"""Indexes for the session history's searches, on PostgreSQL only (SQLite has no trigram index).

- Command search (`text__icontains`, which Django writes as UPPER(text) LIKE UPPER('%...%'))
  gets a pg_trgm GIN index on that very expression: 100,000 sessions, 196 ms -> a few ms
  (bench/history.py, docs/performance.md).
Not in the models' Meta: the index needs an extension and an operator class SQLite lacks, and
Django's state does not need to know it (makemigrations stays clean).

pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it without being
superuser. Where it can't be created, the migration says so and goes on without the index
(command search still works, only slower); a DBA can then run the two statements below.
"""

import sys

from django.db import DatabaseError, migrations, transaction

EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
COMMAND_INDEX = (
    "CREATE INDEX IF NOT EXISTS sessioncommand_text_trgm ON debug_sessions_sessioncommand "
    "USING gin ((UPPER(text::text)) gin_trgm_ops)"
)


def add_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a savepoint: a refusal must not abort the migration
            schema_editor.execute(EXTENSION)
    except DatabaseError as exc:
        sys.stderr.write(
            f"\n  pg_trgm is not available ({str(exc).strip()}): the session history's command search\n"
            f"  works without its index, only slower. To add it: {EXTENSION}; {COMMAND_INDEX};\n"
        )
        return
    schema_editor.execute(COMMAND_INDEX)


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS sessioncommand_text_trgm")


class Migration(migrations.Migration):

    dependencies = [
        ("debug_sessions", "0010_session_clock"),
    ]

    operations = [
        migrations.RunPython(add_indexes, drop_indexes, elidable=False),
    ]
