"""Queued mail is delivered over SMTP (a real SMTP server in the test), then its body is erased."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from psycopg_pool import AsyncConnectionPool

from funmagic_identity.adapters.mail import MailDispatcher, SmtpSender, SmtpSettings
from funmagic_identity.adapters.postgres import IdentityUnitOfWork
from funmagic_identity.application.ports import OutgoingMail
from funmagic_kit.crypto import SecretBox, generate_secret_key
from funmagic_kit.db import create_pool
from funmagic_kit.testing import scratch_database

pytestmark = pytest.mark.integration


class Inbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
async def mail_pool() -> AsyncIterator[AsyncConnectionPool]:
    postgres_url = os.environ.get("POSTGRES_URL")
    if not postgres_url:
        pytest.fail("POSTGRES_URL is unset: run the tests with the local stack (make test)")
    async with scratch_database(
        postgres_url, "identity_mail", ("identity", "funmagic_identity.migrations")
    ) as dsn:
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            yield pool
        finally:
            await pool.close()


def _settings(port: int) -> SmtpSettings:
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        username="",
        password="",
        starttls=False,
        sender="FunMagic <no-reply@test>",
    )


async def _queue(pool: AsyncConnectionPool, secrets: SecretBox, body: str) -> None:
    async with IdentityUnitOfWork(pool, secrets) as uow:
        mail = OutgoingMail(
            recipient="ada@example.com", subject="Confirm", body=body, purpose="email-verification"
        )
        await uow.store.queue_mail(mail, datetime.now(UTC))


async def test_a_queued_mail_is_sent_and_its_link_erased(mail_pool, smtp_server) -> None:
    inbox, port = smtp_server
    secrets = SecretBox.from_base64(generate_secret_key())
    await _queue(mail_pool, secrets, "Click https://app/verify-email?token=one-time-token-123")
    dispatcher = MailDispatcher(mail_pool, secrets, SmtpSender(_settings(port)))

    assert await dispatcher.deliver_one() is True
    assert await dispatcher.deliver_one() is False, "nothing else waits"

    assert len(inbox.messages) == 1
    message = message_from_bytes(inbox.messages[0])
    assert message["To"] == "ada@example.com"
    assert message["Subject"] == "Confirm"
    assert "one-time-token-123" in message.get_payload(decode=True).decode()
    async with mail_pool.connection() as conn:
        row = await (await conn.execute("SELECT sent_at, body, attempts FROM outgoing_mail")).fetchone()
    assert row["sent_at"] is not None
    assert row["body"] is None, "a delivered link is not kept"
    assert row["attempts"] == 1


async def test_an_unreachable_smtp_server_keeps_the_mail_for_a_retry(mail_pool, smtp_server) -> None:
    inbox, port = smtp_server
    secrets = SecretBox.from_base64(generate_secret_key())
    await _queue(mail_pool, secrets, "a body")
    down = MailDispatcher(mail_pool, secrets, SmtpSender(_settings(_free_port())))

    assert await down.deliver_one() is False

    async with mail_pool.connection() as conn:
        row = await (
            await conn.execute("SELECT sent_at, body, attempts, last_error FROM outgoing_mail")
        ).fetchone()
    assert row["sent_at"] is None
    assert row["body"] is not None
    assert row["attempts"] == 1
    assert "ConnectionRefusedError" in row["last_error"]

    assert await MailDispatcher(mail_pool, secrets, SmtpSender(_settings(port))).deliver_one() is True
    assert len(inbox.messages) == 1
