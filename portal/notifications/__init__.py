"""Notifications: what happened, told to the people who need to act, through a transactional outbox.

Each notification is a row (`models.Notification`) written by `outbox` in the same transaction
as the state change it reports, right next to that change's audit event: a rolled-back change
tells nobody, a committed one is never forgotten. Nothing is sent from a request or websocket
handler: `manage.py run_worker` (`worker`) delivers the rows (`delivery`) through the channels
(`channels/`), retrying with backoff, and finds the sessions about to end.

Nothing here is imported by the settings except `config`, which reads no model.
"""
