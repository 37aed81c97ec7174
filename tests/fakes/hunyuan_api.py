"""A fake Tencent Hunyuan 3D API (Tencent Cloud API 3.0, service `ai3d`, version 2025-05-13) for tests.

A real aiohttp server speaking what Tencent's SDKs send and read: every call is `POST /` with a JSON body,
`X-TC-Action` (`SubmitHunyuanTo3DProJob`, `QueryHunyuanTo3DProJob`), `X-TC-Version`, `X-TC-Timestamp`,
`X-TC-Region` and an `Authorization` header signed with TC3-HMAC-SHA256. The fake verifies that signature
itself, from the request it received and the secret pair it was given (written apart from the adapter's
signer on purpose), and answers as Tencent does: HTTP 200 with `{"Response": {..., "RequestId"}}`, or
`{"Response": {"Error": {"Code", "Message"}, "RequestId"}}` — `AuthFailure.SecretIdNotFound`,
`AuthFailure.SignatureFailure`, `AuthFailure.SignatureExpire` (a timestamp more than 5 minutes off),
`InvalidParameter…`, `ResourceNotFound` (an unknown job), `RequestLimitExceeded` (the `rate_limited` fault).

Submit checks the shapes of Tencent's SDK models: exactly one of `ImageBase64` (a decodable image),
`ImageUrl` or `Prompt`; `EnablePBR` a boolean; `FaceCount` an integer in 40,000–1,500,000; `GenerateType` one
of Normal / LowPoly / Geometry / Sketch. A job is `WAIT` when submitted, `RUN` for `polls_until_done`
queries, then `DONE` with `ResultFile3Ds` (a GLB and an OBJ, the GLB with a preview image), or `FAIL` with
`ErrorCode` / `ErrorMessage` when `fail_jobs` is set. Files need no signature, like Tencent's COS links.

- `faults` on "api" (any action) and "file" (see faults.py).
- `submitted` keeps each submit's body (images replaced by their size), for tests to assert on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from faults import ApiError, FakeServer, Fault, cli_parser, serve
from PIL import Image, UnidentifiedImageError
from tripo_api import triangle_glb

DEFAULT_SECRET_ID = "AKIDfakeHunyuanSecretId0001"
DEFAULT_SECRET_KEY = "fakeHunyuanSecretKey0000000001"
VERSION = "2025-05-13"
SERVICE = "ai3d"
SUBMIT, QUERY = "SubmitHunyuanTo3DProJob", "QueryHunyuanTo3DProJob"
GENERATE_TYPES = ("Normal", "LowPoly", "Geometry", "Sketch")
_AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)/tc3_request, "
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def _error(code: str, message: str) -> ApiError:
    # Tencent answers errors with HTTP 200 and the error inside the Response.
    return ApiError(
        200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": _request_id()}}
    )


def _request_id() -> str:
    return str(uuid.uuid4())


def expected_signature(secret_key: str, received: dict[str, str], body: bytes) -> str:
    """TC3-HMAC-SHA256 over what was received: each signed header's value as sent, the body's hash."""
    signed = received["signed"]
    headers = "".join(f"{name}:{received['header:' + name].strip()}\n" for name in signed.split(";"))
    canonical = f"POST\n/\n\n{headers}\n{signed}\n{hashlib.sha256(body).hexdigest()}"
    scope = f"{received['date']}/{received['service']}/tc3_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"TC3-HMAC-SHA256\n{received['timestamp']}\n{scope}\n{digest}"
    key = hmac.new(f"TC3{secret_key}".encode(), received["date"].encode(), hashlib.sha256).digest()
    key = hmac.new(key, received["service"].encode(), hashlib.sha256).digest()
    key = hmac.new(key, b"tc3_request", hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class _Job:
    id: str
    owner: str
    polls: int
    fails: bool
    polls_seen: int = 0

    @property
    def status(self) -> str:
        if self.polls_seen == 0:
            return "WAIT"
        if self.polls_seen <= self.polls:
            return "RUN"
        return "FAIL" if self.fails else "DONE"


class FakeHunyuan(FakeServer):
    ENDPOINTS = ("api", "file")
    SETTINGS = ("polls_until_done", "fail_jobs")

    def __init__(
        self,
        *,
        secret_id: str = DEFAULT_SECRET_ID,
        secret_key: str = DEFAULT_SECRET_KEY,
        polls_until_done: int = 2,
        fail_jobs: bool = False,
    ) -> None:
        super().__init__(api_key=secret_id)
        self.secrets = {secret_id: secret_key}
        self.polls_until_done = polls_until_done
        self.fail_jobs = fail_jobs
        self.jobs: dict[str, _Job] = {}
        self.submitted: list[dict[str, Any]] = []

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._api, name="api")
        app.router.add_get("/files/{name}", self._file, name="file")

    async def _api(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret_id = self._verify(request, body)
        if request.headers.get("X-TC-Version") != VERSION:
            raise _error("InvalidParameterValue.Version", f"version must be {VERSION}")
        try:
            params = json.loads(body)
        except ValueError:
            raise _error("InvalidParameter", "the body is not JSON") from None
        if not isinstance(params, dict):
            raise _error("InvalidParameter", "the body must be a JSON object")
        action = request.headers.get("X-TC-Action")
        if action == SUBMIT:
            answer = self._submit(secret_id, params)
        elif action == QUERY:
            answer = self._query(secret_id, params)
        else:
            raise _error("InvalidAction", f"the action {action} does not exist")
        return web.json_response({"Response": {**answer, "RequestId": _request_id()}})

    def _submit(self, owner: str, params: dict[str, Any]) -> dict[str, Any]:
        sources = [name for name in ("ImageBase64", "ImageUrl", "Prompt") if params.get(name)]
        if len(sources) != 1:
            raise _error("InvalidParameter", "exactly one of ImageBase64, ImageUrl and Prompt is required")
        recorded = dict(params)
        if "ImageBase64" in params:
            recorded["ImageBase64"] = len(_image(params["ImageBase64"]))
        if "EnablePBR" in params and not isinstance(params["EnablePBR"], bool):
            raise _error("InvalidParameterValue.EnablePBR", "EnablePBR must be a boolean")
        if "FaceCount" in params:
            faces = params["FaceCount"]
            if isinstance(faces, bool) or not isinstance(faces, int) or not 40_000 <= faces <= 1_500_000:
                raise _error("InvalidParameterValue.FaceCount", "FaceCount must be 40000-1500000")
        if "GenerateType" in params and params["GenerateType"] not in GENERATE_TYPES:
            raise _error(
                "InvalidParameterValue.GenerateType", f"GenerateType must be one of {GENERATE_TYPES}"
            )
        job = _Job(uuid.uuid4().hex, owner, self.polls_until_done, self.fail_jobs)
        self.jobs[job.id] = job
        self.submitted.append(recorded)
        return {"JobId": job.id}

    def _query(self, owner: str, params: dict[str, Any]) -> dict[str, Any]:
        job = self.jobs.get(str(params.get("JobId")))
        if job is None or job.owner != owner:
            raise _error("ResourceNotFound", "the job does not exist")
        status = job.status
        job.polls_seen += 1
        answer: dict[str, Any] = {"Status": status, "ErrorCode": "", "ErrorMessage": "", "ResultFile3Ds": []}
        if status == "FAIL":
            answer |= {"ErrorCode": "FailedOperation.GenerateFailed", "ErrorMessage": "generation failed"}
        if status == "DONE":
            answer["ResultFile3Ds"] = [
                {"Type": "OBJ", "Url": f"{self.origin}/files/{job.id}.obj", "PreviewImageUrl": ""},
                {"Type": "GLB", "Url": f"{self.origin}/files/{job.id}.glb",
                 "PreviewImageUrl": f"{self.origin}/files/{job.id}.png"},
            ]  # fmt: skip
        return answer

    async def _file(self, request: web.Request) -> web.Response:
        job_id, _, extension = request.match_info["name"].rpartition(".")
        job = self.jobs.get(job_id)
        if job is None or job.status != "DONE":
            raise ApiError(404, {"error": "NoSuchKey"})
        if extension == "glb":
            return web.Response(body=triangle_glb(job_id), content_type="model/gltf-binary")
        if extension == "png":
            buffer = io.BytesIO()
            Image.new("RGB", (64, 64), (90, 90, 200)).save(buffer, "PNG")
            return web.Response(body=buffer.getvalue(), content_type="image/png")
        return web.Response(
            text="o triangle\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", content_type="text/plain"
        )

    def _verify(self, request: web.Request, body: bytes) -> str:
        """The caller's SecretId, once its signature is the one its SecretKey makes; else Tencent's error."""
        match = _AUTHORIZATION.match(request.headers.get("Authorization", ""))
        if match is None:
            raise _error("AuthFailure.InvalidAuthorization", "Authorization is not a TC3-HMAC-SHA256 header")
        secret_key = self.secrets.get(match["id"])
        if secret_key is None:
            raise _error("AuthFailure.SecretIdNotFound", "the SecretId is not found")
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            raise _error("AuthFailure.InvalidAuthorization", "X-TC-Timestamp is missing") from None
        if abs(time.time() - timestamp) > 300:
            raise _error("AuthFailure.SignatureExpire", "the signature expired")
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != match["date"]:
            raise _error("AuthFailure.InvalidAuthorization", "the credential's date is not the timestamp's")
        if match["service"] != SERVICE or not {"content-type", "host"} <= set(match["signed"].split(";")):
            raise _error("AuthFailure.InvalidAuthorization", "the credential must sign content-type and host")
        line = {"signed": match["signed"], "date": match["date"], "service": match["service"],
                "timestamp": str(timestamp)}  # fmt: skip
        for name in match["signed"].split(";"):
            line["header:" + name] = request.headers.get(name, "")
        if not hmac.compare_digest(expected_signature(secret_key, line, body), match["signature"]):
            raise _error("AuthFailure.SignatureFailure", "the signature is not the one the secret makes")
        return match["id"]

    # --- FakeServer hooks ---

    def _render_fault(self, request: web.Request, endpoint: str, fault: Fault) -> web.StreamResponse:
        if fault.kind == "rate_limited":
            return _error("RequestLimitExceeded", "the request rate exceeds the limit").response()
        if fault.kind == "server_error":
            return web.json_response({"message": "internal error"}, status=fault.status)
        if fault.kind == "bad_payload":
            if endpoint == "file":
                return web.Response(body=b"not a glTF file", content_type="model/gltf-binary")
            return web.json_response({"Response": {"RequestId": _request_id()}})  # no JobId, no Status
        assert fault.body is not None  # kind == "error"
        return web.json_response(fault.body, status=fault.status)

    def _route_error(self, request: web.Request, status: int, reason: str) -> ApiError:
        return ApiError(status, {"Response": {"Error": {"Code": "UnsupportedOperation", "Message": reason}}})


def _image(encoded: Any) -> bytes:
    if not isinstance(encoded, str):
        raise _error("InvalidParameter", "ImageBase64 must be a string")
    try:
        data = base64.b64decode(encoded, validate=True)
        Image.open(io.BytesIO(data)).verify()
    except (binascii.Error, ValueError, UnidentifiedImageError, OSError):
        raise _error("InvalidParameterValue.ImageBase64", "the image cannot be decoded") from None
    return data


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser("Fake Tencent Hunyuan 3D API for tests.", DEFAULT_SECRET_ID)
    parser.add_argument("--secret-key", default=DEFAULT_SECRET_KEY)
    parser.add_argument("--polls-until-done", type=int, default=2)
    parser.add_argument("--fail-jobs", action="store_true")
    args = parser.parse_args(argv)
    fake = FakeHunyuan(
        secret_id=args.api_key, secret_key=args.secret_key, polls_until_done=args.polls_until_done,
        fail_jobs=args.fail_jobs,
    )  # fmt: skip
    asyncio.run(serve(fake, args.host, args.port))


if __name__ == "__main__":
    main()
