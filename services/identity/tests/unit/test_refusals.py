"""Identity's refusals as clients see them: each keeps the HTTP status and `code` it always had, now that the
kit's problem+json answer (`refusal_problem`, what `problem_middleware` sends) maps them instead of a
middleware of identity's own."""

from __future__ import annotations

import json

import pytest

from funmagic_identity.domain.errors import (
    AccountDisabled,
    EmailAlreadyRegistered,
    InvalidCredentials,
    InvalidInput,
    InvalidVerificationToken,
    LastSuperAdmin,
    NotAllowed,
    OAuthFailed,
    SessionExpired,
    TooManyAttempts,
    UserNotFound,
    WeakPassword,
)
from funmagic_identity.domain.users import normalise_email
from funmagic_kit.errors import Refused
from funmagic_kit.http import refusal_problem


def answer(error: Refused) -> tuple[int, dict[str, object], dict[str, str]]:
    response = refusal_problem(error)
    assert response.content_type == "application/problem+json"
    assert response.body is not None
    return response.status, json.loads(bytes(response.body)), dict(response.headers)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (EmailAlreadyRegistered("an account with this email already exists"), 409, "email_taken"),
        (WeakPassword(["use at least 10 characters"]), 422, "weak_password"),
        (InvalidCredentials("email or password is wrong"), 401, "invalid_credentials"),
        (TooManyAttempts(42), 429, "too_many_attempts"),
        (AccountDisabled("this account is disabled"), 403, "account_disabled"),
        (InvalidVerificationToken("this link is invalid, used or expired"), 400, "invalid_token"),
        (SessionExpired("sign in again"), 401, "session_expired"),
        (UserNotFound("no such user"), 404, "user_not_found"),
        (LastSuperAdmin("the last super_admin cannot be demoted"), 409, "last_super_admin"),
        (NotAllowed("only a super_admin can change roles"), 403, "not_allowed"),
        (OAuthFailed("the sign-in attempt is unknown or expired; start again"), 400, "oauth_failed"),
        (InvalidInput("not a valid email address"), 422, "invalid_input"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_every_refusal_keeps_its_status_and_code(error: Refused, status: int, code: str) -> None:
    answered_status, body, _ = answer(error)

    assert (answered_status, body["status"], body["code"]) == (status, status, code)
    assert body["detail"] == str(error)


def test_a_weak_password_lists_every_problem_in_the_answer() -> None:
    problems = ["use at least 10 characters", "use more than three different characters"]

    _, body, _ = answer(WeakPassword(problems))

    assert body["problems"] == problems
    assert body["detail"] == "use at least 10 characters; use more than three different characters"


def test_too_many_attempts_says_when_to_try_again_in_retry_after() -> None:
    _, body, headers = answer(TooManyAttempts(42))

    assert headers["Retry-After"] == "42"
    assert body["detail"] == "too many failed sign-ins for this account; retry in 42 s"


def test_something_that_is_not_an_email_is_invalid_input_and_still_a_value_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        normalise_email("not an email")

    assert isinstance(caught.value, ValueError)
    _, body, _ = answer(caught.value)
    assert (body["status"], body["code"], body["detail"]) == (
        422,
        "invalid_input",
        "not a valid email address",
    )
