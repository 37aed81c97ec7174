"""The unit of work of storage: one Postgres transaction with the asset records bound to it."""

from __future__ import annotations

import psycopg

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_storage.adapters.postgres import AssetRecords

__all__ = ["StorageUnitOfWork"]


class StorageUnitOfWork(PostgresUnitOfWork):
    assets: AssetRecords

    def bind(self, conn: psycopg.AsyncConnection) -> None:
        self.assets = AssetRecords(conn)
