"""Tests of the fake fal.ai queue API, over real HTTP, following the flow of PROVIDERS.md section 2."""

from __future__ import annotations

import asyncio
import base64
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image, UnidentifiedImageError

sys.path.insert(0, str(Path(__file__).parent))

from fal_api import DEFAULT_API_KEY, FakeFal
from faults import Fault

KEY = "key-id-0001:key-secret-0001"
AUTH = {"Authorization": f"Key {KEY}"}
MODEL = "fal-ai/imageutils/rembg"  # has a subpath: status URLs must leave it out


@pytest.fixture
async def fake() -> AsyncIterator[FakeFal]:
    async with FakeFal(api_key=KEY) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def subject_png() -> bytes:
    """A red square on a white background: the background is what removal takes away."""
    image = Image.new("RGB", (40, 30), (255, 255, 255))
    image.paste((200, 20, 20), (10, 10, 30, 20))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> tuple[int, Any, dict[str, str]]:
    headers = AUTH if headers is None else headers
    client_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else None
    async with http.request(method, url, json=body, headers=headers, timeout=client_timeout) as resp:
        return resp.status, await resp.json(), dict(resp.headers)


async def submit(
    http: aiohttp.ClientSession, fake: FakeFal, body: Any = None, model: str = MODEL
) -> tuple[int, Any, dict[str, str]]:
    body = {"image_url": data_uri(subject_png())} if body is None else body
    return await call(http, "POST", f"{fake.url}/{model}", body)


async def poll_until_completed(http: aiohttp.ClientSession, status_url: str, limit: int = 10) -> list[Any]:
    """Polls like fal_client does and returns every status body, the COMPLETED one last."""
    bodies = []
    for _ in range(limit):
        status, body, _ = await call(http, "GET", status_url + "?logs=1")
        bodies.append(body)
        if body["status"] == "COMPLETED":
            assert status == 200
            return bodies
        assert status == 202
    raise AssertionError(f"not completed after {limit} polls: {bodies}")


# --- the happy path ------------------------------------------------------------------------------


async def test_submit_poll_result_download(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    status, queued, headers = await submit(http, fake)
    assert status == 200
    request_id = queued["request_id"]
    base = f"{fake.url}/fal-ai/imageutils/requests/{request_id}"  # owner/app only, no /rembg
    assert queued == {
        "request_id": request_id,
        "response_url": base,
        "status_url": base + "/status",
        "cancel_url": base + "/cancel",
        "status": "IN_QUEUE",
        "queue_position": 0,
    }
    assert headers["x-fal-request-id"] == request_id

    # The result is not there before completion (PROVIDERS 2.4 left this open; the fake answers 400).
    status, early, _ = await call(http, "GET", queued["response_url"])
    assert (status, early) == (400, {"detail": "Request is still in progress"})

    bodies = await poll_until_completed(http, queued["status_url"])
    assert [b["status"] for b in bodies] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert bodies[0]["queue_position"] == 0
    assert bodies[1]["logs"][0]["level"] == "INFO"
    assert bodies[1]["logs"][0]["source"] == "USER"
    assert bodies[2]["metrics"]["inference_time"] > 0
    assert "error" not in bodies[2]

    status, result, headers = await call(http, "GET", queued["response_url"])
    assert status == 200
    assert headers["x-fal-request-id"] == request_id
    image = result["image"]
    assert image["url"] == f"{fake.origin}/files/{request_id}.png"
    assert (image["content_type"], image["width"], image["height"]) == ("image/png", 40, 30)

    async with http.get(image["url"]) as resp:  # no Authorization: the CDN is public
        assert (resp.status, resp.content_type) == (200, "image/png")
        data = await resp.read()
    assert (len(data), image["file_size"], image["file_name"]) == (
        image["file_size"],
        len(data),
        f"{request_id}.png",
    )
    cut_out = Image.open(io.BytesIO(data))
    assert (cut_out.mode, cut_out.size) == ("RGBA", (40, 30))
    assert cut_out.getpixel((0, 0))[3] == 0  # the white background is gone…
    assert cut_out.getpixel((20, 15)) == (200, 20, 20, 255)  # …the red subject stays


async def test_an_http_image_url_is_downloaded(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    fake.polls_until_done = 0
    _, first, _ = await submit(http, fake)
    _, result, _ = await call(http, "GET", first["response_url"])
    _, second, _ = await submit(http, fake, {"image_url": result["image"]["url"]}, model="fal-ai/birefnet/v2")
    assert second["status_url"] == f"{fake.url}/fal-ai/birefnet/requests/{second['request_id']}/status"
    status, again, _ = await call(http, "GET", second["response_url"])
    assert status == 200
    assert (again["image"]["width"], again["image"]["height"]) == (40, 30)


async def test_polls_until_done_and_queue_position(http: aiohttp.ClientSession) -> None:
    async with FakeFal(api_key=KEY, polls_until_done=4) as fake:
        _, first, _ = await submit(http, fake)
        _, second, _ = await submit(http, fake)
        assert second["queue_position"] == 1  # the first is still waiting
        bodies = await poll_until_completed(http, first["status_url"])
        assert [b["status"] for b in bodies] == ["IN_QUEUE", *["IN_PROGRESS"] * 3, "COMPLETED"]
        assert len(bodies[-1]["logs"]) == 4  # three progress lines and the final one
    async with FakeFal(api_key=KEY, polls_until_done=0) as fake:
        _, queued, _ = await submit(http, fake)
        status, body, _ = await call(http, "GET", queued["status_url"])
        assert (status, body["status"]) == (200, "COMPLETED")


async def test_logs_can_be_turned_off(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    _, queued, _ = await submit(http, fake)
    await call(http, "GET", queued["status_url"])
    _, body, _ = await call(http, "GET", queued["status_url"] + "?logs=0")
    assert (body["status"], body["logs"]) == ("IN_PROGRESS", None)


async def test_sync_mode_returns_a_data_uri(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    fake.polls_until_done = 0
    _, queued, _ = await submit(http, fake, {"image_url": data_uri(subject_png()), "sync_mode": True})
    _, result, _ = await call(http, "GET", queued["response_url"])
    header, _, payload = result["image"]["url"].partition(",")
    assert header == "data:image/png;base64"
    assert Image.open(io.BytesIO(base64.b64decode(payload))).mode == "RGBA"


# --- failures of the request itself -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"sync_mode": True},
            {"loc": ["body", "image_url"], "msg": "field required", "type": "value_error.missing"},
        ),
        (
            {"image_url": 7},
            {"loc": ["body", "image_url"], "msg": "str type expected", "type": "type_error.str"},
        ),
        (
            {"image_url": "ftp://x/y.png"},
            {
                "loc": ["body", "image_url"],
                "msg": "invalid or missing URL scheme",
                "type": "value_error.url.scheme",
            },
        ),
        (
            ["not", "an", "object"],
            {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"},
        ),
    ],
)
async def test_invalid_input_is_a_fastapi_422(
    fake: FakeFal, http: aiohttp.ClientSession, body: Any, expected: dict[str, Any]
) -> None:
    status, answer, _ = await submit(http, fake, body)
    assert (status, answer) == (422, {"detail": [expected]})
    assert fake.queue == {}


@pytest.mark.parametrize(
    ("image_url", "error_type"),
    [
        (data_uri(b"definitely not an image"), "image_load_error"),
        ("data:image/png;base64,%%%", "image_load_error"),
        ("http://127.0.0.1:9/nothing-listens-here.png", "file_download_error"),
    ],
)
async def test_an_unloadable_image_fails_the_request(
    fake: FakeFal, http: aiohttp.ClientSession, image_url: str, error_type: str
) -> None:
    fake.polls_until_done = 0
    status, queued, _ = await submit(http, fake, {"image_url": image_url})
    assert status == 200  # accepted into the queue; the model fails later
    _, completed, _ = await call(http, "GET", queued["status_url"])
    assert (completed["status"], completed["error_type"]) == ("COMPLETED", error_type)
    status, result, _ = await call(http, "GET", queued["response_url"])
    assert status == 422
    assert result["detail"][0]["loc"] == ["body", "image_url"]
    assert result["detail"][0]["type"] == error_type


async def test_a_missing_file_url_is_a_download_error(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    fake.polls_until_done = 0
    _, queued, _ = await submit(http, fake, {"image_url": f"{fake.origin}/files/nope.png"})
    _, completed, _ = await call(http, "GET", queued["status_url"])
    assert completed["error_type"] == "file_download_error"


async def test_fail_requests_ends_completed_with_an_error(http: aiohttp.ClientSession) -> None:
    async with FakeFal(api_key=KEY, polls_until_done=1, fail_requests=True) as fake:
        _, queued, _ = await submit(http, fake)
        bodies = await poll_until_completed(http, queued["status_url"])
        completed = bodies[-1]
        assert completed["status"] == "COMPLETED"
        assert completed["error"]
        assert completed["error_type"] == "internal_server_error"
        assert completed["logs"][-1]["level"] == "ERROR"
        status, result, _ = await call(http, "GET", queued["response_url"])
        assert (status, result) == (422, {"detail": completed["error"]})
        assert fake.files == {}  # nothing was published for a failed request


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no header"),
        ({"Authorization": f"Bearer {KEY}"}, "wrong scheme"),
        ({"Authorization": "Key x:y"}, "wrong"),
    ],
)
async def test_auth_failures_are_401_with_detail(
    fake: FakeFal, http: aiohttp.ClientSession, headers: dict[str, str], why: str
) -> None:
    status, body, _ = await call(http, "POST", f"{fake.url}/{MODEL}", {"image_url": "x"}, headers=headers)
    assert status == 401, why
    assert isinstance(body["detail"], str)
    _, queued, _ = await submit(http, fake)
    status, _, _ = await call(http, "GET", queued["status_url"], headers=headers)
    assert status == 401


async def test_unknown_paths_check_the_key_first(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    status, body, _ = await call(http, "GET", f"{fake.url}/")
    assert (status, body) == (404, {"detail": "Not Found"})
    status, _, _ = await call(http, "GET", f"{fake.url}/", headers={"Authorization": "Key wrong:key"})
    assert status == 401


async def test_the_default_key(http: aiohttp.ClientSession) -> None:
    async with FakeFal() as fake:
        status, _, _ = await call(
            http,
            "POST",
            f"{fake.url}/{MODEL}",
            {"image_url": data_uri(subject_png())},
            headers={"Authorization": f"Key {DEFAULT_API_KEY}"},
        )
    assert status == 200


# --- cancel and unknown ids ---------------------------------------------------------------------


async def test_cancel_then_status_reports_completed_with_error(
    fake: FakeFal, http: aiohttp.ClientSession
) -> None:
    _, queued, _ = await submit(http, fake)
    status, body, _ = await call(http, "PUT", queued["cancel_url"])
    assert (status, body) == (202, {"status": "CANCELLATION_REQUESTED"})
    status, completed, _ = await call(http, "GET", queued["status_url"])
    assert (status, completed["status"]) == (200, "COMPLETED")
    assert completed["error"]
    assert completed["error_type"] == "request_cancelled"
    status, result, _ = await call(http, "GET", queued["response_url"])
    assert (status, result) == (422, {"detail": "Request was cancelled."})
    status, body, _ = await call(http, "PUT", queued["cancel_url"])
    assert (status, body) == (400, {"status": "ALREADY_COMPLETED"})


async def test_cancel_after_completion_is_already_completed(
    fake: FakeFal, http: aiohttp.ClientSession
) -> None:
    _, queued, _ = await submit(http, fake)
    await poll_until_completed(http, queued["status_url"])
    status, body, _ = await call(http, "PUT", queued["cancel_url"])
    assert (status, body) == (400, {"status": "ALREADY_COMPLETED"})
    status, _, _ = await call(http, "GET", queued["response_url"])
    assert status == 200  # the result survives


async def test_unknown_ids_and_wrong_apps_are_404(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    _, queued, _ = await submit(http, fake)
    unknown = f"{fake.url}/fal-ai/imageutils/requests/00000000-0000-0000-0000-000000000000"
    for method, url in [("GET", unknown + "/status"), ("GET", unknown), ("PUT", unknown + "/cancel")]:
        status, body, _ = await call(http, method, url)
        assert (status, "detail" in body) == (404, True), url
    other_app = queued["status_url"].replace("/fal-ai/imageutils/", "/fal-ai/birefnet/")
    status, _, _ = await call(http, "GET", other_app)
    assert status == 404
    # A status URL built with the subpath is not a fal URL (PROVIDERS 2.2).
    with_subpath = queued["status_url"].replace("/imageutils/", "/imageutils/rembg/")
    status, _, _ = await call(http, "GET", with_subpath)
    assert status == 405  # only the submit route (POST) matches such a path
    async with http.get(f"{fake.origin}/files/missing.png") as resp:
        assert resp.status == 404


# --- faults -------------------------------------------------------------------------------------


async def test_rate_limited_submit(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    fake.faults.queue("submit", Fault.rate_limited(), Fault.rate_limited(retry_after=3))
    status, body, headers = await submit(http, fake)
    assert (status, "Retry-After" in headers) == (429, False)  # fal sends none unless asked (2.6)
    assert isinstance(body["detail"], str)
    status, _, headers = await submit(http, fake)
    assert (status, headers["Retry-After"]) == (429, "3")
    status, _, _ = await submit(http, fake)
    assert status == 200
    assert len(fake.queue) == 1  # the refused submits queued nothing


@pytest.mark.parametrize("endpoint", ["status", "result", "cancel"])
async def test_server_errors_per_endpoint(fake: FakeFal, http: aiohttp.ClientSession, endpoint: str) -> None:
    _, queued, _ = await submit(http, fake)
    url = {"status": queued["status_url"], "result": queued["response_url"], "cancel": queued["cancel_url"]}
    method = "PUT" if endpoint == "cancel" else "GET"
    fake.faults.queue(endpoint, Fault.server_error(503))
    status, body, _ = await call(http, method, url[endpoint])
    assert (status, body) == (503, {"detail": "Internal Server Error"})
    status, _, _ = await call(http, method, url[endpoint])
    assert status != 503


async def test_bad_payloads(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    for endpoint in ("submit", "status", "result", "cancel", "file"):
        fake.faults.queue(endpoint, Fault.bad_payload())
    status, body, _ = await submit(http, fake)
    assert status == 200
    assert "request_id" not in body
    assert "status_url" not in body
    fake.polls_until_done = 0
    _, queued, _ = await submit(http, fake)
    status, body, _ = await call(http, "GET", queued["status_url"])
    assert status == 200
    assert body["status"] not in ("IN_QUEUE", "IN_PROGRESS", "COMPLETED")
    status, body, _ = await call(http, "GET", queued["response_url"])
    assert status == 200
    assert "image" not in body
    status, body, _ = await call(http, "PUT", queued["cancel_url"])
    assert body["status"] not in ("CANCELLATION_REQUESTED", "ALREADY_COMPLETED")
    _, result, _ = await call(http, "GET", queued["response_url"])  # the fault is used up: a real result
    async with http.get(result["image"]["url"]) as resp:
        assert resp.status == 200
        data = await resp.read()
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


async def test_error_fault_and_timeout(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    fake.faults.queue("submit", Fault.error(402, {"detail": "User is locked. Reason: Exhausted balance."}))
    status, body, _ = await submit(http, fake)
    assert (status, body["detail"]) == (402, "User is locked. Reason: Exhausted balance.")
    _, queued, _ = await submit(http, fake)
    fake.faults.queue("status", Fault.timeout())
    with pytest.raises(TimeoutError):
        await call(http, "GET", queued["status_url"], timeout=0.3)
    status, body, _ = await call(http, "GET", queued["status_url"])
    assert status == 202


# --- control API and standalone -----------------------------------------------------------------


async def test_control_api(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    control = f"{fake.origin}/_control"
    async with http.post(f"{control}/settings", json={"polls_until_done": 0, "fail_requests": True}) as resp:
        assert (resp.status, await resp.json()) == (200, {"polls_until_done": 0, "fail_requests": True})
    async with http.post(f"{control}/settings", json={"polls_until_done": "3"}) as resp:
        assert resp.status == 400
    async with http.post(
        f"{control}/faults", json={"endpoint": "status", "queue": [{"kind": "rate_limited"}]}
    ) as resp:
        assert resp.status == 204
    _, queued, _ = await submit(http, fake)
    status, _, _ = await call(http, "GET", queued["status_url"])
    assert status == 429
    _, completed, _ = await call(http, "GET", queued["status_url"])
    assert completed["error_type"] == "internal_server_error"

    async with http.get(f"{control}/requests") as resp:
        recorded = await resp.json()
    assert [(r["method"], r["endpoint"]) for r in recorded] == [
        ("POST", "submit"),
        ("GET", "status"),
        ("GET", "status"),
    ]
    assert recorded[0]["path"] == f"/{MODEL}"
    assert all(r["headers"]["Authorization"] == "Key <redacted>" for r in recorded)
    assert KEY not in str(recorded)


async def test_standalone_cli(http: aiohttp.ClientSession) -> None:
    script = Path(__file__).parent / "fal_api.py"
    args = ["--port", "0", "--api-key", KEY, "--polls-until-done", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().strip()
        assert line.startswith("READY http://127.0.0.1:")
        url = line.removeprefix("READY ")
        status, queued, _ = await call(http, "POST", f"{url}/{MODEL}", {"image_url": data_uri(subject_png())})
        assert status == 200
        assert queued["status_url"].startswith(url)
        status, body, _ = await call(http, "GET", queued["status_url"])
        assert (status, body["status"]) == (200, "COMPLETED")
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0


# --- the studio's utility models ---------------------------------------------------------------------


async def result_image(
    http: aiohttp.ClientSession, queued: dict[str, Any]
) -> tuple[dict[str, Any], Image.Image]:
    await poll_until_completed(http, queued["status_url"])
    status, result, _ = await call(http, "GET", queued["response_url"])
    assert status == 200
    async with http.get(result["image"]["url"]) as resp:
        return result, Image.open(io.BytesIO(await resp.read()))


@pytest.mark.parametrize("factor", [2, 3.5])
async def test_the_upscaler_makes_the_image_larger_by_its_factor(
    fake: FakeFal, http: aiohttp.ClientSession, factor: float
) -> None:
    body = {"image_url": data_uri(subject_png()), "prompt": "crisp", "upscale_factor": factor,
            "creativity": 0.35, "resemblance": 0.6}  # fmt: skip
    status, queued, _ = await submit(http, fake, body, model="fal-ai/clarity-upscaler")
    assert status == 200

    result, larger = await result_image(http, queued)
    assert larger.size == (round(40 * factor), round(30 * factor))
    assert (result["image"]["width"], result["image"]["height"]) == larger.size
    assert larger.convert("RGB").getpixel((round(20 * factor), round(15 * factor))) == (200, 20, 20)
    assert result["seed"] == 42
    submitted = [(r.path, r.json) for r in fake.requests if r.endpoint == "submit"]
    assert submitted == [("/fal-ai/clarity-upscaler", body)]


async def test_the_upscaler_defaults_to_twice_the_size(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    _, queued, _ = await submit(http, fake, model="fal-ai/clarity-upscaler")

    assert (await result_image(http, queued))[1].size == (80, 60)


@pytest.mark.parametrize(
    ("field", "value", "type_"),
    [
        ("upscale_factor", 5, "value_error.number.not_in_range"),
        ("upscale_factor", "2", "type_error.float"),
        ("creativity", 1.5, "value_error.number.not_in_range"),
        ("resemblance", -0.1, "value_error.number.not_in_range"),
        ("prompt", 7, "type_error.str"),
    ],
)
async def test_the_upscaler_refuses_invalid_inputs(
    fake: FakeFal, http: aiohttp.ClientSession, field: str, value: Any, type_: str
) -> None:
    body = {"image_url": data_uri(subject_png()), field: value}
    status, answer, _ = await submit(http, fake, body, model="fal-ai/clarity-upscaler")

    assert status == 422
    assert (answer["detail"][0]["loc"], answer["detail"][0]["type"]) == (["body", field], type_)
    assert fake.queue == {}


async def test_bria_cuts_the_background_out(fake: FakeFal, http: aiohttp.ClientSession) -> None:
    _, queued, _ = await submit(http, fake, model="fal-ai/bria/background/remove")
    assert queued["status_url"].startswith(f"{fake.url}/fal-ai/bria/requests/")  # no subpath

    _, cut_out = await result_image(http, queued)
    assert cut_out.mode == "RGBA"
    assert cut_out.getpixel((0, 0))[3] == 0
    assert cut_out.getpixel((20, 15)) == (200, 20, 20, 255)
