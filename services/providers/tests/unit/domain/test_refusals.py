"""What an admin's client sees when the registry says no: the statuses and codes stay as they were when
providers mapped them itself (the kit's problem middleware maps the refusal kinds now)."""

from __future__ import annotations

import json

import pytest

from funmagic_kit.errors import Refused
from funmagic_kit.http import refusal_problem
from funmagic_providers.domain.providers import (
    InvalidProvider,
    ProviderExists,
    ProviderNotFound,
    check_base_url,
)


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (ProviderNotFound("no such provider"), 404, "not_found"),
        (ProviderExists("a web provider named 'x' exists already"), 409, "provider_exists"),
        (InvalidProvider("apiKey", "a fal provider needs an API key"), 422, "invalid_provider"),
    ],
)
def test_each_refusal_keeps_its_status_and_code(refusal: Refused, status: int, code: str) -> None:
    response = refusal_problem(refusal)

    body = json.loads(response.text or "")
    assert (response.status, body["code"], body["detail"]) == (status, code, str(refusal))


def test_an_invalid_provider_names_the_field_at_fault() -> None:
    with pytest.raises(InvalidProvider) as refused:
        check_base_url("ftp://example.com", "fal")

    body = json.loads(refusal_problem(refused.value).text or "")
    assert body["field"] == "baseUrl"
    assert body["detail"].startswith("baseUrl: ")
