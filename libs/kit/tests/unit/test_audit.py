"""The audit log's rules: secrets are never kept, and an action is the request's caller's."""

from __future__ import annotations

from funmagic_kit.audit import SECRET_MARKER, bind_actor, current_actor, redacted


def test_a_secret_named_field_keeps_only_that_it_changed_at_any_depth() -> None:
    changes = {
        "api_key": "sk-live-1234",
        "config": {"rateLimit": {"maxConcurrency": 2}, "apiKey": "abcd", "clientSecret": "s"},
        "password": "hunter2",
        "tokens": [{"refresh_token": "r"}],
        "name": "openai",
    }

    assert redacted(changes) == {
        "api_key": SECRET_MARKER,
        "config": {
            "rateLimit": {"maxConcurrency": 2},
            "apiKey": SECRET_MARKER,
            "clientSecret": SECRET_MARKER,
        },
        "password": SECRET_MARKER,
        "tokens": SECRET_MARKER,
        "name": "openai",
    }


def test_a_secret_removed_stays_none_and_plain_values_are_untouched() -> None:
    assert redacted({"api_key": None, "amount": 7, "reason": "goodwill"}) == {
        "api_key": None,
        "amount": 7,
        "reason": "goodwill",
    }


def test_the_actor_is_the_bound_caller_and_only_inside_the_binding() -> None:
    assert current_actor() is None
    with bind_actor("admin-1"):
        assert current_actor() == "admin-1"
        with bind_actor("admin-2"):
            assert current_actor() == "admin-2"
        assert current_actor() == "admin-1"
    assert current_actor() is None


def test_key_material_and_hints_are_secrets_and_other_keys_are_not() -> None:
    changes = {
        "api_key_hint": "…QzKw",
        "signing_key": "-----BEGIN PRIVATE KEY-----",
        "encryptionKey": "k",
        "Authorization": "Bearer abc",
        "client_secret": "s",
        "passwd": "p",
        "key_id": "2026-01",
        "idempotency": "retry-1",
        "monkey": "banana",
    }

    assert redacted(changes) == {
        "api_key_hint": SECRET_MARKER,
        "signing_key": SECRET_MARKER,
        "encryptionKey": SECRET_MARKER,
        "Authorization": SECRET_MARKER,
        "client_secret": SECRET_MARKER,
        "passwd": SECRET_MARKER,
        "key_id": "2026-01",
        "idempotency": "retry-1",
        "monkey": "banana",
    }
