"""Integration fixtures of tasks, on the local stack (`set -a; source .stack/env; set +a`).

Postgres: a fresh database per test, migrated with the kit's tables (outbox, inbox) and every migration of
`funmagic_tasks.migrations`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from funmagic_kit.db import create_pool
from funmagic_kit.settings import load_settings
from funmagic_kit.testing import scratch_database, serve_routes
from funmagic_tasks.config import TasksSettings

TASKS_MIGRATIONS = ("tasks", "funmagic_tasks.migrations")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Hooks see every collected item, not only this folder's: mark just ours.
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get("POSTGRES_URL")
    if not url:
        pytest.fail("POSTGRES_URL is unset: start the local stack (`make stack-up`) and source .stack/env")
    return url


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    async with scratch_database(postgres_url, "tasks_test", TASKS_MIGRATIONS) as url:
        yield url


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await create_pool(database_url, min_size=1, max_size=5, name="tasks-tests")
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def settings(database_url: str) -> TasksSettings:
    """Settings of the test's database and the stack's Redis; Kafka and the other services are never
    dialled (tests pass fakes of storage and providers)."""
    return load_settings(
        TasksSettings,
        env={
            "DATABASE_URL": database_url,
            "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"),
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "INTERNAL_API_TOKEN": "tasks-tests-internal-token-0123456789",
            "AUTH_JWKS_URL": "http://127.0.0.1:9/jwks",
            "STORAGE_URL": "http://127.0.0.1:9",
            "PROVIDERS_URL": "http://127.0.0.1:9",
        },
    )


@dataclass
class FakeAssets:
    """Storage as tasks sees it: the user owns exactly the assets listed (any, when the list is None)."""

    owned: set[tuple[str, str]] | None = None
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def owns(self, user_id: str, asset_id: str) -> bool:
        self.asked.append((user_id, asset_id))
        return self.owned is None or (user_id, asset_id) in self.owned


@dataclass
class FakeProviders:
    """The providers service as the catalog sees it: these names exist; every question is recorded."""

    known: set[str] = field(default_factory=lambda: {"openai", "fal", "tripo", "replicate"})
    asked: list[str] = field(default_factory=list)

    async def exists(self, name: str) -> bool:
        self.asked.append(name)
        return name in self.known

    async def model_kind(self, provider: str, model: str) -> str | None:
        """The studio's catalogue: `local` offers `local-chat` (text) and `local-image` (image)."""
        return {"local-chat": "text", "local-image": "image"}.get(model) if provider == "local" else None


@dataclass
class FakeCatalogImages:
    """Storage's `publish-for-catalog` as tasks sees it: every asset but the `missing` ones is published at
    `url(asset_id)`; each request is recorded, with the admin it was made for."""

    missing: set[str] = field(default_factory=set)
    published: list[str] = field(default_factory=list)
    on_behalf_of: list[str] = field(default_factory=list)

    @staticmethod
    def url(asset_id: str) -> str:
        return f"https://cdn.test/catalog/{asset_id}.png"

    async def publish(self, asset_id: str, admin_id: str) -> str | None:
        self.published.append(asset_id)
        self.on_behalf_of.append(admin_id)
        return None if asset_id in self.missing else self.url(asset_id)


@pytest.fixture
def assets() -> FakeAssets:
    return FakeAssets()


@pytest.fixture
def catalog_images() -> FakeCatalogImages:
    return FakeCatalogImages()


@pytest.fixture
def ports(
    assets: FakeAssets, providers: FakeProviders, catalog_images: FakeCatalogImages
) -> dict[str, object]:
    """The other services as `build` takes them: `build(settings, …, **ports)` with the fakes above."""
    return {
        "assets": assets,
        "providers": providers,
        "catalog_images": catalog_images,
        "studio_models": providers,
    }


@pytest.fixture
async def figme(app: Any) -> str:
    """A two-step tool on the local provider (cut 5 → model 7) in the test module's `app`; its slug."""
    image_type = await app.catalog.create_tool_type(name="image", display_name="Image")
    steps = [
        {"id": "cut", "name": "Cut", "type": "remove-bg", "cost": 5, "provider": {"name": "local"},
         "input": {"image": "required"}},
        {"id": "model", "name": "Model", "type": "3d-gen", "cost": 7, "provider": {"name": "local"},
         "input": {"image": "optional"}},
    ]  # fmt: skip
    await app.catalog.create_tool(
        slug="figme", title="FigMe", tool_type_id=image_type["id"], config={"steps": steps}
    )
    return "figme"


@pytest.fixture
def providers() -> FakeProviders:
    return FakeProviders()


Serve = Callable[[Sequence[web.RouteDef]], AbstractAsyncContextManager[aiohttp.ClientSession]]


@pytest.fixture
def serve() -> Serve:
    """`async with serve(routes) as http:` the routes as the runtime serves them (`serve_routes`):
    `X-Test-User` is the verified user and `X-Test-Role` their role; no principal without `X-Test-User`."""
    return lambda routes: serve_routes(routes, "tasks")
