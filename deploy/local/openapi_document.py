"""Writes the gateway's OpenAPI document without starting anything: the gateway is built over clients that
are never used (nothing is dialled), and its document is the one `/openapi.json` serves.

    python deploy/local/openapi_document.py [path]     # default: standard output

The apps' API types are generated from it (`make web-types`), and a test regenerates them to check that the
committed ones are current.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from funmagic_gateway.bootstrap import build
from funmagic_gateway.config import GatewaySettings
from funmagic_kit.auth import JwksSource, TokenVerifier
from funmagic_kit.settings import load_settings

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing is ever sent there


async def document() -> dict:
    env = {
        "HTTP_PORT": "1",
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "INTERNAL_API_TOKEN": "x" * 32,
        "AUTH_JWKS_URL": f"{NOWHERE}/.well-known/jwks.json",
        **{f"{name}_URL": NOWHERE for name in ("IDENTITY", "TASKS", "CREDITS", "STORAGE", "PROVIDERS")},
    }
    settings = load_settings(GatewaySettings, env=env)
    redis = Redis.from_url(env["REDIS_URL"])
    try:
        async with aiohttp.ClientSession() as http:
            jwks = JwksSource.from_url(env["AUTH_JWKS_URL"])
            verifier = TokenVerifier(jwks, redis, issuer="-", audience="-")
            gateway = build(settings, redis=redis, stream_reads=redis, http=http, verifier=verifier)
            return gateway.api.document
    finally:
        await redis.aclose()


def main() -> int:
    text = json.dumps(asyncio.run(document()), indent=1, sort_keys=False) + "\n"
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
