"""Two replicas of every service on the composed platform, sharing the work as they would under any
orchestrator: internal HTTP spread by Docker's DNS over the replicas, nginx spreading the API over the
gateways, each service's consumers one Kafka consumer group, each outbox relay one leader at a time.

One replica of tasks, credits and providers — each its relay's leader — is SIGKILLed while tasks are in
flight: the leadership moves to the other replica, the partitions are rebalanced to it, every task
still ends, and every user's credits match what their tasks were charged, to the credit.
"""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest
from clients import bearer, browser, call
from test_main_job import main_job
from workload import assert_ledgers_exact, every_task_ends, new_user, start_task

from funmagic_kit.outbox import RELAY_LOCK_KEY
from funmagic_kit.testing import wait_until

SERVICES = ("gateway", "identity", "tasks", "credits", "storage", "providers")
USERS = 5
TASKS_PER_USER = 8  # under the gateway's default task-creation limit of 10 a minute per user
# The outbox relay's advisory lock as pg_locks shows a bigint key: its high and low 32 bits.
RELAY_LOCK = (RELAY_LOCK_KEY >> 32, RELAY_LOCK_KEY & 0xFFFFFFFF)


def scale_every_service(compose, replicas: int, *options: str) -> None:
    scale = [f"--scale={service}={replicas}" for service in SERVICES]
    compose("up", "-d", *options, "--wait", "--wait-timeout", "300", *scale)


@pytest.fixture(scope="module")
def two_replicas(compose):
    scale_every_service(compose, 2, "--no-recreate")
    yield
    scale_every_service(compose, 1)


def containers(compose, service: str) -> list[dict]:
    listed = compose("ps", "--format", "json", service).stdout
    rows = [json.loads(line) for line in listed.splitlines() if line.strip()]
    return sorted(rows, key=lambda row: row["Name"])


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result.stdout.strip()


def address_of(container: str) -> str:
    return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", container)


def relay_leader_address(compose, service: str) -> str | None:
    """The address of the replica whose outbox relay holds the lock in the service's database."""
    query = (
        "SELECT host(a.client_addr) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted "
        f"AND l.classid = {RELAY_LOCK[0]} AND l.objid = {RELAY_LOCK[1]} "
        "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    result = compose(
        "exec", "-T", "postgres", "psql", "-U", "postgres", "-d", f"funmagic_{service}", "-Atc", query
    )
    return result.stdout.strip() or None


async def relay_leader(compose, service: str) -> str:
    """The name of the container that leads the service's relay, once one does."""
    found: list[str] = []

    async def led() -> bool:
        address = await asyncio.to_thread(relay_leader_address, compose, service)
        by_address = {address_of(c["Name"]): c["Name"] for c in containers(compose, service)}
        found[:] = [by_address[address]] if address in by_address else []
        return bool(found)

    await wait_until(led, timeout=30, what=f"a {service} replica to lead the outbox relay", interval=0.5)
    return found[0]


async def test_every_service_runs_two_healthy_replicas(compose, two_replicas) -> None:
    for service in SERVICES:
        running = containers(compose, service)
        assert len(running) == 2, running
        assert all(c["Health"] == "healthy" for c in running), running


async def test_the_main_job_passes_on_two_replicas_of_everything(
    two_replicas, seeded_tools, s3_origin
) -> None:
    await main_job(s3_origin)


async def test_a_killed_leader_hands_over_and_every_task_ends_with_exact_credits(
    compose, two_replicas, seeded_tools
) -> None:
    users = await asyncio.gather(*(new_user("replicas") for _ in range(USERS)))
    task_ids = await asyncio.gather(*(start_task(u) for u in users for _ in range(TASKS_PER_USER)))
    assert len(set(task_ids)) == USERS * TASKS_PER_USER

    killed: dict[str, str] = {}
    for service in ("tasks", "credits", "providers"):
        leader = await relay_leader(compose, service)
        # No restart: the other replica alone must take over the relay and the partitions.
        docker("update", "--restart=no", leader)
        docker("kill", "--signal=KILL", leader)
        killed[service] = leader
    for service, leader in killed.items():
        assert await relay_leader(compose, service) != leader, f"{service}'s relay leadership did not move"

    await every_task_ends(users, set(task_ids), timeout=240)
    await assert_ledgers_exact(users)
    scale_every_service(compose, 2, "--no-recreate")
    for leader in killed.values():
        docker("update", "--restart=unless-stopped", leader)


async def test_either_gateway_replica_serves_a_tasks_whole_story(compose, two_replicas, seeded_tools) -> None:
    user = await new_user("replicas-sse")
    task_id = await start_task(user)
    await every_task_ends([user], {task_id}, timeout=60)

    gateways = containers(compose, "gateway")
    assert len(gateways) == 2
    for gateway in gateways:
        # From inside the network (the web edge's container has curl), straight to this one replica.
        url = f"http://{address_of(gateway['Name'])}:8000/api/tasks/{task_id}/stream"
        stream = compose(
            "exec", "-T", "web", "curl", "-sN", "--max-time", "30", "-H",
            f"Authorization: {bearer(user['token'])['Authorization']}", url,
        ).stdout  # fmt: skip
        events = [line.removeprefix("event: ") for line in stream.splitlines() if line.startswith("event: ")]
        assert events[0] == "connected", (gateway["Name"], stream)
        assert events[-2:] == ["step_completed", "completed"], (gateway["Name"], events)

    async with browser() as client:
        status, task, _ = await call(client, "GET", f"/api/tasks/{task_id}", headers=bearer(user["token"]))
    assert (status, task["status"]) == (200, "completed")
