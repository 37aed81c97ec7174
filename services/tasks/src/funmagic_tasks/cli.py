"""Operator commands: `python -m funmagic_tasks seed [--image-provider …] [--background-provider …]
[--model-provider …] [--update]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any

from funmagic_kit.db import UnitOfWork, create_pool
from funmagic_kit.migrations import migrate_database
from funmagic_tasks.adapters.catalog_records import CatalogRecords, publish_to_outbox
from funmagic_tasks.application.catalog import Catalog
from funmagic_tasks.domain.catalog import InvalidCatalogEntry
from funmagic_tasks.seed import seed_catalog

__all__ = ["COMMANDS", "seed_command"]

TASKS_MIGRATIONS = ("tasks", "funmagic_tasks.migrations")


class _SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def _any_provider(name: str) -> bool:
    """The seed names providers without asking the providers service: it runs before that service is up
    (`make run` seeds first) or without it at all. Every seed tool runs on `local` unless the operator names
    other providers; a provider that is then missing fails the task's step with `provider_not_found`."""
    return True


async def seed_command(settings: Any, argv: Sequence[str]) -> int:
    """Creates the product's tool types, tools and demo banners where missing; prints what it did."""
    parser = argparse.ArgumentParser(prog="python -m funmagic_tasks seed")
    parser.add_argument("--image-provider", default="local", help="provider of image-gen steps (openai)")
    parser.add_argument("--background-provider", default="local", help="provider of remove-bg steps (fal)")
    parser.add_argument("--model-provider", default="local", help="provider of 3d-gen steps (tripo)")
    parser.add_argument(
        "--update", action="store_true", help="write the seed's values over existing entries that differ"
    )
    args = parser.parse_args(list(argv))
    async with AsyncExitStack() as stack:
        url = settings.database_url.get_secret_value()
        await migrate_database(url, TASKS_MIGRATIONS)
        pool = await create_pool(url, min_size=1, max_size=2, name="tasks-cli")
        stack.push_async_callback(pool.close)
        catalog = Catalog(
            uow=lambda: UnitOfWork(pool),
            records=CatalogRecords,
            publish=publish_to_outbox,
            provider_exists=_any_provider,
            clock=_SystemClock(),
        )
        try:
            report = await seed_catalog(
                catalog,
                image_provider=args.image_provider,
                background_provider=args.background_provider,
                model_provider=args.model_provider,
                update_existing=args.update,
            )
        except InvalidCatalogEntry as error:  # e.g. a provider name that is not one
            print(f"seed refused: {error}", file=sys.stderr)
            return 2
    for group, entries in report.items():
        for name, action in entries.items():
            print(f"{group[:-1].replace('_', ' ')} {name}: {action}")
    return 0


COMMANDS = {"seed": seed_command}
