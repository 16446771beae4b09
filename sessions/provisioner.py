"""Runs session provisioning off the request thread.

Provisioning waits on the cluster (image pulls can take minutes), so it runs in a daemon
thread started after the approving transaction commits. Its state is all in the database,
so a crash mid-way leaves a `provisioning` session that the next `session_provision` call
(or an operator) can pick up; nothing lives only in this thread.
"""

from __future__ import annotations

import logging
import threading
import uuid

from django.db import close_old_connections, connection

logger = logging.getLogger(__name__)


def _run(session_id: str) -> None:
    from sessions.services import session_provision

    close_old_connections()
    try:
        session_provision(session_id=session_id)
    except Exception:
        # session_provision records expected failures itself; this is the unexpected kind.
        logger.exception("provisioning session %s crashed", session_id)
    finally:
        connection.close()


def start(session_id: uuid.UUID | str) -> threading.Thread:
    thread = threading.Thread(target=_run, args=(str(session_id),), name=f"provision-{session_id}", daemon=True)
    thread.start()
    return thread
