"""Presigned URLs signed directly are the ones botocore signs, byte for byte, for one request and time."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest
from botocore.config import Config

from funmagic_kit.s3_urls import PresignedUrls

REGION = "eu-west-3"
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def botocore_url(endpoint: str, operation: str, params: dict[str, object], expires: int) -> str:
    client = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url: str = client.generate_presigned_url(operation, Params=params, ExpiresIn=expires)
    return url


def signed_at(url: str) -> datetime:
    amz_date = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def ours(endpoint: str, at: datetime) -> PresignedUrls:
    return PresignedUrls(
        endpoint, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, clock=lambda: at
    )


@pytest.mark.parametrize(
    "key",
    [
        "user-1/uploads/1733450000000_photo.png",
        "user-1/uploads/a file (1).png",
        "user-1/ünïcødé/ñ.png",
        "odd/+=&;,$@!'*~.png",
    ],
)
@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8333", "https://s3.example.com", "https://cdn.test:443"]
)
def test_a_download_url_is_the_one_botocore_signs(endpoint: str, key: str) -> None:
    expected = botocore_url(endpoint, "get_object", {"Bucket": "funmagic-private", "Key": key}, 900)

    signed = ours(endpoint, signed_at(expected)).url("GET", "funmagic-private", key, expires_seconds=900)

    assert signed == expected


def test_an_upload_url_binds_type_and_length_as_botocore_does() -> None:
    endpoint = "http://127.0.0.1:8333"
    params = {
        "Bucket": "funmagic-private",
        "Key": "u/uploads/x.png",
        "ContentType": "image/png",
        "ContentLength": 67,
    }
    expected = botocore_url(endpoint, "put_object", params, 3600)

    signed = ours(endpoint, signed_at(expected)).url(
        "PUT",
        "funmagic-private",
        "u/uploads/x.png",
        expires_seconds=3600,
        headers={"Content-Type": "image/png", "Content-Length": "67"},
    )

    assert signed == expected
    assert parse_qs(urlsplit(signed).query)["X-Amz-SignedHeaders"] == ["content-length;content-type;host"]


def test_a_url_signed_another_day_uses_that_days_key() -> None:
    first, second = datetime(2026, 12, 5, 23, 59, 59, tzinfo=UTC), datetime(2026, 12, 6, 0, 0, 1, tzinfo=UTC)
    now = [first]
    urls = PresignedUrls(
        "http://127.0.0.1:8333",
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        clock=lambda: now[0],
    )
    before = urls.url("GET", "b", "k", expires_seconds=60)
    now[0] = second

    after = urls.url("GET", "b", "k", expires_seconds=60)

    assert after == ours("http://127.0.0.1:8333", second).url("GET", "b", "k", expires_seconds=60)
    assert "20261205%2F" in before
    assert "20261206%2F" in after


def test_an_endpoint_must_be_http_or_https() -> None:
    with pytest.raises(ValueError, match="http"):
        PresignedUrls("s3.example.com", region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY)
