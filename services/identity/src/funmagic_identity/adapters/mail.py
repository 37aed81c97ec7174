"""Mail: queued in `outgoing_mail` by the handlers' units of work, delivered here.

`sink` mode (development, tests) keeps every message in the table, readable through the dev mailbox.
`smtp` mode delivers queued messages with retries (`MailDispatcher`, through a `MailSender`: the SMTP
server, or a stand-in in tests) and then erases the body, which carries single-use links that should not
outlive their delivery.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from funmagic_kit.crypto import SecretBox
from funmagic_kit.errors import TransientError

__all__ = ["DevMailbox", "MailDispatcher", "MailSender", "SmtpSender", "SmtpSettings"]

log = logging.getLogger(__name__)

_PURPOSE = "mail-body"
MAX_ATTEMPTS = 10


class DevMailbox:
    """Reads the messages the sink kept, newest first."""

    def __init__(self, pool: AsyncConnectionPool, secrets: SecretBox) -> None:
        self._pool = pool
        self._secrets = secrets

    async def messages_to(self, recipient: str | None, limit: int = 20) -> list[dict[str, Any]]:
        """The messages to `recipient`, or to anyone when it is None."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id::text, recipient, subject, body, purpose, created_at FROM outgoing_mail "
                "WHERE %(to)s::text IS NULL OR recipient = %(to)s ORDER BY created_at DESC LIMIT %(limit)s",
                {"to": recipient, "limit": limit},
            )
            rows = await cursor.fetchall()
        return [
            {
                "id": row["id"],
                "to": row["recipient"],
                "subject": row["subject"],
                "purpose": row["purpose"],
                "created_at": row["created_at"].isoformat(),
                "body": self._secrets.decrypt(bytes(row["body"]), purpose=_PURPOSE).decode()
                if row["body"] is not None
                else None,
            }
            for row in rows
        ]


class MailSender(Protocol):
    async def send(self, recipient: str, subject: str, body: str) -> None:
        """Hands one message over for delivery; a TransientError when it could not (tried again later)."""
        ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str
    password: str
    starttls: bool
    sender: str


class SmtpSender:
    """Sends through an SMTP server, off the event loop (smtplib blocks)."""

    def __init__(self, smtp: SmtpSettings) -> None:
        self._smtp = smtp

    async def send(self, recipient: str, subject: str, body: str) -> None:
        try:
            await asyncio.to_thread(self._send, recipient, subject, body)
        except (OSError, smtplib.SMTPException) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error

    def _send(self, recipient: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = recipient
        message["Subject"] = subject
        message.set_content(body)
        with smtplib.SMTP(self._smtp.host, self._smtp.port, timeout=15) as client:
            if self._smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if self._smtp.username:
                client.login(self._smtp.username, self._smtp.password)
            client.send_message(message)


class MailDispatcher:
    """Delivers unsent mail, oldest first, one row lock per message (run it with `Periodic`)."""

    def __init__(self, pool: AsyncConnectionPool, secrets: SecretBox, sender: MailSender) -> None:
        self._pool = pool
        self._secrets = secrets
        self._sender = sender

    async def deliver_pending(self) -> int:
        delivered = 0
        while await self.deliver_one():
            delivered += 1
        return delivered

    async def deliver_one(self) -> bool:
        async with self._pool.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "SELECT id, recipient, subject, body, attempts FROM outgoing_mail "
                "WHERE sent_at IS NULL AND attempts < %s ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                (MAX_ATTEMPTS,),
            )
            row = await cursor.fetchone()
            if row is None:
                return False
            body = self._secrets.decrypt(bytes(row["body"]), purpose=_PURPOSE).decode()
            try:
                await self._sender.send(row["recipient"], row["subject"], body)
            except TransientError as error:
                await conn.execute(
                    "UPDATE outgoing_mail SET attempts = attempts + 1, last_error = %s WHERE id = %s",
                    (str(error)[:300], row["id"]),
                )
                return False
            await conn.execute(
                "UPDATE outgoing_mail SET sent_at = now(), body = NULL, attempts = attempts + 1 "
                "WHERE id = %s",
                (row["id"],),
            )
            return True
