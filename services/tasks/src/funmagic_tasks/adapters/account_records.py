"""The standing of accounts identity closed (`closed_accounts`), mapped to and from `domain.accounts`."""

from __future__ import annotations

from typing import Any

import psycopg

from funmagic_kit.pipelined import Sent
from funmagic_kit.rows import from_row, to_row
from funmagic_tasks.domain.accounts import Standing

__all__ = ["AccountRecords"]

# Not locked here: the account's reactions and its task creations both hold the user's creation lock
# (`TaskStore.hold_creations_of`) first, so they take turns.
SELECT_STANDING = "SELECT user_id, closure, closed_at FROM closed_accounts WHERE user_id = %s"
UPSERT_STANDING = """
INSERT INTO closed_accounts (user_id, closure, closed_at) VALUES (%(user_id)s, %(closure)s, %(closed_at)s)
ON CONFLICT (user_id) DO UPDATE SET closure = EXCLUDED.closure, closed_at = EXCLUDED.closed_at
"""


class AccountRecords:
    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn

    async def standing(self, user_id: str) -> Standing:
        return await (await self.send_standing(user_id)).answer()

    async def send_standing(self, user_id: str) -> Sent[Standing]:
        async def read(cursor: psycopg.AsyncCursor[Any]) -> Standing:
            row = await cursor.fetchone()
            return Standing(user_id) if row is None else from_row(Standing, row)

        return Sent(await self._conn.execute(SELECT_STANDING, (user_id,)), read)

    async def save(self, standing: Standing) -> None:
        if standing.is_open:
            await self._conn.execute("DELETE FROM closed_accounts WHERE user_id = %s", (standing.user_id,))
        else:
            await self._conn.execute(UPSERT_STANDING, to_row(standing))
