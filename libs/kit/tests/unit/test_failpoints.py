import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from funmagic_contracts.envelope import Envelope, encode
from funmagic_contracts.identity.events import UserRegistered
from funmagic_contracts.topics import IDENTITY_EVENTS
from funmagic_kit.consumer import Subscription
from funmagic_kit.errors import PermanentError
from funmagic_kit.failpoints import Failpoints, PoisonedEvents
from funmagic_kit.testing import in_memory_consumer


async def test_an_unset_failpoint_passes_straight_through() -> None:
    await asyncio.wait_for(Failpoints("").reach("relay.before_publish"), timeout=1)


async def test_a_hang_failpoint_marks_its_file_and_never_returns(tmp_path) -> None:
    failpoints = Failpoints("relay.before_publish=hang", str(tmp_path))

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(failpoints.reach("relay.before_publish"), timeout=0.1)
    assert (tmp_path / "relay.before_publish").exists()


# --- poisoned events --------------------------------------------------------------------------------


def test_without_a_poison_directory_there_is_no_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNMAGIC_POISON_DIR", raising=False)
    assert PoisonedEvents.from_environment() is None


def test_an_event_named_by_a_file_is_poisoned_until_the_file_is_gone(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUNMAGIC_POISON_DIR", str(tmp_path))
    poisoned = PoisonedEvents.from_environment()
    assert poisoned is not None
    event_id = uuid.uuid4()
    poisoned.check(event_id)  # no file: not poisoned

    (tmp_path / str(event_id)).touch()
    with pytest.raises(PermanentError, match="poisoned by a test hook"):
        poisoned.check(event_id)
    poisoned.check(uuid.uuid4())  # another event is not

    (tmp_path / str(event_id)).unlink()
    poisoned.check(event_id)


async def test_the_consumer_dead_letters_a_poisoned_event_without_running_its_handler(tmp_path) -> None:
    handled: list[str] = []

    async def on_registered(event: UserRegistered, envelope: Envelope, uow: None) -> None:
        handled.append(event.user_id)

    subscription = Subscription(IDENTITY_EVENTS).on(UserRegistered, on_registered)
    envelope = Envelope.wrap(
        UserRegistered(
            user_id="u-1",
            email="ada@example.com",
            name="Ada",
            method="email",
            registered_at=datetime.now(UTC),
        )
    )
    (tmp_path / str(envelope.id)).touch()

    async with in_memory_consumer("kit-tests", [subscription], poisoned=PoisonedEvents(tmp_path)) as consumer:
        assert await consumer.deliver(envelope) == "dead_lettered"
        assert handled == []
        ((topic, value, headers),) = consumer.dead_letters.sent
        assert (topic, value) == ("identity.events.dlq", encode(envelope))
        assert dict(headers)["dlq-error"] == b"PermanentError: poisoned by a test hook"
        assert dict(headers)["dlq-attempts"] == b"1"

        (tmp_path / str(envelope.id)).unlink()  # the handler is "fixed"
        assert await consumer.deliver(envelope) == "handled"
        assert handled == ["u-1"]
