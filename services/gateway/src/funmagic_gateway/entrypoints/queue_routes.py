"""`/api/admin/queue/*` (admins): the queue monitor, every route a declared forward to providers —
consumer lag from Kafka's admin API with its trend, the dead-letter topics and their messages, the replay
of dead letters to their origin topic (once per event, audited), step jobs, the rate limiter and circuit
breakers; and `/api/admin/tasks/{task_id}/provider-calls`, a task's provider diagnostics (also kept by
providers)."""

from __future__ import annotations

from funmagic_contracts.api.diagnostics import TaskProviderCalls
from funmagic_contracts.api.queue import (
    MAX_REPLAY,
    CircuitStates,
    DeadLetterPage,
    DeadLetterQuery,
    DeadLetterTopicList,
    LimiterStates,
    QueueLag,
    ReplayRequest,
    ReplayResult,
    StepJobStats,
)
from funmagic_gateway.adapters.services import ServiceClient
from funmagic_gateway.entrypoints.forwarding import CURSOR_RULE, Forward, operations
from funmagic_kit.api import Operation

__all__ = ["queue_operations"]

TAG = "admin: queue"
PUBLIC, INTERNAL = "/api/admin/queue", "/v1/admin/queue"
TOPIC = "/dead-letters/{topic}"


def queue_operations(providers: ServiceClient) -> list[Operation]:
    return operations(
        Forward("GET", PUBLIC + "/lag", providers, INTERNAL + "/lag",
                "Consumer lag per group, topic and partition, with its recent trend", TAG, "queue_lag",
                access="admin", reply=QueueLag, errors=(503,),
                description="Read from Kafka's admin API at each call (committed and end offsets). `trend` "
                            "holds the last samples, one every few seconds. Dead-letter topics have no "
                            "consumer group: their messages wait for an admin."),
        Forward("GET", PUBLIC + "/dead-letters", providers, INTERNAL + "/dead-letters",
                "The dead-letter topics and how many messages each holds", TAG, "dead_letter_topics",
                access="admin", reply=DeadLetterTopicList, errors=(503,)),
        Forward("GET", PUBLIC + TOPIC + "/messages", providers, INTERNAL + TOPIC + "/messages",
                "A dead-letter topic's messages, newest first", TAG, "dead_letter_messages",
                access="admin", query=DeadLetterQuery, reply=DeadLetterPage, errors=(404, 503),
                description="`{topic}` is the topic's `key` (`identity-events-dlq`). Each message shows "
                            "why its consumer gave up (the dlq-* headers), its original headers, a preview "
                            "of its value and whether its event was replayed. " + CURSOR_RULE),
        Forward("POST", PUBLIC + TOPIC + "/replay", providers, INTERNAL + TOPIC + "/replay",
                "Publish dead letters again to their origin topic, each event once", TAG,
                "replay_dead_letters", access="admin", body=ReplayRequest, reply=ReplayResult,
                errors=(404, 503),
                description=f"Up to {MAX_REPLAY} messages by partition and offset. Each event is published "
                            "again once (its value byte for byte, its key, its headers without the dlq-* "
                            "ones), and the replay is kept in the audit log; asking again answers "
                            "`already_replayed` and publishes nothing."),
        Forward("GET", PUBLIC + "/step-jobs", providers, INTERNAL + "/step-jobs",
                "Unfinished step jobs per provider and state, with the oldest one's age", TAG,
                "queue_step_jobs", access="admin", reply=StepJobStats),
        Forward("GET", PUBLIC + "/limiter", providers, INTERNAL + "/limiter",
                "The rate limiter per provider and scope: in flight, calls this minute and today", TAG,
                "queue_limiter", access="admin", reply=LimiterStates, errors=(503,)),
        Forward("GET", PUBLIC + "/circuits", providers, INTERNAL + "/circuits",
                "The providers' circuit breakers (of the replica that answers)", TAG, "queue_circuits",
                access="admin", reply=CircuitStates),
        # A task's page, but providers' data: the calls its step jobs made to their providers.
        Forward("GET", "/api/admin/tasks/{task_id}/provider-calls", providers,
                "/v1/admin/tasks/{task_id}/provider-calls",
                "The calls a task's step jobs made to their providers (redacted)", "admin: tasks",
                "admin_task_provider_calls", access="admin", reply=TaskProviderCalls, errors=(404,),
                description="Per step job (each step and attempt): method, URL without query, status, "
                            "duration, the provider's request ids and the JSON bodies with images, base64 "
                            "data and secrets replaced by markers, each body capped at 8 KiB. Never a key "
                            "or another header. A task with no step jobs has no items."),
    )  # fmt: skip
