"""The unit of work of tasks: one Postgres transaction with the service's stores bound to it."""

from __future__ import annotations

import psycopg

from funmagic_kit.db import PostgresUnitOfWork
from funmagic_tasks.adapters.account_records import AccountRecords
from funmagic_tasks.adapters.catalog_records import CatalogRecords
from funmagic_tasks.adapters.studio_records import StudioRecords
from funmagic_tasks.adapters.task_records import TaskRecords

__all__ = ["TasksUnitOfWork"]


class TasksUnitOfWork(PostgresUnitOfWork):
    tasks: TaskRecords
    catalog: CatalogRecords
    studio: StudioRecords
    accounts: AccountRecords

    def bind(self, conn: psycopg.AsyncConnection) -> None:
        self.tasks = TaskRecords(conn)
        self.catalog = CatalogRecords(conn)
        self.studio = StudioRecords(conn)
        self.accounts = AccountRecords(conn)
