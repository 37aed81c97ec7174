"""What a provider call's record keeps: images, base64 data, long strings and secrets become markers, at
any depth; a body past the cap is cut with a marker; of the headers only the request ids stay; the URL
loses its query and credentials."""

import base64
import json

from funmagic_providers.domain.provider_calls import (
    MAX_BODY_CHARS,
    MAX_STRING_CHARS,
    body_of,
    capped,
    credentials_of,
    redact,
    redacted_body,
    request_ids,
    safe_url,
)

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40).decode()
KEY = "sk-live-abcdefghijklmnop0123456789"


def test_a_base64_image_becomes_a_marker_with_its_length() -> None:
    assert redact({"b64_json": PNG}) == {"b64_json": f"<redacted base64, {len(PNG)} chars>"}


def test_a_data_url_becomes_a_marker_whatever_its_length() -> None:
    short = "data:image/png;base64,iVBORw0KGgo="
    long = f"data:image/png;base64,{PNG}"
    assert redact([short, long]) == [
        f"<redacted data URL, {len(short)} chars>",
        f"<redacted data URL, {len(long)} chars>",
    ]


def test_a_long_string_becomes_a_marker_and_a_prompt_stays() -> None:
    prompt = "a lighthouse at dusk, in the style of an old postcard " * 10
    essay = "word " * (MAX_STRING_CHARS // 5 + 1)
    assert redact({"prompt": prompt, "text": essay}) == {
        "prompt": prompt,
        "text": f"<redacted {len(essay)} chars>",
    }


def test_short_ids_urls_and_other_values_stay_as_they_are() -> None:
    value = {
        "id": "req_0123456789abcdef",
        "url": "https://fal.media/files/abc/out.png",
        "n": 3,
        "ratio": 0.5,
        "ok": True,
        "none": None,
    }
    assert redact(value) == value


def test_nested_lists_and_objects_are_redacted_at_every_depth() -> None:
    body = {
        "data": [{"b64_json": PNG, "revised_prompt": "a cat"}],
        "input": [{"content": [{"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}],
    }
    redacted = redact(body)
    assert redacted == {
        "data": [{"b64_json": f"<redacted base64, {len(PNG)} chars>", "revised_prompt": "a cat"}],
        "input": [
            {"content": [{"type": "input_image", "image_url": f"<redacted data URL, {len(PNG) + 22} chars>"}]}
        ],
    }
    assert PNG[:40] not in json.dumps(redacted)


def test_values_under_a_secrets_name_are_never_kept() -> None:
    assert redact({"api_key": KEY, "nested": [{"Authorization": f"Bearer {KEY}"}], "x-api-key": KEY}) == {
        "api_key": "<redacted secret>",
        "nested": [{"Authorization": "<redacted secret>"}],
        "x-api-key": "<redacted secret>",
    }


def test_a_body_past_the_cap_is_cut_with_a_marker_and_a_small_one_is_whole() -> None:
    small = {"items": ["x" * 100] * 3}
    assert capped(small) == small
    big = {"items": ["a word " * 150] * 20}  # many strings, each short enough to be kept
    whole = len(json.dumps(big, separators=(",", ":")))
    cut = redacted_body(big)
    assert isinstance(cut, str)
    assert cut.endswith(f"… <truncated, {whole} chars in all>")
    assert len(cut) <= MAX_BODY_CHARS + 60


def test_raw_bodies_json_is_redacted_text_kept_and_files_only_named() -> None:
    assert body_of(json.dumps({"b64_json": PNG}).encode(), "application/json") == {
        "b64_json": f"<redacted base64, {len(PNG)} chars>"
    }
    assert body_of(b"upstream failed", "text/plain; charset=utf-8") == "upstream failed"
    assert body_of(b"\x89PNG....", "image/png") == "<image/png body, 8 bytes>"
    assert body_of(b"{not json", "application/json") == "<unreadable JSON, 9 bytes>"
    assert body_of(b"", "application/json") is None


def test_only_request_id_headers_are_kept_never_a_key_or_a_cookie() -> None:
    headers = [
        ("Authorization", f"Bearer {KEY}"),
        ("x-api-key", KEY),
        ("Set-Cookie", "session=abc"),
        ("Content-Type", "application/json"),
        ("x-request-id", "req_123"),
        ("X-Fal-Request-Id", "fal-456"),
        ("openai-organization", "org-1"),
    ]
    kept = request_ids(headers)
    assert kept == {"x-request-id": "req_123", "x-fal-request-id": "fal-456"}
    assert KEY not in repr(kept)


def test_a_url_loses_its_query_fragment_and_credentials() -> None:
    assert (
        safe_url("https://user:secret@api.example.com:8443/v1/images/edits?key=sk-123&sig=abc#frag")
        == "https://api.example.com:8443/v1/images/edits"
    )
    assert (
        safe_url("http://127.0.0.1:5000/v1/images/generations")
        == "http://127.0.0.1:5000/v1/images/generations"
    )


def test_the_calls_own_credential_and_a_masked_echo_of_a_key_are_scrubbed_from_strings() -> None:
    secrets = credentials_of([("Authorization", f"Bearer {KEY}"), ("Content-Type", "application/json")])
    assert secrets == [KEY]
    assert credentials_of([("Authorization", f"Key {KEY}")]) == [KEY]
    answer = {
        "error": {"message": f"Incorrect API key provided: sk-l{'*' * 20}6789. See your account."},
        "echo": f"you sent {KEY}",
    }
    assert redact(answer, secrets=secrets) == {
        "error": {"message": "Incorrect API key provided: <redacted secret>. See your account."},
        "echo": "you sent <redacted secret>",
    }
