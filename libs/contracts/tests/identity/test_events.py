from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from funmagic_contracts.identity import events
from funmagic_contracts.identity.events import UserRegistered, UserRoleChanged

AT = datetime(2025, 1, 1, tzinfo=UTC)


def test_identity_events_are_published_on_identity_events_keyed_by_user():
    for name in (
        "UserRegistered",
        "UserEmailVerified",
        "UserRoleChanged",
        "UserDisabled",
        "UserEnabled",
        "UserDeleted",
    ):
        model = getattr(events, name)
        assert (model.TOPIC, model.SUBJECT_FIELD) == ("identity.events", "user_id")


def test_a_registration_method_outside_the_catalog_is_rejected():
    with pytest.raises(ValidationError, match="method"):
        UserRegistered(user_id="u", email="a@b.c", name="A", method="facebook", registered_at=AT)


def test_a_registration_time_must_be_tz_aware():
    with pytest.raises(ValidationError, match="registered_at"):
        UserRegistered(
            user_id="u", email="a@b.c", name="A", method="email", registered_at=datetime(2025, 1, 1)
        )


def test_roles_are_user_admin_or_super_admin():
    UserRoleChanged(user_id="u", old_role="user", new_role="super_admin", changed_by="a")

    with pytest.raises(ValidationError, match="new_role"):
        UserRoleChanged(user_id="u", old_role="user", new_role="root", changed_by="a")
