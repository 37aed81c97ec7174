"""Kafka subscriptions of identity: it reacts to no other service's events yet."""

from collections.abc import Sequence

from funmagic_kit.consumer import Subscription
from funmagic_kit.runtime import Runtime


def subscriptions(runtime: Runtime) -> Sequence[Subscription]:
    return ()
