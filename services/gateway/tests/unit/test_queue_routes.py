"""The queue monitor's routes: each documented for admins with its answer, and every dead-letter topic
reachable through a path segment the gateway forwards."""

from __future__ import annotations

import pytest

from funmagic_contracts.api.queue import DEAD_LETTER_KEYS, dead_letter_key
from funmagic_contracts.topics import DEAD_LETTER_TOPICS
from funmagic_gateway.bootstrap import Gateway
from funmagic_gateway.entrypoints.forwarding import safe_id

ROUTES = {
    ("get", "/api/admin/queue/lag"): "QueueLag",
    ("get", "/api/admin/queue/dead-letters"): "DeadLetterTopicList",
    ("get", "/api/admin/queue/dead-letters/{topic}/messages"): "DeadLetterPage",
    ("post", "/api/admin/queue/dead-letters/{topic}/replay"): "ReplayResult",
    ("get", "/api/admin/queue/step-jobs"): "StepJobStats",
    ("get", "/api/admin/queue/limiter"): "LimiterStates",
    ("get", "/api/admin/queue/circuits"): "CircuitStates",
}


async def test_every_queue_route_is_for_admins_and_documents_its_answer(gateway: Gateway) -> None:
    paths = gateway.api.document["paths"]
    documented = {
        (method, path)
        for path, item in paths.items()
        if path.startswith("/api/admin/queue")
        for method in item
    }

    assert documented == set(ROUTES)
    for (method, path), reply in ROUTES.items():
        operation = paths[path][method]
        assert operation["security"] == [{"bearer": []}, {"cookie": []}], path
        assert {"401", "403"} <= set(operation["responses"]), path
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{reply}"}, path
    replay = paths["/api/admin/queue/dead-letters/{topic}/replay"]["post"]
    assert replay["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ReplayRequest"
    }


@pytest.mark.parametrize("topic", [t.name for t in DEAD_LETTER_TOPICS])
def test_every_dead_letter_topic_has_a_key_the_gateway_forwards(topic: str) -> None:
    key = dead_letter_key(topic)

    assert safe_id(key) == key
    assert DEAD_LETTER_KEYS[key] == topic
