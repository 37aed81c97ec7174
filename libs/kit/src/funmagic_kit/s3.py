"""The S3 client factory (aiobotocore). Nothing here is specific to one S3 server."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from funmagic_kit.settings import S3Settings

__all__ = ["open_presigning_client", "open_s3_client"]


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


async def open_presigning_client(settings: S3Settings, stack: AsyncExitStack) -> Any:
    """A client that signs URLs for the host clients reach (`S3_PUBLIC_ENDPOINT`); it never connects."""
    return await open_s3_client(settings, stack, endpoint=settings.s3_public_endpoint or settings.s3_endpoint)
