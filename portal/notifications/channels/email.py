"""Email: plain-text and HTML bodies with the deep link, to one recipient per outbox row.

EMAIL_URL picks the transport: `smtp://` plain, `smtp+tls://` STARTTLS (refused, never
downgraded, when the server doesn't offer it), `smtps://` TLS from the first byte; both TLS
forms verify the server's certificate. A message counts as delivered once the server accepted
it (its answer to DATA); a failure after that (QUIT) changes nothing. The Message-ID carries
the delivery id, so a re-send after a crash is recognisably the same message.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import string
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from portal.notifications.channels import DeliveryError, deadline
from portal.notifications.constants import TO_ADMINS, TO_APPROVERS

if TYPE_CHECKING:
    from portal.notifications.models import Notification

_SUBJECT_OK = set(string.printable) - set("\r\n\t\x0b\x0c")


def _subject(text: str) -> str:
    clean = "".join(ch if (ch in _SUBJECT_OK or ord(ch) > 127) and ch not in "\u2028\u2029" else " " for ch in text)
    clean = " ".join(clean.split())
    return f"[Ephemera] {clean[:150]}{'…' if len(clean) > 150 else ''}"


def _why(event: str) -> str:
    if event in TO_APPROVERS:
        return "you may decide this request"
    if event in TO_ADMINS:
        return "you are an Ephemera admin"
    return "this is your request"


def context(row: Notification) -> dict[str, Any]:
    payload = row.payload
    req = payload.get("request") or {}
    return {
        "p": payload,
        "req": req,
        "policy": req.get("policy") or {},
        "target": (f"node/{req.get('node')}" if req.get("kind") == "node"
                   else ("copy of " if req.get("kind") == "copy" else "") + f"{req.get('namespace')}/{req.get('pod')}:{req.get('container')}")
        if req else "",
        "why": _why(row.event),
        "profile_url": f"{settings.EPHEMERA_BASE_URL}{reverse('profile')}",
    }


def build(row: Notification) -> EmailMessage:
    ctx = context(row)
    msg = EmailMessage()
    msg["Subject"] = _subject(str(row.payload.get("message") or row.event))
    msg["From"] = settings.EPHEMERA_EMAIL_FROM
    msg["To"] = row.recipient
    msg["Date"] = formatdate(usegmt=True)
    host = urllib.parse.urlsplit(settings.EPHEMERA_BASE_URL).hostname or "ephemera"
    msg["Message-ID"] = f"<{row.delivery_id}@{host}>"
    msg["X-Ephemera-Event"] = row.event
    msg["X-Ephemera-Delivery"] = str(row.delivery_id)
    msg.set_content(render_to_string("notifications/email.txt", ctx))
    msg.add_alternative(render_to_string("notifications/email.html", ctx), subtype="html")
    return msg


def _cut(smtp: smtplib.SMTP) -> None:
    sock = getattr(smtp, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def send(row: Notification) -> None:
    server = settings.EPHEMERA_EMAIL
    if server is None:
        raise DeliveryError("EMAIL_URL is no longer set")
    msg = build(row)
    timeout = float(settings.EPHEMERA_NOTIFY_TIMEOUT_SECONDS)
    tls = ssl.create_default_context()
    smtp = smtplib.SMTP_SSL(timeout=timeout, context=tls) if server.scheme == "smtps" else smtplib.SMTP(timeout=timeout)
    try:
        with deadline(timeout, lambda: _cut(smtp)):
            smtp.connect(server.host, server.port)
            smtp.ehlo()
            if server.scheme == "smtp+tls":
                # starttls raises when the server doesn't offer it: never fall back to plain text.
                smtp.starttls(context=tls)
                smtp.ehlo()
            if server.username:
                smtp.login(server.username, server.password)
            smtp.send_message(msg, from_addr=parseaddr(settings.EPHEMERA_EMAIL_FROM)[1], to_addrs=[row.recipient])
            # Accepted: from here on nothing may turn this into a failure (and a second copy).
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
    except smtplib.SMTPRecipientsRefused as exc:
        codes = ", ".join(str(code) for code, _ in exc.recipients.values())
        raise DeliveryError(f"the mail server refused the recipient ({codes})") from None
    except smtplib.SMTPNotSupportedError:
        raise DeliveryError("the mail server does not offer STARTTLS (EMAIL_URL is smtp+tls://)") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"the mail server refused the login ({exc.smtp_code})") from None
    except smtplib.SMTPResponseException as exc:
        detail = exc.smtp_error.decode("utf-8", "replace")[:80] if isinstance(exc.smtp_error, bytes) else ""
        raise DeliveryError(f"the mail server answered {exc.smtp_code} {detail}".strip()) from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS to the mail server failed: {exc.reason or type(exc).__name__}") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"the mail server {server.host}:{server.port}: {type(exc).__name__}") from None
    finally:
        try:
            smtp.close()
        except OSError:
            pass
