"""What storage does with the files of a deleted account (identity's UserDeleted), as rules. Pure.

The files do not go at once: their purge is due a grace period after the deletion
(`DELETED_USER_ASSET_GRACE_HOURS`, 72 by default), so that an operator can still hand a user's files back
after a mistaken or contested deletion (identity keeps the deleted user's row). When it is due, the purge
worker deletes every asset the user owns — records and objects, each with AssetDeleted — except the
published ones, which stay at their public link as a deleted task's do (an admin's published uploads are the
catalog's tool and banner images; a user's are links they shared). From the deletion on, nothing new is
registered for the user (an output of a task that was finishing is refused), so the purge leaves nothing
behind. A disabled account keeps everything: only a deletion schedules a purge.

    UserDeleted ──schedule_purge──► scheduled (due_at = deleted_at + grace) ──(due) purge──► purged
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from funmagic_kit.errors import Conflict
from funmagic_storage.domain.assets import AssetRecord, published_assets_outlive_their_task

__all__ = [
    "OwnerDeleted",
    "OwnerPurge",
    "assets_purged_with_their_owner",
    "check_owner_not_deleted",
    "purge_is_due",
    "purged",
    "schedule_purge",
]


class OwnerDeleted(Conflict, code="owner_deleted"):
    """A file arrived for a deleted account: its files are on their way out, and so is this one."""


@dataclass(frozen=True)
class OwnerPurge:
    """The scheduled removal of a deleted account's files: due at `due_at`, done at `purged_at`."""

    user_id: str
    deleted_at: datetime
    due_at: datetime
    purged_at: datetime | None = None


# --- rules ---------------------------------------------------------------------------------------------


def purge_is_due(purge: OwnerPurge, now: datetime) -> bool:
    """Once the grace period has passed, and only once."""
    return purge.purged_at is None and purge.due_at <= now


def assets_purged_with_their_owner(assets: Iterable[AssetRecord], *, user_id: str) -> list[AssetRecord]:
    """Of `assets`, those that go with `user_id`'s account: every one they own, except the published ones
    (the same rule as for a deleted task's outputs)."""
    return [
        asset
        for asset in assets
        if asset.user_id == user_id and not published_assets_outlive_their_task(asset)
    ]


def check_owner_not_deleted(purge: OwnerPurge | None) -> None:
    """Raises OwnerDeleted when the account is deleted (a purge is scheduled or done)."""
    if purge is not None:
        raise OwnerDeleted(f"the account {purge.user_id} was deleted; its files are not kept")


# --- transitions ---------------------------------------------------------------------------------------


def schedule_purge(user_id: str, *, now: datetime, grace: timedelta) -> OwnerPurge:
    """The account was deleted now: its files go once `grace` has passed. (The store keeps the first
    schedule of an account: a redelivered UserDeleted does not push the purge back.)"""
    return OwnerPurge(user_id=user_id, deleted_at=now, due_at=now + grace)


def purged(purge: OwnerPurge, *, now: datetime) -> OwnerPurge:
    return purge if purge.purged_at is not None else replace(purge, purged_at=now)
