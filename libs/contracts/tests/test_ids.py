import os
import threading
import time
import uuid

from funmagic_contracts.ids import UUID7Generator, uuid7, uuid7_unix_ms


def test_a_uuid7_has_version_7_and_the_rfc_variant():
    value = uuid7()

    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert str(value)[14] == "7"
    assert str(value)[19] in "89ab"


def test_a_uuid7_carries_the_current_unix_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000

    assert before <= uuid7_unix_ms(value) <= after


def test_ids_made_in_a_tight_loop_are_unique_and_strictly_increasing():
    ids = [uuid7() for _ in range(20_000)]

    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert [str(i) for i in ids] == sorted(str(i) for i in ids)


def test_ids_stay_increasing_when_the_clock_stalls_or_steps_back():
    readings = iter([5_000, 5_000, 5_000, 4_000, 3_000, 6_000])
    generate = UUID7Generator(clock_ns=lambda: next(readings) * 1_000_000)

    ids = [generate() for _ in range(6)]

    assert ids == sorted(ids)
    assert len(set(ids)) == 6
    assert [uuid7_unix_ms(i) for i in ids] == [5_000, 5_000, 5_000, 5_000, 5_000, 6_000]


def test_a_full_counter_moves_the_timestamp_on_instead_of_wrapping():
    generate = UUID7Generator(clock_ns=lambda: 1_000_000_000, random_bits=lambda bits: (1 << bits) - 1)
    first = generate()
    generate._counter = (1 << 42) - 1  # white-box: the counter is at its maximum
    second = generate()

    assert second > first
    assert uuid7_unix_ms(second) == uuid7_unix_ms(first) + 1


def test_ids_from_many_threads_are_unique():
    results: list[uuid.UUID] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [uuid7() for _ in range(2_000)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(set(results)) == 16_000


def test_a_forked_child_never_draws_the_random_bytes_its_parent_draws():
    uuid7()  # the parent has random bytes in hand before it forks
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(writing, "\n".join(str(uuid7()) for _ in range(50)).encode())
        os._exit(0)
    os.close(writing)
    parents = [uuid7() for _ in range(50)]
    with os.fdopen(reading) as pipe:
        childs = [uuid.UUID(line) for line in pipe.read().splitlines()]
    os.waitpid(child, 0)

    random_tails = {value.int & 0xFFFFFFFF for value in parents}
    assert len(childs) == 50
    assert random_tails.isdisjoint(value.int & 0xFFFFFFFF for value in childs)
