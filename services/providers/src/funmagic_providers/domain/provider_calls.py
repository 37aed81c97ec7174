"""Provider diagnostics: what a step job's HTTP calls to its provider looked like, kept for admins.

One record per HTTP exchange: method, URL (without query or credentials), status, duration, the provider's
request id headers and both JSON bodies — redacted and capped here, before anything is stored:

- a string that is a data URL, looks like base64 (an image, a file) or is simply long becomes a marker
  `"<redacted base64, 123456 chars>"`, so an image never lands in the database or on an admin's screen;
- a value under a secret's name (`api_key`, `authorization`, …) becomes `"<redacted secret>"`, and so
  does the call's own credential wherever it shows in a string, or a masked echo of a key
  (`sk-a***************wxyz`, as a provider's 401 answer quotes it);
- a body still larger than `MAX_BODY_CHARS` after that is cut, with a marker saying how long it was.

Headers are never kept but for the request id ones (`x-request-id`, `x-fal-request-id`…): an
`Authorization` header or a key cannot reach a record. Pure: stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from funmagic_providers.domain.documents import JsonValue

__all__ = [
    "MAX_BODY_CHARS",
    "MAX_CALLS_PER_JOB",
    "MAX_STRING_CHARS",
    "ProviderCall",
    "body_of",
    "capped",
    "credentials_of",
    "redact",
    "redacted_body",
    "request_ids",
    "safe_url",
]

MAX_STRING_CHARS = 2000
"""A string longer than this is replaced by a marker (a prompt fits; a file does not)."""
MAX_BODY_CHARS = 8 * 1024
"""A body's JSON text after redaction is cut at this many characters: a record (two bodies) stays
under 16 KiB."""
MAX_CALLS_PER_JOB = 200
"""A job keeps its first calls only: a long poll loop must not fill the table."""
_MIN_BASE64_CHARS = 200  # shorter runs of letters and digits are ids, hashes, tokens of a sentence
_MAX_DEPTH = 32
_MAX_HEADER_VALUE = 200

_BASE64 = re.compile(r"[A-Za-z0-9+/_\-\r\n]+={0,2}")
_DATA_URL = re.compile(r"data:[^,;]{0,100}(;[^,;]{0,100})*;base64,", re.IGNORECASE)
# Names (lower case, `-` as `_`) whose values are secrets wherever they appear in a body.
_SECRET_NAMES = frozenset(
    {"authorization", "api_key", "apikey", "x_api_key", "key", "secret", "client_secret", "password",
     "access_token", "refresh_token", "id_token", "proxy_authorization", "cookie", "set_cookie",
     "x_goog_api_key"}
)  # fmt: skip
# A key as providers quote it masked (`sk-a***********wxyz`): whatever it shows of the key goes too.
_MASKED_KEY = re.compile(r"[A-Za-z0-9_\-]{0,16}\*{4,}[A-Za-z0-9_\-]{0,8}")
_SECRET_MARKER = "<redacted secret>"
_MIN_SECRET_CHARS = 8  # shorter "credentials" (a test's placeholder) would scrub ordinary words
_REQUEST_ID_HEADER = re.compile(r"^(x-)?([a-z0-9]+-)*(request-id|trace-id|req-id)$")


@dataclass(frozen=True)
class ProviderCall:
    """One HTTP exchange with a provider, already redacted. `status` is None when no answer came (the
    connection failed, the call timed out or was cancelled); `error` then says which, in our words."""

    started_at: datetime
    method: str
    url: str
    status: int | None
    duration_ms: int
    request_ids: Mapping[str, str] = field(default_factory=dict)
    request_body: JsonValue = None
    response_body: JsonValue = None
    error: str | None = None


def redact(
    value: JsonValue,
    *,
    secrets: Sequence[str] = (),
    max_string: int = MAX_STRING_CHARS,
    _depth: int = 0,
) -> JsonValue:
    """The value with images, files, long strings and secrets replaced by markers (see the module);
    `secrets` are the call's credentials, scrubbed from every string."""
    if _depth > _MAX_DEPTH:
        return "<redacted: nested too deep>"
    if isinstance(value, str):
        return _redacted_string(value, max_string, secrets)
    if isinstance(value, Mapping):
        return {
            str(name): _SECRET_MARKER
            if _is_secret_name(str(name))
            else redact(item, secrets=secrets, max_string=max_string, _depth=_depth + 1)
            for name, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item, secrets=secrets, max_string=max_string, _depth=_depth + 1) for item in value]
    return value


def capped(value: JsonValue, *, limit: int = MAX_BODY_CHARS) -> JsonValue:
    """The value itself if its JSON text has at most `limit` characters, else that text cut at `limit`,
    with a marker giving the whole length (a string then: the view shows it as it is)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= limit:
        return value
    return f"{text[:limit]}… <truncated, {len(text)} chars in all>"


def redacted_body(value: JsonValue, *, secrets: Sequence[str] = ()) -> JsonValue:
    """What is kept of a body: redacted, then capped."""
    return capped(redact(value, secrets=secrets))


def body_of(data: bytes, content_type: str | None, *, secrets: Sequence[str] = ()) -> JsonValue:
    """What is kept of raw body bytes: a JSON body redacted and capped; text the same as one string; any
    other body (an image, a model, a multipart upload) only named, with its size."""
    if not data:
        return None
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json") or not kind:
        try:
            return redacted_body(json.loads(data), secrets=secrets)
        except ValueError:
            if kind:
                return f"<unreadable JSON, {len(data)} bytes>"
    if (kind.startswith("text/") and kind != "text/event-stream") or not kind:
        try:
            return redacted_body(data.decode("utf-8"), secrets=secrets)
        except UnicodeDecodeError:
            pass
    return f"<{kind or 'binary'} body, {len(data)} bytes>"


def request_ids(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The provider's request id headers (`x-request-id`, `x-fal-request-id`, `request-id`…) and nothing
    else of the headers: whatever else a header holds (a key, a cookie) is never kept."""
    kept: dict[str, str] = {}
    for name, value in headers:
        lowered = name.lower()
        if _REQUEST_ID_HEADER.match(lowered) and not _is_secret_name(lowered):
            kept[lowered] = _redacted_string(str(value), _MAX_HEADER_VALUE, ())
    return kept


def safe_url(url: str) -> str:
    """The URL without its query (it may carry a key or a signature), its fragment or any credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def credentials_of(headers: Iterable[tuple[str, str]]) -> list[str]:
    """The credentials a request carries in its headers (`Authorization: Bearer …`, `Key …`, an API key
    header), to scrub from what the provider answers: some echo the key, or part of it."""
    found = []
    for name, value in headers:
        if _is_secret_name(name):
            _, _, token = value.strip().rpartition(" ")
            if len(token) >= _MIN_SECRET_CHARS:
                found.append(token)
    return found


def _redacted_string(value: str, max_string: int, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if len(secret) >= _MIN_SECRET_CHARS:
            value = value.replace(secret, _SECRET_MARKER)
    value = _MASKED_KEY.sub(_SECRET_MARKER, value)
    if _DATA_URL.match(value):
        return f"<redacted data URL, {len(value)} chars>"
    if len(value) >= _MIN_BASE64_CHARS and _BASE64.fullmatch(value):
        return f"<redacted base64, {len(value)} chars>"
    if len(value) > max_string:
        return f"<redacted {len(value)} chars>"
    return value


def _is_secret_name(name: str) -> bool:
    return name.lower().replace("-", "_") in _SECRET_NAMES
