import asyncio

from funmagic_kit.health import HealthCheck, check_result


async def test_a_check_that_answers_is_green_with_its_latency() -> None:
    async def answers() -> None:
        return None

    result = await check_result(HealthCheck("db", answers))

    assert result["ok"] is True
    assert isinstance(result["latency_ms"], float)


async def test_a_check_that_raises_is_red_with_the_error() -> None:
    async def refuses() -> None:
        raise ConnectionRefusedError("connection refused")

    result = await check_result(HealthCheck("redis", refuses))

    assert result == {"ok": False, "error": "ConnectionRefusedError: connection refused"}


async def test_a_check_that_hangs_is_red_after_its_timeout() -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    result = await check_result(HealthCheck("kafka", hangs, timeout_seconds=0.05))

    assert result["ok"] is False
    assert "no answer within 0.05s" in result["error"]
