"""Objects in S3 (any S3: SeaweedFS locally, MinIO or AWS in production) through aiobotocore.

Presigned URLs are signed directly (`funmagic_kit.s3_urls`) for the endpoint clients reach
(`S3_PUBLIC_ENDPOINT`). The calls on a task's path — a confirmation's inspection of an upload (a ranged
GET), reading an input, writing an output — go to URLs signed the same way for the services' endpoint,
sent with plain aiohttp: botocore spends ~1 ms of Python on a call that aiohttp sends in ~0.2. The rest
(buckets, copies, deletes) stays with botocore.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from botocore.exceptions import ClientError

from funmagic_kit.errors import TransientError
from funmagic_kit.s3_urls import PresignedUrls
from funmagic_storage.application.ports import ObjectInfo

__all__ = ["S3ObjectStore", "S3Refused"]

# A signature only needs to outlive the request it is made for.
_SERVICE_URL_SECONDS = 60


class S3Refused(RuntimeError):
    """S3 refused a write for a reason retrying cannot change (a wrong signature or bucket: a bug of ours)."""


class S3ObjectStore:
    def __init__(
        self,
        client: Any,
        *,
        client_urls: PresignedUrls,
        service_urls: PresignedUrls,
        http: aiohttp.ClientSession,
    ) -> None:
        self._client = client
        self._client_urls = client_urls
        self._service_urls = service_urls
        self._http = http

    async def ensure_buckets(self, *names: str) -> None:
        existing = {b["Name"] for b in (await self._client.list_buckets()).get("Buckets", [])}
        for name in names:
            if name not in existing:
                await self._client.create_bucket(Bucket=name)

    async def allow_browsers(self, origins: list[str], *names: str) -> None:
        """CORS rules so the apps' pages can PUT to presigned URLs and GET outputs from these origins."""
        rule = {
            "AllowedOrigins": origins,
            "AllowedMethods": ["GET", "PUT", "HEAD"],
            "AllowedHeaders": ["*"],
            "ExposeHeaders": ["ETag", "Content-Length", "Content-Type"],
            "MaxAgeSeconds": 3600,
        }
        for name in names:
            await self._client.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": [rule]})

    async def presign_put(
        self, bucket: str, key: str, *, content_type: str, size: int, ttl_seconds: int
    ) -> str:
        # Content type and length are part of the signature: S3 refuses a different body.
        return self._client_urls.url(
            "PUT",
            bucket,
            key,
            expires_seconds=ttl_seconds,
            headers={"Content-Type": content_type, "Content-Length": str(size)},
        )

    async def presign_get(
        self, bucket: str, key: str, *, ttl_seconds: int, filename: str | None = None
    ) -> str:
        return self._client_urls.url("GET", bucket, key, expires_seconds=ttl_seconds)

    async def head(self, bucket: str, key: str) -> ObjectInfo | None:
        try:
            response = await self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise TransientError(f"S3 HEAD failed ({type(error).__name__})") from error
        return ObjectInfo(int(response["ContentLength"]), str(response.get("ContentType", "")))

    async def inspect(self, bucket: str, key: str, length: int = 32) -> ObjectInfo | None:
        # One ranged GET instead of a HEAD and a GET: its Content-Range names the whole object's size.
        url = self._service_urls.url("GET", bucket, key, expires_seconds=_SERVICE_URL_SECONDS)
        try:
            async with self._http.get(url, headers={"Range": f"bytes=0-{length - 1}"}) as response:
                if response.status == 404:
                    return None
                if response.status == 416:
                    # An empty object has no first byte to range over: what a HEAD says, and no bytes.
                    return await self.head(bucket, key)
                if response.status not in (200, 206):
                    raise TransientError(f"S3 GET failed ({response.status})")
                # At most `length`: a server that ignored the range would otherwise send the whole object.
                first_bytes = b""
                while len(first_bytes) < length and (
                    chunk := await response.content.read(length - len(first_bytes))
                ):
                    first_bytes += chunk
                return ObjectInfo(
                    _object_size(response.headers.get("Content-Range"), response.content_length or 0),
                    response.headers.get("Content-Type", ""),
                    first_bytes,
                )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientError(f"S3 GET failed ({type(error).__name__})") from error

    async def read(self, bucket: str, key: str) -> bytes:
        url = self._service_urls.url("GET", bucket, key, expires_seconds=_SERVICE_URL_SECONDS)
        try:
            async with self._http.get(url) as response:
                if response.status != 200:
                    raise TransientError(f"S3 GET failed ({response.status})")
                return await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientError(f"S3 GET failed ({type(error).__name__})") from error

    async def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        # Type and length are signed, as for a browser's upload: S3 stores exactly this body and type.
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        url = self._service_urls.url(
            "PUT", bucket, key, expires_seconds=_SERVICE_URL_SECONDS, headers=headers
        )
        try:
            async with self._http.put(url, data=body, headers={"Content-Type": content_type}) as response:
                if response.status >= 500:  # a store that cannot write now (a full disk): try again later
                    raise TransientError(f"S3 PUT failed ({response.status})")
                if response.status != 200:
                    raise S3Refused(f"S3 PUT refused: {response.status} {await response.text()}")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise TransientError(f"S3 PUT failed ({type(error).__name__})") from error

    async def copy_public(
        self, source_bucket: str, source_key: str, bucket: str, key: str, content_type: str
    ) -> None:
        await self._client.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": source_bucket, "Key": source_key},
            MetadataDirective="REPLACE",
            ContentType=content_type,
            CacheControl="max-age=31536000, immutable",
        )

    async def delete(self, bucket: str, key: str) -> None:
        await self._client.delete_object(Bucket=bucket, Key=key)


def _object_size(content_range: str | None, content_length: int) -> int:
    """The whole object's size: "bytes 0-31/67" → 67; without a range answered, the body's own length."""
    if content_range:
        total = content_range.rpartition("/")[2]
        if total.isdigit():
            return int(total)
    return content_length
