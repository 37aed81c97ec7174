"""The files of a deleted account, given/when/then: given a deleted account's purge and its files, when the
grace period passes, then these files go (and the published ones stay). No I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from funmagic_kit.settings import load_settings
from funmagic_storage.config import StorageSettings
from funmagic_storage.domain.assets import AssetRecord
from funmagic_storage.domain.deleted_owners import (
    OwnerDeleted,
    OwnerPurge,
    assets_purged_with_their_owner,
    check_owner_not_deleted,
    purge_is_due,
    purged,
    schedule_purge,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
GRACE = timedelta(hours=72)
USER, OTHER = "u-1", "u-2"

UPLOAD = AssetRecord(
    id="a-1",
    user_id=USER,
    bucket="priv",
    storage_key="u-1/uploads/1_photo.png",
    visibility="private",
    module="uploads",
    filename="photo.png",
    mime_type="image/png",
    kind="image",
    size=10,
    task_id=None,
    public_key=None,
    created_at=T0,
    updated_at=T0,
)


def test_a_deleted_accounts_files_are_due_to_go_once_the_grace_period_has_passed() -> None:
    purge = schedule_purge(USER, now=T0, grace=GRACE)

    assert purge == OwnerPurge(user_id=USER, deleted_at=T0, due_at=T0 + GRACE)
    assert not purge_is_due(purge, T0)
    assert not purge_is_due(purge, T0 + GRACE - timedelta(seconds=1))
    assert purge_is_due(purge, T0 + GRACE)
    assert purge_is_due(purge, T0 + GRACE + timedelta(days=30))  # a worker that was down catches up


def test_with_no_grace_period_the_files_are_due_at_once() -> None:
    assert purge_is_due(schedule_purge(USER, now=T0, grace=timedelta(0)), T0)


def test_a_purge_done_is_not_due_again_and_keeps_when_it_was_done() -> None:
    done = purged(schedule_purge(USER, now=T0, grace=GRACE), now=T0 + GRACE)

    assert done.purged_at == T0 + GRACE
    assert not purge_is_due(done, T0 + 2 * GRACE)
    assert purged(done, now=T0 + 2 * GRACE) == done


def test_every_file_of_the_owner_goes_but_the_published_ones_and_nobody_elses() -> None:
    output = replace(UPLOAD, id="a-2", module="image-gen", task_id="t-1")
    admin_only = replace(UPLOAD, id="a-3", visibility="admin-private", bucket="admin")
    published = replace(UPLOAD, id="a-4", visibility="public", public_key="shared/u-1/a-4/photo.png")
    someone_elses = replace(UPLOAD, id="a-5", user_id=OTHER)

    doomed = assets_purged_with_their_owner(
        [UPLOAD, output, admin_only, published, someone_elses], user_id=USER
    )

    assert [a.id for a in doomed] == ["a-1", "a-2", "a-3"]


def test_nothing_is_registered_for_a_deleted_account() -> None:
    check_owner_not_deleted(None)  # an account never deleted
    with pytest.raises(OwnerDeleted) as refused:
        check_owner_not_deleted(schedule_purge(USER, now=T0, grace=GRACE))
    assert refused.value.code == "owner_deleted"


def test_the_grace_period_is_a_setting_of_72_hours_by_default() -> None:
    env = {
        "DATABASE_URL": "postgresql://u:p@localhost/db",
        "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
        "REDIS_URL": "redis://localhost:6379/0",
        "INTERNAL_API_TOKEN": "t" * 32,
        "AUTH_JWKS_URL": "http://identity/.well-known/jwks.json",
        "S3_ENDPOINT": "http://s3",
        "S3_ACCESS_KEY": "a",
        "S3_SECRET_KEY": "s",
        "CDN_URL": "http://cdn",
    }
    assert load_settings(StorageSettings, env=env).deleted_user_asset_grace_hours == 72
    short = load_settings(StorageSettings, env={**env, "DELETED_USER_ASSET_GRACE_HOURS": "0.001"})
    assert short.deleted_user_asset_grace_hours == 0.001
