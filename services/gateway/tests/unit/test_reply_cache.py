"""The catalog reply cache: entries for a few seconds, emptied by a change, never refilled from before it."""

from __future__ import annotations

from funmagic_gateway.adapters.reply_cache import CachedReply, ReplyCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


TOOLS = CachedReply(b'{"items":[]}', "application/json")


def test_an_entry_is_served_until_its_time_is_up() -> None:
    clock = Clock()
    cache = ReplyCache(ttl_seconds=5, clock=clock)
    cache.put("tools", TOOLS, fetched_in=cache.generation)

    clock.now += 4.9
    fresh = cache.get("tools")
    clock.now += 0.1
    expired = cache.get("tools")

    assert fresh == TOOLS
    assert expired is None
    assert len(cache) == 0


def test_a_clear_empties_the_cache() -> None:
    cache = ReplyCache()
    cache.put("tools", TOOLS, fetched_in=cache.generation)

    cache.clear()

    assert cache.get("tools") is None


def test_an_answer_fetched_before_a_clear_is_not_kept() -> None:
    cache = ReplyCache()
    fetched_in = cache.generation  # the request asks the service…

    cache.clear()  # …a change arrives meanwhile…
    cache.put("tools", TOOLS, fetched_in=fetched_in)  # …and the older answer comes back

    assert cache.get("tools") is None


def test_the_least_recently_stored_entry_goes_first_when_full() -> None:
    cache = ReplyCache(max_entries=2)
    for key in ("a", "b", "c"):
        cache.put(key, TOOLS, fetched_in=cache.generation)

    assert [cache.get(key) is not None for key in ("a", "b", "c")] == [False, True, True]
