"""The unit of work of credits: one Postgres transaction with the ledger, commerce and task-root stores bound
to it."""

from __future__ import annotations

import psycopg

from funmagic_credits.adapters.commerce import PostgresCommerceStore
from funmagic_credits.adapters.postgres import PostgresLedgerStore
from funmagic_credits.adapters.task_roots import PostgresTaskRootStore
from funmagic_kit.db import PostgresUnitOfWork

__all__ = ["CreditsUnitOfWork"]


class CreditsUnitOfWork(PostgresUnitOfWork):
    ledger: PostgresLedgerStore
    commerce: PostgresCommerceStore
    task_roots: PostgresTaskRootStore

    def bind(self, conn: psycopg.AsyncConnection) -> None:
        self.ledger = PostgresLedgerStore(conn)
        self.commerce = PostgresCommerceStore(conn)
        self.task_roots = PostgresTaskRootStore(conn)
