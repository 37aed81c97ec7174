"""The rules of a user's self-service: what a profile change changes, when a password may be changed.

Given a user, when they ask for a change, then the rule answers the columns to update or refuses by name.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from funmagic_identity.domain.errors import InvalidInput, PasswordNotSet, WeakPassword, WrongPassword
from funmagic_identity.domain.users import (
    NAME_MAX_LENGTH,
    ProfileChange,
    User,
    password_change_is_allowed,
    profile_changes,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
AVATAR = "0190f3a2-1111-7000-8000-000000000001"
OTHER_AVATAR = "0190f3a2-2222-7000-8000-000000000002"
GOOD_PASSWORD = "correct horse battery staple"


def given_user(*, name: str = "Alice", avatar_asset_id: str | None = None) -> User:
    return User(
        id="u-1",
        email="alice@example.com",
        name=name,
        avatar_asset_id=avatar_asset_id,
        has_password=True,
        created_at=NOW,
        updated_at=NOW,
    )


# --- profile_changes ------------------------------------------------------------------------------


def test_a_new_name_is_trimmed_and_changed() -> None:
    assert profile_changes(given_user(), ProfileChange(name="  Alice Liddell \t")) == {
        "name": "Alice Liddell"
    }


def test_a_name_is_folded_by_nfkc_like_emails() -> None:
    assert profile_changes(given_user(), ProfileChange(name="Ａｌｉｃｅ Ｂ")) == {"name": "Alice B"}


def test_the_same_name_changes_nothing() -> None:
    assert profile_changes(given_user(name="Alice"), ProfileChange(name=" Alice ")) == {}


def test_an_empty_change_changes_nothing() -> None:
    assert profile_changes(given_user(avatar_asset_id=AVATAR), ProfileChange()) == {}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("   ", "cannot be empty"),
        ("\u00a0", "cannot be empty"),
        ("x" * (NAME_MAX_LENGTH + 1), "at most 100"),
        ("Alice\nBob", "control characters"),
        ("Alice\x00", "control characters"),
    ],
)
def test_a_name_breaking_the_rules_is_refused_as_invalid_input(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as refused:
        profile_changes(given_user(), ProfileChange(name=name))
    assert refused.value.field == "name"


def test_a_name_of_exactly_the_longest_length_is_accepted() -> None:
    name = "y" * NAME_MAX_LENGTH
    assert profile_changes(given_user(), ProfileChange(name=name)) == {"name": name}


def test_choosing_an_avatar_sets_its_asset_id() -> None:
    assert profile_changes(given_user(), ProfileChange(avatar_asset_id=AVATAR)) == {"avatar_asset_id": AVATAR}


def test_choosing_another_avatar_replaces_the_first() -> None:
    changes = profile_changes(given_user(avatar_asset_id=AVATAR), ProfileChange(avatar_asset_id=OTHER_AVATAR))
    assert changes == {"avatar_asset_id": OTHER_AVATAR}


def test_choosing_the_same_avatar_again_changes_nothing() -> None:
    assert profile_changes(given_user(avatar_asset_id=AVATAR), ProfileChange(avatar_asset_id=AVATAR)) == {}


def test_clearing_the_avatar_sets_it_to_none() -> None:
    changes = profile_changes(given_user(avatar_asset_id=AVATAR), ProfileChange(clear_avatar=True))
    assert changes == {"avatar_asset_id": None}


def test_clearing_an_avatar_that_is_not_there_changes_nothing() -> None:
    assert profile_changes(given_user(), ProfileChange(clear_avatar=True)) == {}


def test_setting_and_clearing_the_avatar_at_once_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not both"):
        profile_changes(given_user(), ProfileChange(avatar_asset_id=AVATAR, clear_avatar=True))


def test_name_and_avatar_change_together() -> None:
    changes = profile_changes(given_user(), ProfileChange(name="Al", avatar_asset_id=AVATAR))
    assert changes == {"name": "Al", "avatar_asset_id": AVATAR}


# --- password_change_is_allowed ---------------------------------------------------------------------


def test_the_right_current_password_and_a_good_new_one_are_allowed() -> None:
    password_change_is_allowed(
        given_user(), has_password=True, current_password_matches=True, new_password=GOOD_PASSWORD
    )


def test_a_wrong_current_password_is_refused_before_the_new_one_is_judged() -> None:
    with pytest.raises(WrongPassword) as refused:
        password_change_is_allowed(
            given_user(), has_password=True, current_password_matches=False, new_password="weak"
        )
    assert refused.value.code == "wrong_password"
    assert refused.value.field == "current_password"


def test_an_account_without_a_password_is_sent_to_the_reset_link() -> None:
    with pytest.raises(PasswordNotSet, match="reset link"):
        password_change_is_allowed(
            given_user(), has_password=False, current_password_matches=False, new_password=GOOD_PASSWORD
        )


def test_a_new_password_breaking_the_policy_is_refused_with_every_problem() -> None:
    with pytest.raises(WeakPassword) as refused:
        password_change_is_allowed(
            given_user(), has_password=True, current_password_matches=True, new_password="alice"
        )
    assert "use at least 10 characters" in refused.value.problems


def test_the_new_password_may_not_contain_the_users_name() -> None:
    with pytest.raises(WeakPassword, match="email or name"):
        password_change_is_allowed(
            given_user(name="Bartholomew"),
            has_password=True,
            current_password_matches=True,
            new_password="bartholomew-2026!",
        )
