"""The S3 client factory (aiobotocore) and URL signers. Nothing here is specific to one S3 server."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from funmagic_kit.s3_urls import PresignedUrls
from funmagic_kit.settings import S3Settings

__all__ = ["open_s3_client", "presigned_urls"]


async def open_s3_client(settings: S3Settings, stack: AsyncExitStack, *, endpoint: str | None = None) -> Any:
    """An S3 client that lives as long as `stack`; path-style addressing works with any S3 server."""
    session = get_session()
    return await stack.enter_async_context(
        session.create_client(
            "s3",
            endpoint_url=endpoint or settings.s3_endpoint,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key.get_secret_value(),
            aws_secret_access_key=settings.s3_secret_key.get_secret_value(),
            config=AioConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
        )
    )


def presigned_urls(settings: S3Settings, *, for_clients: bool) -> PresignedUrls:
    """The URL signer for the host clients reach (`S3_PUBLIC_ENDPOINT`, `for_clients`) or the one services
    use (`S3_ENDPOINT`): a presigned URL is valid only for the host it was signed for."""
    endpoint = (settings.s3_public_endpoint or settings.s3_endpoint) if for_clients else settings.s3_endpoint
    return PresignedUrls(
        endpoint,
        region=settings.s3_region,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
    )
