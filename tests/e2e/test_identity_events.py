"""Identity's events reach Kafka: other services learn of new users, verified emails and role changes."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from clients import PASSWORD, bearer, browser, call, sign_in, sign_up, token_from_mail, unique_email

from funmagic_contracts.envelope import decode
from funmagic_kit.testing import wait_until


async def _consumer_at_the_end(bootstrap: str) -> AIOKafkaConsumer:
    # No group: the consumer takes every partition itself and starts at the end.
    consumer = AIOKafkaConsumer(
        "identity.events", bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="latest"
    )
    await consumer.start()
    partitions = consumer.assignment()
    assert partitions, "identity.events has partitions"
    await consumer.seek_to_end(*partitions)
    for partition in partitions:
        await consumer.position(partition)  # resolves the end offset now, before the events are produced
    return consumer


async def _events_of(
    consumer: AIOKafkaConsumer, user_id: str, wanted: set[str], timeout: float = 30.0
) -> list:
    seen = []

    async def all_wanted_seen() -> bool:
        if wanted <= {e.type for e in seen}:
            return True
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            for record in records:
                envelope = decode(record.value)
                if envelope.subject == user_id:
                    assert record.key == user_id.encode(), "the key is the user id: per-user order"
                    seen.append(envelope)
        return False

    # getmany waits up to half a second for records: no pause between polls is needed.
    await wait_until(all_wanted_seen, timeout=timeout, what=f"{sorted(wanted)} of {user_id}", interval=0)
    return seen


async def test_sign_up_verification_and_role_change_are_published(
    platform, stack_env, identity_command
) -> None:
    consumer = await _consumer_at_the_end(stack_env["KAFKA_BOOTSTRAP_SERVERS"])
    try:
        email = unique_email("events")
        async with browser() as client:
            account = await sign_up(client, email, mode="token")
            token = await token_from_mail(email, "email-verification", stack_env["INTERNAL_API_TOKEN"])
            status, _, _ = await call(client, "POST", "/api/auth/verify-email", json={"token": token})
            assert status == 200
            root_email = unique_email("events-root")
            result = identity_command(
                "create-admin", "--email", root_email, extra_env={"FUNMAGIC_ADMIN_PASSWORD": PASSWORD}
            )
            assert result.returncode == 0, result.stderr
            _, root = await sign_in(client, root_email, mode="token")
            user_id = account["user"]["id"]
            status, _, _ = await call(
                client,
                "PUT",
                f"/api/admin/users/{user_id}/role",
                json={"role": "admin"},
                headers=bearer(root["access_token"]),
            )
            assert status == 200

        events = await _events_of(
            consumer, user_id, {"UserRegistered", "UserEmailVerified", "UserRoleChanged"}
        )
    finally:
        await consumer.stop()

    by_type = {e.type: e for e in events}
    assert [e.type for e in events] == ["UserRegistered", "UserEmailVerified", "UserRoleChanged"]
    assert by_type["UserRegistered"].data["email"] == email
    assert by_type["UserRegistered"].data["method"] == "email"
    assert by_type["UserRoleChanged"].data["new_role"] == "admin"
    assert by_type["UserRoleChanged"].data["changed_by"] == root["user"]["id"]
    assert all(e.source == "identity" for e in events)
