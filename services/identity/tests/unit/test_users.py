"""The domain rules about users: one spelling per email, the password policy, who changes roles and status."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from funmagic_identity.domain.errors import LastSuperAdmin, NotAllowed, WeakPassword
from funmagic_identity.domain.users import (
    COMMON_PASSWORDS,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    Role,
    User,
    check_password_policy,
    normalise_email,
    role_change_is_allowed,
    status_change_is_allowed,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
GOOD_PASSWORD = "correct horse battery staple"


def user(user_id: str = "target", *, role: Role = "user", disabled: bool = False) -> User:
    return User(
        id=user_id,
        email=f"{user_id}@example.com",
        name=user_id,
        role=role,
        disabled=disabled,
        created_at=NOW,
        updated_at=NOW,
    )


# --- normalise_email ------------------------------------------------------------------------------


def test_an_email_is_lower_cased() -> None:
    assert normalise_email("Alice.Smith@Example.COM") == "alice.smith@example.com"


def test_surrounding_whitespace_is_trimmed_including_non_breaking_spaces() -> None:
    assert normalise_email("  alice@example.com\t\n") == "alice@example.com"
    assert normalise_email("\u00a0alice@example.com\u00a0") == "alice@example.com"


def test_compatibility_characters_are_folded_by_nfkc() -> None:
    # Fullwidth letters and the "ﬁ" ligature are the same mailbox as their plain spelling.
    assert normalise_email("ＡＬＩＣＥ@ｅｘａｍｐｌｅ.ｃｏｍ") == "alice@example.com"
    assert normalise_email("\ufb01sh@example.com") == "fish@example.com"


def test_two_spellings_of_one_mailbox_normalise_to_the_same_value() -> None:
    assert normalise_email(" Bob@EXAMPLE.com ") == normalise_email("bob@example.com")


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@@example.com",
        "ali ce@example.com",
        "alice@exa mple.com",
        "alice@.example.com",
        "alice@example..com",
        "alice@example.com.",
        "a" * 65 + "@example.com",
        "alice@" + "d" * 250 + ".com",
    ],
)
def test_something_that_is_not_an_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="not a valid email address"):
        normalise_email(address)


def test_the_longest_local_part_is_accepted() -> None:
    address = "a" * 64 + "@example.com"
    assert normalise_email(address) == address


# --- check_password_policy ------------------------------------------------------------------------


def problems_of(password: str, *, email: str = "", name: str = "") -> list[str]:
    with pytest.raises(WeakPassword) as caught:
        check_password_policy(password, email=email, name=name)
    assert password not in str(caught.value), "the message must never repeat the password"
    assert all(password not in problem for problem in caught.value.problems)
    return caught.value.problems


def test_a_long_varied_password_passes() -> None:
    assert check_password_policy(GOOD_PASSWORD, email="alice@example.com", name="Alice") is None


def test_a_password_of_exactly_the_minimum_length_passes() -> None:
    assert check_password_policy("abcdefgh1!"[:PASSWORD_MIN_LENGTH]) is None


def test_a_short_password_is_refused() -> None:
    assert problems_of("Xy7!pq") == [f"use at least {PASSWORD_MIN_LENGTH} characters"]


def test_a_password_over_the_maximum_length_is_refused() -> None:
    password = ("Xy7!pq" * 30)[: PASSWORD_MAX_LENGTH + 1]
    assert problems_of(password) == [f"use at most {PASSWORD_MAX_LENGTH} characters"]
    assert check_password_policy(password[:PASSWORD_MAX_LENGTH]) is None


@pytest.mark.parametrize("password", [" leading-space-pw", "trailing-space-pw ", "\tTabbed-password"])
def test_a_password_starting_or_ending_with_whitespace_is_refused(password: str) -> None:
    assert problems_of(password) == ["do not start or end with spaces"]


def test_a_password_of_only_spaces_is_refused() -> None:
    assert "do not start or end with spaces" in problems_of(" " * 12)


def test_a_password_of_three_different_characters_or_fewer_is_refused() -> None:
    assert problems_of("abcabcabcabc") == ["use more than three different characters"]
    assert check_password_policy("abcdabcdabcd") is None


@pytest.mark.parametrize("password", sorted(COMMON_PASSWORDS))
def test_a_common_password_is_refused(password: str) -> None:
    assert "this password is too common" in problems_of(password)


def test_common_passwords_are_recognised_whatever_their_case() -> None:
    assert "this password is too common" in problems_of("PassWord123")


def test_a_password_containing_the_email_local_part_is_refused() -> None:
    problems = problems_of("my-Alice.Smith-pw", email="alice.smith@example.com")
    assert problems == ["do not use your email or name in the password"]


def test_a_password_containing_the_name_is_refused() -> None:
    assert problems_of("I am Gandalf the grey", name="gandalf") == [
        "do not use your email or name in the password"
    ]


def test_short_email_local_parts_and_names_are_not_checked() -> None:
    # Three letters are too common to forbid ("bob" would rule out "bobsleigh").
    assert check_password_policy("bobsleigh-rocks", email="bob@example.com", name="Bob") is None


def test_every_broken_rule_is_reported_at_once() -> None:
    problems = problems_of(" aaa")
    assert problems == [
        f"use at least {PASSWORD_MIN_LENGTH} characters",
        "do not start or end with spaces",
        "use more than three different characters",
    ]


# --- role_change_is_allowed -----------------------------------------------------------------------


@pytest.mark.parametrize("actor_role", ["user", "admin"])
def test_only_a_super_admin_changes_roles(actor_role: Role) -> None:
    with pytest.raises(NotAllowed, match="only a super_admin") as caught:
        role_change_is_allowed(
            actor_id="actor", actor_role=actor_role, target=user(), new_role="admin", super_admins=1
        )
    assert not isinstance(caught.value, LastSuperAdmin)


@pytest.mark.parametrize("new_role", ["admin", "user"])
def test_the_last_super_admin_cannot_be_demoted(new_role: Role) -> None:
    with pytest.raises(LastSuperAdmin):
        role_change_is_allowed(
            actor_id="actor",
            actor_role="super_admin",
            target=user(role="super_admin"),
            new_role=new_role,
            super_admins=1,
        )


def test_a_super_admin_can_be_demoted_while_another_remains() -> None:
    assert (
        role_change_is_allowed(
            actor_id="actor",
            actor_role="super_admin",
            target=user(role="super_admin"),
            new_role="admin",
            super_admins=2,
        )
        is None
    )


def test_a_super_admin_may_demote_themselves_while_another_remains() -> None:
    me = user("me", role="super_admin")
    assert (
        role_change_is_allowed(
            actor_id="me", actor_role="super_admin", target=me, new_role="user", super_admins=2
        )
        is None
    )
    with pytest.raises(LastSuperAdmin):
        role_change_is_allowed(
            actor_id="me", actor_role="super_admin", target=me, new_role="user", super_admins=1
        )


@pytest.mark.parametrize("new_role", ["admin", "super_admin"])
def test_a_disabled_user_cannot_be_granted_a_role(new_role: Role) -> None:
    with pytest.raises(NotAllowed, match="enable the account"):
        role_change_is_allowed(
            actor_id="actor",
            actor_role="super_admin",
            target=user(disabled=True),
            new_role=new_role,
            super_admins=1,
        )


def test_a_disabled_admin_can_still_be_demoted_to_user() -> None:
    assert (
        role_change_is_allowed(
            actor_id="actor",
            actor_role="super_admin",
            target=user(role="admin", disabled=True),
            new_role="user",
            super_admins=1,
        )
        is None
    )


@pytest.mark.parametrize(
    ("old_role", "new_role"), [("user", "admin"), ("admin", "user"), ("user", "super_admin")]
)
def test_a_super_admin_grants_and_removes_roles(old_role: Role, new_role: Role) -> None:
    assert (
        role_change_is_allowed(
            actor_id="actor",
            actor_role="super_admin",
            target=user(role=old_role),
            new_role=new_role,
            super_admins=1,
        )
        is None
    )


# --- status_change_is_allowed ---------------------------------------------------------------------


@pytest.mark.parametrize("actor_role", ["user", "admin", "super_admin"])
def test_nobody_disables_or_enables_their_own_account(actor_role: Role) -> None:
    with pytest.raises(NotAllowed, match="your own account"):
        status_change_is_allowed(actor_id="me", actor_role=actor_role, target=user("me", role=actor_role))


@pytest.mark.parametrize("actor_role", ["admin", "super_admin"])
def test_nobody_disables_a_super_admin(actor_role: Role) -> None:
    with pytest.raises(NotAllowed, match="demote them first"):
        status_change_is_allowed(actor_id="actor", actor_role=actor_role, target=user(role="super_admin"))


def test_an_admin_cannot_disable_another_admin() -> None:
    with pytest.raises(NotAllowed, match="only a super_admin"):
        status_change_is_allowed(actor_id="actor", actor_role="admin", target=user(role="admin"))


def test_a_super_admin_can_disable_an_admin() -> None:
    assert (
        status_change_is_allowed(actor_id="actor", actor_role="super_admin", target=user(role="admin"))
        is None
    )


@pytest.mark.parametrize("actor_role", ["admin", "super_admin"])
def test_admins_can_disable_ordinary_users(actor_role: Role) -> None:
    assert status_change_is_allowed(actor_id="actor", actor_role=actor_role, target=user()) is None


def test_an_ordinary_user_cannot_disable_anyone() -> None:
    with pytest.raises(NotAllowed, match="only admins"):
        status_change_is_allowed(actor_id="actor", actor_role="user", target=user())
    with pytest.raises(NotAllowed):
        status_change_is_allowed(actor_id="actor", actor_role="user", target=user(role="admin"))
