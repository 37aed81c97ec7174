"""Tests of the fake Tripo 3D API, over real HTTP, following the flow of PROVIDERS.md section 3."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from faults import Fault
from tripo_api import DEFAULT_API_KEY, FakeTripo, triangle_glb

KEY = "tsk_funmagic_test_0001"
OTHER_KEY = "tsk_someone_else_0002"
TASK_KEYS = {"task_id", "type", "status", "input", "output", "progress", "create_time"}  # Task.from_dict's


@pytest.fixture
async def fake() -> AsyncIterator[FakeTripo]:
    async with FakeTripo(api_key=KEY, extra_keys=[OTHER_KEY]) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def image_bytes(size: tuple[int, int] = (64, 64), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 120, 220)).save(buffer, fmt)
    return buffer.getvalue()


async def answer(resp: aiohttp.ClientResponse) -> tuple[int, dict[str, Any]]:
    # Every answer carries a trace id, errors included (PROVIDERS 3.1).
    uuid.UUID(resp.headers["X-Tripo-Trace-ID"])
    return resp.status, await resp.json()


async def upload(
    http: aiohttp.ClientSession,
    fake: FakeTripo,
    data: bytes | None = None,
    *,
    key: str = KEY,
    path: str = "/upload/sts",
    filename: str = "in.png",
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field(
        "file", image_bytes() if data is None else data, filename=filename, content_type="image/png"
    )
    async with http.post(fake.url + path, data=form, headers=auth(key)) as resp:
        return await answer(resp)


async def create(
    http: aiohttp.ClientSession, fake: FakeTripo, body: Any, *, key: str = KEY
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{fake.url}/task", json=body, headers=auth(key)) as resp:
        return await answer(resp)


async def get_task(
    http: aiohttp.ClientSession,
    fake: FakeTripo,
    task_id: str,
    *,
    key: str = KEY,
    timeout: float | None = None,
) -> tuple[int, dict[str, Any]]:
    client_timeout = aiohttp.ClientTimeout(total=timeout) if timeout else None
    async with http.get(f"{fake.url}/task/{task_id}", headers=auth(key), timeout=client_timeout) as resp:
        return await answer(resp)


async def poll(
    http: aiohttp.ClientSession, fake: FakeTripo, task_id: str, limit: int = 10
) -> list[dict[str, Any]]:
    """Every task object up to the first final one."""
    seen = []
    for _ in range(limit):
        status, body = await get_task(http, fake, task_id)
        assert (status, body["code"]) == (200, 0)
        seen.append(body["data"])
        if body["data"]["status"] not in ("queued", "running"):
            return seen
    raise AssertionError(f"still running after {limit} polls: {seen}")


async def image_task(http: aiohttp.ClientSession, fake: FakeTripo) -> str:
    _, uploaded = await upload(http, fake)
    file = {"type": "png", "file_token": uploaded["data"]["image_token"]}
    status, created = await create(http, fake, {"type": "image_to_model", "file": file})
    assert status == 200, created
    return created["data"]["task_id"]


def parse_glb(data: bytes) -> tuple[dict[str, Any], bytes]:
    """Checks the GLB container (glTF 2.0 spec, "Binary glTF Layout") and returns (JSON, BIN)."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON"
    assert json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length])
    offset = 20 + json_length
    bin_length, bin_type = struct.unpack_from("<I4s", data, offset)
    assert bin_type == b"BIN\0"
    assert bin_length % 4 == 0
    assert offset + 8 + bin_length == len(data)
    return document, data[offset + 8 : offset + 8 + bin_length]


# --- the happy paths ----------------------------------------------------------------------------


async def test_upload_create_poll_download(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    status, uploaded = await upload(http, fake)
    assert status == 200
    assert uploaded["code"] == 0
    token = uploaded["data"]["image_token"]
    uuid.UUID(token)
    body = {"type": "image_to_model", "file": {"type": "png", "file_token": token}, "texture": True}
    status, created = await create(http, fake, body)
    assert (status, created["code"]) == (200, 0)
    task_id = created["data"]["task_id"]

    seen = await poll(http, fake, task_id)
    assert [(t["status"], t["progress"]) for t in seen] == [
        ("queued", 0),
        ("running", 33),
        ("running", 66),
        ("success", 100),
    ]
    for task in seen:
        assert TASK_KEYS | {"running_left_time", "queuing_num", "error_code", "error_msg"} <= set(task)
        assert (task["task_id"], task["type"]) == (task_id, "image_to_model")
    assert seen[0]["running_left_time"] > seen[1]["running_left_time"] > 0
    done = seen[-1]
    assert done["input"]["file"]["file_token"] == token
    assert done["error_code"] is None
    assert done["output"] == {
        "model": f"{fake.origin}/files/{task_id}.glb",
        "rendered_image": f"{fake.origin}/files/{task_id}.png",
    }

    async with http.get(done["output"]["model"]) as resp:  # no auth: a CDN link
        assert (resp.status, resp.content_type) == (200, "model/gltf-binary")
        document, binary = parse_glb(await resp.read())
    assert document["asset"]["version"] == "2.0"
    [accessor] = document["accessors"]
    assert (accessor["type"], accessor["count"], accessor["componentType"]) == ("VEC3", 3, 5126)
    assert document["meshes"][0]["primitives"][0]["attributes"]["POSITION"] == 0
    view = document["bufferViews"][accessor["bufferView"]]
    assert document["buffers"][0]["byteLength"] == view["byteLength"] == 36 <= len(binary)
    vertices = [struct.unpack_from("<3f", binary, 12 * i) for i in range(3)]
    assert accessor["min"] == [min(v[i] for v in vertices) for i in range(3)]
    assert accessor["max"] == [max(v[i] for v in vertices) for i in range(3)]

    async with http.get(done["output"]["rendered_image"]) as resp:
        assert (resp.status, resp.content_type) == (200, "image/png")
        assert Image.open(io.BytesIO(await resp.read())).format == "PNG"


async def test_the_legacy_upload_path_and_jpeg_webp(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    for data in (image_bytes(fmt="JPEG"), image_bytes(fmt="WEBP")):
        status, uploaded = await upload(http, fake, data, path="/upload")
        assert (status, uploaded["code"]) == (200, 0)
    assert [r.endpoint for r in fake.requests] == ["upload", "upload"]


async def test_text_to_model_and_url_image_tasks(http: aiohttp.ClientSession) -> None:
    async with FakeTripo(api_key=KEY, polls_until_done=0) as fake:
        body = {"type": "text_to_model", "prompt": "a small cat", "model_version": "v3.0-20250812"}
        _, created = await create(http, fake, body)
        [done] = await poll(http, fake, created["data"]["task_id"])
        assert (done["status"], done["type"], done["input"]["prompt"]) == (
            "success",
            "text_to_model",
            "a small cat",
        )
        file = {"type": "jpg", "url": "https://example.com/cat.jpg"}
        status, created = await create(http, fake, {"type": "image_to_model", "file": file})
        assert status == 200
        object_file = {"type": "jpg", "object": {"bucket": "tripo-data", "key": "uploads/x.jpg"}}
        status, _ = await create(http, fake, {"type": "image_to_model", "file": object_file})
        assert status == 200


async def test_glb_helper_is_deterministic() -> None:
    assert triangle_glb("a") == triangle_glb("a")
    parse_glb(triangle_glb("a name that changes the JSON length"))


# --- validation and auth ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "http_status", "code"),
    [
        (b"", 400, 2003),
        (b"plain text, not an image", 400, 2004),
        (image_bytes(fmt="GIF"), 400, 2004),
        (image_bytes((10, 64)), 400, 1004),
        (image_bytes((6001, 20)), 400, 1004),
    ],
)
async def test_upload_validation(
    fake: FakeTripo, http: aiohttp.ClientSession, data: bytes, http_status: int, code: int
) -> None:
    status, body = await upload(http, fake, data)
    assert (status, body["code"]) == (http_status, code)
    assert body["message"]
    assert "suggestion" in body
    assert "data" not in body


async def test_upload_needs_a_multipart_file_field(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    form = aiohttp.FormData({"not_file": "x"}, default_to_multipart=True)
    async with http.post(f"{fake.url}/upload/sts", data=form, headers=auth()) as resp:
        assert (await answer(resp))[1]["code"] == 1004
    async with http.post(f"{fake.url}/upload/sts", json={"file": "x"}, headers=auth()) as resp:
        assert (await answer(resp))[1]["code"] == 1003


@pytest.mark.parametrize(
    ("body", "http_status", "code"),
    [
        ({"type": "refine_model", "draft_model_task_id": "x"}, 400, 2002),
        ({"type": "animate_everything"}, 400, 2002),
        ({"prompt": "no type"}, 400, 1004),
        ({"type": "text_to_model"}, 400, 1004),
        ({"type": "text_to_model", "prompt": "x" * 1025}, 400, 1004),
        ({"type": "text_to_model", "prompt": "x", "negative_prompt": "y" * 256}, 400, 1004),
        ({"type": "text_to_model", "prompt": "x", "model_version": "v9"}, 400, 2017),
        ({"type": "image_to_model"}, 400, 1004),
        ({"type": "image_to_model", "file": {"type": "jpg"}}, 400, 1004),
        ({"type": "image_to_model", "file": {"type": "jpg", "file_token": "nope"}}, 400, 1004),
        ({"type": "image_to_model", "file": {"type": "jpg", "url": "ftp://x"}}, 400, 1004),
        ({"type": "image_to_model", "file": {"type": "gif", "url": "https://x/y.gif"}}, 400, 2004),
        (
            {"type": "image_to_model", "file": {"type": "jpg", "url": "https://x/a.jpg", "file_token": "t"}},
            400,
            1004,
        ),
        ([1, 2], 400, 1003),
    ],
)
async def test_task_validation(
    fake: FakeTripo, http: aiohttp.ClientSession, body: Any, http_status: int, code: int
) -> None:
    status, answered = await create(http, fake, body)
    assert (status, answered["code"]) == (http_status, code)
    assert fake.tasks == {}


async def test_a_prompt_of_1024_characters_is_fine(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    status, _ = await create(http, fake, {"type": "text_to_model", "prompt": "x" * 1024})
    assert status == 200


async def test_an_upload_token_belongs_to_its_key(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    _, uploaded = await upload(http, fake, key=OTHER_KEY)
    file = {"type": "png", "file_token": uploaded["data"]["image_token"]}
    status, body = await create(http, fake, {"type": "image_to_model", "file": file})
    assert (status, body["code"]) == (400, 1004)
    status, _ = await create(http, fake, {"type": "image_to_model", "file": file}, key=OTHER_KEY)
    assert status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tsk_wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"Authorization": "Bearer sk_x"},
    ],
)
async def test_auth_failures(fake: FakeTripo, http: aiohttp.ClientSession, headers: dict[str, str]) -> None:
    async with http.post(
        f"{fake.url}/task", json={"type": "text_to_model", "prompt": "x"}, headers=headers
    ) as resp:
        status, body = await answer(resp)
    assert (status, body["code"]) == (401, 1002)
    assert fake.tasks == {}


async def test_balance(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{fake.url}/user/balance", headers=auth()) as resp:
        assert await answer(resp) == (200, {"code": 0, "data": {"balance": 1000.0, "frozen": 0.0}})
    async with http.get(f"{fake.url}/user/balance", headers=auth("tsk_nobody")) as resp:
        assert (await answer(resp))[0] == 401
    async with http.post(f"{fake.origin}/_control/settings", json={"balance": 3}) as resp:
        assert (await resp.json())["balance"] == 3.0
    fake.credits_exhausted = True
    async with http.get(f"{fake.url}/user/balance", headers=auth()) as resp:
        assert (await answer(resp))[1]["data"]["balance"] == 0.0


async def test_credits_exhausted(http: aiohttp.ClientSession) -> None:
    async with (
        FakeTripo(credits_exhausted=True) as fake,
        http.post(
            f"{fake.url}/task", json={"type": "text_to_model", "prompt": "x"}, headers=auth(DEFAULT_API_KEY)
        ) as resp,
    ):
        status, body = await answer(resp)
    assert (status, body["code"], body["message"]) == (
        403,
        2010,
        "You don't have enough credit to create this task",
    )


async def test_a_task_is_invisible_to_other_keys(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    task_id = await image_task(http, fake)
    status, body = await get_task(http, fake, task_id, key=OTHER_KEY)
    assert (status, body["code"]) == (404, 2001)
    status, body = await get_task(http, fake, str(uuid.uuid4()))
    assert (status, body["code"]) == (404, 2001)
    status, body = await get_task(http, fake, task_id)
    assert (status, body["data"]["status"]) == (200, "queued")  # the refused look-up did not count as a poll


# --- failed tasks -------------------------------------------------------------------------------


async def test_fail_tasks_and_failing_prompts(http: aiohttp.ClientSession) -> None:
    async with FakeTripo(api_key=KEY, polls_until_done=1, fail_tasks=True) as fake:
        task_id = await image_task(http, fake)
        seen = await poll(http, fake, task_id)
        assert [t["status"] for t in seen] == ["queued", "failed"]
        assert (seen[-1]["error_code"], seen[-1]["output"]) == (1001, {})
        async with http.get(f"{fake.origin}/files/{task_id}.glb") as resp:
            assert resp.status == 404
    async with FakeTripo(api_key=KEY, polls_until_done=0) as fake:
        _, created = await create(http, fake, {"type": "text_to_model", "prompt": "Please FAIL this one"})
        [failed] = await poll(http, fake, created["data"]["task_id"])
        assert (failed["status"], failed["error_code"]) == ("failed", 1001)
        _, created = await create(http, fake, {"type": "text_to_model", "prompt": "a failsafe"})
        [done] = await poll(http, fake, created["data"]["task_id"])
        assert done["status"] == "success"  # only the word "fail" triggers it


async def test_files_exist_only_after_success_is_reported(
    fake: FakeTripo, http: aiohttp.ClientSession
) -> None:
    task_id = await image_task(http, fake)
    for name in (f"{task_id}.glb", f"{task_id}.png", f"{task_id}.obj", "nope.glb"):
        async with http.get(f"{fake.origin}/files/{name}") as resp:
            status, body = await answer(resp)
            assert (status, body["code"]) == (404, 2019)


# --- faults -------------------------------------------------------------------------------------


async def test_rate_limit_and_server_errors(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    fake.faults.queue(
        "create_task", Fault.rate_limited(retry_after=5), Fault.server_error(), Fault.server_error(503)
    )
    body = {"type": "text_to_model", "prompt": "x"}
    async with http.post(f"{fake.url}/task", json=body, headers=auth()) as resp:
        status, answered = await answer(resp)
        assert (status, answered["code"], resp.headers["Retry-After"]) == (429, 2000, "5")
    assert (await create(http, fake, body))[0:1] == (500,)
    status, answered = await create(http, fake, body)
    assert (status, answered["code"]) == (503, 1001)
    assert fake.tasks == {}
    status, answered = await create(http, fake, body)
    assert status == 200


async def test_server_error_500_is_code_1000(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    fake.faults.queue("upload", Fault.server_error())
    status, body = await upload(http, fake)
    assert (status, body["code"]) == (500, 1000)


async def test_bad_payloads(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    fake.faults.queue("upload", Fault.bad_payload())
    status, body = await upload(http, fake)
    assert (status, body["code"], "image_token" in body["data"]) == (200, 0, False)
    fake.faults.queue("create_task", Fault.bad_payload())
    status, body = await create(http, fake, {"type": "text_to_model", "prompt": "x"})
    assert (status, body["code"], "task_id" in body["data"]) == (200, 0, False)

    fake.polls_until_done = 0
    task_id = await image_task(http, fake)
    fake.faults.queue("get_task", Fault.bad_payload())
    status, body = await get_task(http, fake, task_id)
    assert (body["data"]["status"], "model" in body["data"]["output"]) == ("success", False)
    [done] = await poll(http, fake, task_id)
    fake.faults.queue("file", Fault.bad_payload())
    async with http.get(done["output"]["model"]) as resp:
        assert resp.status == 200
        data = await resp.read()
    with pytest.raises((AssertionError, struct.error)):
        parse_glb(data)


async def test_error_fault_and_timeout(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    task_id = await image_task(http, fake)
    fake.faults.queue(
        "get_task", Fault.error(403, {"code": 1005, "message": "no", "suggestion": ""}), Fault.timeout()
    )
    status, body = await get_task(http, fake, task_id)
    assert (status, body["code"]) == (403, 1005)
    with pytest.raises(TimeoutError):
        await get_task(http, fake, task_id, timeout=0.3)
    status, body = await get_task(http, fake, task_id)
    # The hung poll is still waiting (until the fault's 30 s or close), so it has not counted yet.
    assert (status, body["data"]["status"]) == (200, "queued")


# --- control API and standalone -----------------------------------------------------------------


async def test_control_api(fake: FakeTripo, http: aiohttp.ClientSession) -> None:
    control = f"{fake.origin}/_control"
    async with http.post(f"{control}/settings", json={"credits_exhausted": True}) as resp:
        assert (await resp.json())["credits_exhausted"] is True
    status, body = await create(http, fake, {"type": "text_to_model", "prompt": "x"})
    assert (status, body["code"]) == (403, 2010)
    async with http.post(
        f"{control}/settings", json={"credits_exhausted": False, "polls_until_done": 0}
    ) as resp:
        assert resp.status == 200
    always = {"endpoint": "get_task", "always": {"kind": "server_error", "status": 502}}
    async with http.post(f"{control}/faults", json=always) as resp:
        assert resp.status == 204
    _, created = await create(http, fake, {"type": "text_to_model", "prompt": "x"})
    task_id = created["data"]["task_id"]
    for _ in range(2):
        assert (await get_task(http, fake, task_id))[0] == 502
    async with http.post(f"{control}/faults", json={"endpoint": "get_task", "always": None}) as resp:
        assert resp.status == 204
    assert (await get_task(http, fake, task_id))[1]["data"]["status"] == "success"
    async with http.get(f"{control}/requests") as resp:
        recorded = await resp.json()
    assert [r["endpoint"] for r in recorded] == [
        "create_task",
        "create_task",
        "get_task",
        "get_task",
        "get_task",
    ]
    assert recorded[0]["json"] == {"type": "text_to_model", "prompt": "x"}
    assert KEY not in json.dumps(recorded)


async def test_standalone_cli(http: aiohttp.ClientSession) -> None:
    script = Path(__file__).parent / "tripo_api.py"
    args = ["--port", "0", "--api-key", KEY, "--polls-until-done", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode().strip()
        assert line.startswith("READY http://127.0.0.1:")
        assert line.endswith("/v2/openapi")
        url = line.removeprefix("READY ")
        body = {"type": "text_to_model", "prompt": "x"}
        async with http.post(f"{url}/task", json=body, headers=auth()) as resp:
            task_id = (await resp.json())["data"]["task_id"]
        async with http.get(f"{url}/task/{task_id}", headers=auth()) as resp:
            assert (await resp.json())["data"]["status"] == "success"
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
