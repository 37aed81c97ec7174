"""A fake Tripo 3D API (v2 openapi: upload, image/text to model, task polling) for providers-service tests.

It is a real aiohttp server that follows /work/shared/PROVIDERS.md section 3: routes under /v2/openapi,
`Authorization: Bearer tsk_…`, the `{"code": 0, "data": …}` / `{"code", "message", "suggestion"}`
envelope with the HTTP statuses and codes of table 3.4, and `X-Tripo-Trace-ID` on every answer.

A task only counts status polls; there is no work behind it:

- `polls_until_done` (default 3): that many GET /task/{id} answer `queued` (the first, progress 0) or
  `running` (progress rising); the next answers `success` with progress 100 and
  `output = {"model": <origin>/files/<id>.glb, "rendered_image": <origin>/files/<id>.png}`.
- `fail_tasks`, or a text prompt containing the word `fail` (any case): the task ends `failed` instead
  (still HTTP 200 and code 0, with `error_code` 1001), as real failed tasks do (3.3).
- `credits_exhausted`: creating a task answers HTTP 403, code 2010.
- A task belongs to the key that created it, as does an upload's `image_token`; other keys get 404,
  code 2001 ("task not found"). `extra_keys` are further accepted keys, for such tests.
- `GET /user/balance` reports `balance` (default 1000, never spent; 0 while `credits_exhausted`).
- `faults` on "upload", "create_task", "get_task", "file" and "balance" (see faults.py).

The files need no auth, like Tripo's expiring CDN links. The `.glb` is a valid glTF 2.0 binary with one
triangle; the `.png` a small preview picture.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import struct
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from faults import ApiError, FakeServer, Fault, cli_parser, serve
from PIL import Image, UnidentifiedImageError

DEFAULT_API_KEY = "tsk_test_fake"
TASK_TYPES = ("image_to_model", "text_to_model")
MODEL_VERSIONS = ("v2.5-20250123", "v3.0-20250812", "Turbo-v1.0-20250506", "v3.1-20260211", "P1-20260311")
UPLOAD_FORMATS = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}
FILE_TYPES = ("jpg", "jpeg", "png", "webp")
MIN_SIDE, MAX_SIDE = 20, 6000
MAX_PROMPT, MAX_NEGATIVE_PROMPT = 1024, 255
SECONDS_PER_POLL = 2  # what running_left_time counts down in; only the shape matters
PREVIEW_SIZE = (64, 64)
_FAIL_RE = re.compile(r"\bfail\b", re.IGNORECASE)

# glTF 2.0 binary constants (Khronos glTF 2.0 spec, "GLB File Format Specification").
GLB_MAGIC = 0x46546C67  # b"glTF" read as a little-endian uint32
GLB_VERSION = 2
CHUNK_JSON = 0x4E4F534A  # b"JSON"
CHUNK_BIN = 0x004E4942  # b"BIN\0"
FLOAT, ARRAY_BUFFER, TRIANGLES = 5126, 34962, 4


def _error(status: int, code: int, message: str, suggestion: str = "") -> ApiError:
    return ApiError(status, {"code": code, "message": message, "suggestion": suggestion})


def _invalid(message: str) -> ApiError:
    return _error(400, 1004, message, "Please check the request parameters.")


@dataclass
class _Task:
    task_id: str
    owner: str  # the API key that created it
    type: str
    input: dict[str, Any]
    create_time: int
    polls: int  # how many polls answer not-done (polls_until_done when it was created)
    fails: bool
    polls_seen: int = 0

    @property
    def finished(self) -> bool:
        """A poll has reported the final state (only then are the output files served)."""
        return self.polls_seen > self.polls

    def view(self, poll: int, origin: str) -> dict[str, Any]:
        """The task object as the 0-based `poll` sees it."""
        left = self.polls - poll
        state: dict[str, Any] = {"output": {}, "error_code": None, "error_msg": None, "queuing_num": -1}
        if poll == 0 and left > 0:
            state |= {"status": "queued", "progress": 0, "queuing_num": 0}
        elif left > 0:
            state |= {"status": "running", "progress": 100 * poll // self.polls}
        elif self.fails:
            message = "The generation failed (FakeTripo). Please retry or contact support."
            state |= {"status": "failed", "progress": 0, "error_code": 1001, "error_msg": message}
        else:
            files = f"{origin}/files/{self.task_id}"
            state |= {"status": "success", "progress": 100}
            state["output"] = {"model": f"{files}.glb", "rendered_image": f"{files}.png"}
        return {
            "task_id": self.task_id,
            "type": self.type,
            "input": self.input,
            "create_time": self.create_time,
            "running_left_time": left * SECONDS_PER_POLL if left > 0 else -1,
            **state,
        }


@dataclass(frozen=True)
class _Upload:
    owner: str
    format: str
    width: int
    height: int


class FakeTripo(FakeServer):
    ENDPOINTS = ("upload", "create_task", "get_task", "file", "balance")
    API_PREFIX = "/v2/openapi"
    SETTINGS = ("polls_until_done", "fail_tasks", "credits_exhausted", "balance")

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        extra_keys: Iterable[str] = (),
        polls_until_done: int = 3,
        fail_tasks: bool = False,
        credits_exhausted: bool = False,
        balance: float = 1000.0,
    ) -> None:
        super().__init__(api_key=api_key)
        if polls_until_done < 0:
            raise ValueError("polls_until_done must not be negative")
        self.keys = {api_key, *extra_keys}
        self.polls_until_done = polls_until_done
        self.fail_tasks = fail_tasks
        self.credits_exhausted = credits_exhausted
        self.balance = balance  # only reported (GET /user/balance); tasks do not spend it
        self.tasks: dict[str, _Task] = {}
        self.uploads: dict[str, _Upload] = {}

    def _add_routes(self, app: web.Application) -> None:
        base = self.API_PREFIX
        # The docs name /upload/sts, the SDK's fallback posts to /upload: both work (PROVIDERS 3.2).
        app.router.add_post(base + "/upload", self._upload, name="upload")
        app.router.add_post(base + "/upload/sts", self._upload, name="upload:sts")
        app.router.add_post(base + "/task", self._create_task, name="create_task")
        app.router.add_get(base + "/task/{id}", self._get_task, name="get_task")
        app.router.add_get(base + "/user/balance", self._balance, name="balance")
        app.router.add_get("/files/{name}", self._file, name="file")

    # --- the API ---

    async def _upload(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        if request.content_type != "multipart/form-data":
            raise _error(
                400, 1003, "The request body is malformed.", "Send multipart/form-data with a `file`."
            )
        try:
            upload = (await request.post()).get("file")
        except ValueError:
            raise _error(
                400, 1003, "The request body is malformed.", "Send a valid multipart body."
            ) from None
        if upload is None or isinstance(upload, str):
            raise _invalid("Missing the multipart file field `file`.")
        data = upload.file.read()
        if not data:
            raise _error(400, 2003, "The input file is empty.", "Please upload a non-empty image.")
        try:
            image = Image.open(io.BytesIO(data))
            fmt = UPLOAD_FORMATS[image.format or ""]
        except (UnidentifiedImageError, OSError, KeyError):
            raise _error(400, 2004, "Unsupported file type.", "Use a webp, jpeg or png image.") from None
        width, height = image.size
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise _invalid(f"The image is {width}x{height}; each side must be {MIN_SIDE}–{MAX_SIDE} px.")
        token = str(uuid.uuid4())
        self.uploads[token] = _Upload(key, fmt, width, height)
        return _ok({"image_token": token})

    async def _create_task(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        try:
            params = await request.json()
        except ValueError:
            raise _error(400, 1003, "The request body is malformed.", "Send a JSON object.") from None
        if not isinstance(params, dict):
            raise _error(400, 1003, "The request body is malformed.", "Send a JSON object.")
        task_type = params.get("type")
        if task_type is None:
            raise _invalid("Missing the parameter `type`.")
        if task_type not in TASK_TYPES:
            raise _error(
                400, 2002, f"Unsupported task type: {task_type}.", f"Use one of {', '.join(TASK_TYPES)}."
            )
        version = params.get("model_version")
        if version is not None and version not in MODEL_VERSIONS:
            raise _error(
                400, 2017, f"Invalid model_version: {version}.", f"Use one of {', '.join(MODEL_VERSIONS)}."
            )
        if task_type == "text_to_model":
            fails = self._check_text(params)
        else:
            self._check_image(params, key)
            fails = False
        if self.credits_exhausted:
            raise _error(
                403, 2010, "You don't have enough credit to create this task", "Please buy more credits."
            )
        task = _Task(
            task_id=str(uuid.uuid4()),
            owner=key,
            type=task_type,
            input={k: v for k, v in params.items() if k != "type"},
            create_time=int(time.time()),
            polls=self.polls_until_done,
            fails=fails or self.fail_tasks,
        )
        self.tasks[task.task_id] = task
        return _ok({"task_id": task.task_id})

    async def _get_task(self, request: web.Request) -> web.Response:
        key = self._authenticate(request)
        task = self.tasks.get(request.match_info["id"])
        if task is None or task.owner != key:  # other keys' tasks do not exist for this one (3.3)
            raise _error(404, 2001, "Task not found.", "Please check the task id and the API key.")
        poll = task.polls_seen
        task.polls_seen += 1
        return _ok(task.view(poll, self.origin))

    async def _balance(self, request: web.Request) -> web.Response:
        self._authenticate(request)
        return _ok({"balance": 0.0 if self.credits_exhausted else self.balance, "frozen": 0.0})

    async def _file(self, request: web.Request) -> web.Response:
        task_id, _, extension = request.match_info["name"].rpartition(".")
        task = self.tasks.get(task_id)
        if task is None or not task.finished or task.fails or extension not in ("glb", "png"):
            raise _error(404, 2019, "File not found.", "The link may have expired.")
        if extension == "glb":
            return web.Response(body=triangle_glb(task_id), content_type="model/gltf-binary")
        png = await asyncio.to_thread(_preview_png, task_id)
        return web.Response(body=png, content_type="image/png")

    # --- validation ---

    def _check_text(self, params: dict[str, Any]) -> bool:
        """Validates a text_to_model body; True when the prompt asks for a failing task."""
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _invalid("Missing the parameter `prompt`.")
        if len(prompt) > MAX_PROMPT:
            raise _invalid(f"`prompt` is longer than {MAX_PROMPT} characters.")
        negative = params.get("negative_prompt")
        if negative is not None and (not isinstance(negative, str) or len(negative) > MAX_NEGATIVE_PROMPT):
            raise _invalid(f"`negative_prompt` must be a string of at most {MAX_NEGATIVE_PROMPT} characters.")
        return bool(_FAIL_RE.search(prompt))

    def _check_image(self, params: dict[str, Any], key: str) -> None:
        file = params.get("file")
        if not isinstance(file, dict):
            raise _invalid("Missing the parameter `file`.")
        if file.get("type") is not None and file["type"] not in FILE_TYPES:
            raise _error(400, 2004, f"Unsupported file type: {file['type']}.", "Use jpg, png or webp.")
        sources = [name for name in ("file_token", "url", "object") if file.get(name) is not None]
        if len(sources) != 1:
            raise _invalid("`file` needs exactly one of `file_token`, `url` or `object`.")
        if sources == ["file_token"]:
            upload = self.uploads.get(file["file_token"]) if isinstance(file["file_token"], str) else None
            if upload is None or upload.owner != key:
                raise _invalid("Unknown `file_token`: upload the image with this API key first.")
        elif sources == ["url"]:
            if not isinstance(file["url"], str) or not file["url"].startswith(("http://", "https://")):
                raise _invalid("`file.url` must be an http(s) URL.")
        else:
            obj = file["object"]
            if not (
                isinstance(obj, dict)
                and isinstance(obj.get("bucket"), str)
                and isinstance(obj.get("key"), str)
            ):
                raise _invalid("`file.object` needs `bucket` and `key`.")

    def _authenticate(self, request: web.Request) -> str:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key.startswith("tsk_") or key not in self.keys:
            raise _error(401, 1002, "Authentication failed.", "Please check your API key (Bearer tsk_…).")
        return key

    # --- FakeServer hooks ---

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        if fault.kind == "rate_limited":
            error = _error(
                429,
                2000,
                "You have exceeded the limit of generation.",
                "Please retry later or lower concurrency.",
            )
            return web.json_response(error.body, status=429, headers=fault.rate_limit_headers())
        if fault.kind == "server_error":
            # Both are HTTP 500 in table 3.4; other 5xx are reported as the "fatal" one.
            code, message = (
                (1000, "Unknown server error.") if fault.status == 500 else (1001, "Fatal server error.")
            )
            return _error(fault.status, code, message, "Please retry later.").response()
        if fault.kind == "bad_payload":
            return self._bad_payload(request, endpoint)
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

    def _bad_payload(self, request: web.Request, endpoint: str) -> web.Response:
        """HTTP 200 and valid JSON (or bytes) that a client following PROVIDERS 3 cannot use."""
        if endpoint == "file":
            return web.Response(body=b"not a glTF file", content_type="model/gltf-binary")
        if endpoint == "get_task":
            task = {
                "task_id": request.match_info.get("id", ""),
                "type": "image_to_model",
                "status": "success",
                "input": {},
                "output": {},  # success without output.model
                "progress": 100,
                "create_time": int(time.time()),
            }
            return _ok(task)
        return _ok({})  # upload without image_token, create_task without task_id, balance without balance

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        return _error(status, 1004, f"No such endpoint: {request.method} {request.path}.", reason)

    def _decorate(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.setdefault("X-Tripo-Trace-ID", str(uuid.uuid4()))


def _ok(data: dict[str, Any]) -> web.Response:
    return web.json_response({"code": 0, "data": data})


def triangle_glb(name: str = "triangle") -> bytes:
    """A minimal valid glTF 2.0 binary: one scene, one node, one mesh with one triangle."""
    positions = [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0)]
    binary = b"".join(struct.pack("<3f", *vertex) for vertex in positions)
    document = {
        "asset": {"version": "2.0", "generator": "FunMagic FakeTripo"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": name}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "mode": TRIANGLES}]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(binary), "target": ARRAY_BUFFER}],
        "accessors": [
            {
                "bufferView": 0,
                "byteOffset": 0,
                "componentType": FLOAT,
                "count": len(positions),
                "type": "VEC3",
                # POSITION accessors must carry min and max (glTF 2.0, 3.6.2.4).
                "min": [min(v[i] for v in positions) for i in range(3)],
                "max": [max(v[i] for v in positions) for i in range(3)],
            }
        ],
    }
    json_chunk = _pad(json.dumps(document, separators=(",", ":")).encode(), b" ")  # JSON pads with spaces
    bin_chunk = _pad(binary, b"\0")  # BIN pads with zeros
    length = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return b"".join(
        [
            struct.pack("<III", GLB_MAGIC, GLB_VERSION, length),
            struct.pack("<II", len(json_chunk), CHUNK_JSON),
            json_chunk,
            struct.pack("<II", len(bin_chunk), CHUNK_BIN),
            bin_chunk,
        ]
    )


def _pad(data: bytes, filler: bytes) -> bytes:
    return data + filler * (-len(data) % 4)  # chunks are 4-byte aligned


def _preview_png(task_id: str) -> bytes:
    digest = hashlib.sha256(task_id.encode()).digest()
    image = Image.new("RGB", PREVIEW_SIZE, (digest[0], digest[1], digest[2]))
    image.paste((255, 255, 255), (16, 16, 48, 48))  # a "model" in the middle of the preview
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Fake Tripo 3D API (v2 openapi) for tests.", DEFAULT_API_KEY)
    parser.add_argument("--extra-key", action="append", default=[], help="another accepted key; repeatable")
    parser.add_argument("--polls-until-done", type=int, default=3)
    parser.add_argument("--fail-tasks", action="store_true")
    parser.add_argument("--credits-exhausted", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeTripo(
        api_key=args.api_key,
        extra_keys=args.extra_key,
        polls_until_done=args.polls_until_done,
        fail_tasks=args.fail_tasks,
        credits_exhausted=args.credits_exhausted,
    )
    asyncio.run(serve(fake, args.host, args.port))


if __name__ == "__main__":
    main()
