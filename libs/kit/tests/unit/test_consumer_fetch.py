"""How a service's consumer fetches: woken by the first record after its long poll, unless the service says
its reactions may wait — then the broker gathers records for that long."""

from funmagic_kit.consumer import GATHERING_FETCH_MIN_BYTES
from funmagic_kit.runtime import ServiceSpec, consumer_fetch
from funmagic_kit.settings import ServiceSettings, load_settings

from .test_settings import BASE_ENV

ENV = {**BASE_ENV, "KAFKA_FETCH_MAX_WAIT_MS": "4000"}


def test_a_service_in_a_task_s_flow_is_woken_by_the_first_record_after_its_long_poll() -> None:
    settings = load_settings(ServiceSettings, env=ENV)

    fetch = consumer_fetch(ServiceSpec("tasks", ServiceSettings), settings)

    assert fetch == {"fetch_max_wait_ms": 4000, "fetch_min_bytes": 1}


def test_a_service_whose_reactions_may_wait_lets_the_broker_gather_for_that_long() -> None:
    settings = load_settings(ServiceSettings, env=ENV)

    fetch = consumer_fetch(ServiceSpec("storage", ServiceSettings, reactions_may_wait_ms=1_000), settings)

    assert fetch == {"fetch_max_wait_ms": 1_000, "fetch_min_bytes": GATHERING_FETCH_MIN_BYTES}
