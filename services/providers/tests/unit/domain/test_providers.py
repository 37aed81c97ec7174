"""What a provider record may hold, and how much of its key anyone sees."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from funmagic_providers.domain.providers import (
    InvalidProvider,
    Provider,
    SealedKey,
    check_base_url,
    check_config,
    check_credentials_follow_base_url,
    check_name,
    key_hint,
)


@pytest.mark.parametrize("name", ["openai", "fal-ai", "tripo.v2", "local_1"])
def test_plain_lower_case_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "OpenAI", "{openai}", "a b", "-x", "x" * 64, "name:with:colons"])
def test_names_that_would_break_redis_keys_or_logs_are_refused(name: str) -> None:
    with pytest.raises(InvalidProvider, match="name"):
        check_name(name)


def test_remote_providers_need_an_http_base_url_and_lose_the_trailing_slash() -> None:
    assert check_base_url("https://api.openai.com/v1/", "openai") == "https://api.openai.com/v1"
    with pytest.raises(InvalidProvider, match="baseUrl"):
        check_base_url(None, "fal")
    with pytest.raises(InvalidProvider, match="baseUrl"):
        check_base_url("ftp://files.example.com", "tripo")
    with pytest.raises(InvalidProvider, match="baseUrl"):
        check_base_url("https://api.example.com/v1?key=secret", "openai")


def test_the_local_provider_needs_no_base_url() -> None:
    assert check_base_url(None, "local") is None


def test_config_accepts_a_rate_limit_and_refuses_unknown_keys() -> None:
    config = {"rateLimit": {"maxConcurrency": 5, "maxPerMinute": 100, "retryOn429": True}}
    assert check_config(config) == config
    with pytest.raises(InvalidProvider, match="unknown keys"):
        check_config({"rateLimits": {}})


def test_an_invalid_rate_limit_is_refused_with_its_field() -> None:
    with pytest.raises(InvalidProvider, match=r"config\.rateLimit"):
        check_config({"rateLimit": {"maxConcurrency": -1}})


def test_the_key_hint_shows_only_the_last_four_characters() -> None:
    assert key_hint("sk-test-abcdefghijkl1234") == "••••1234"
    assert key_hint("short-key") == "••••"  # a short key would give too much away
    assert key_hint(None) is None


NOW = datetime(2026, 12, 7, tzinfo=UTC)
SEALED = SealedKey(key_id="a", ciphertext=b"sealed")
OPENAI = Provider(
    id="p1", name="openai", display_name=None, type="openai", base_url="https://api.openai.com/v1", config={},
    is_active=True, key=SEALED, key_hint="••••abcd", is_healthy=None, health_checked_at=None,
    created_at=NOW, updated_at=NOW,
)  # fmt: skip


def test_a_stored_key_is_not_carried_to_another_base_url() -> None:
    with pytest.raises(InvalidProvider, match="apiKey: a new base URL needs the API key entered again"):
        check_credentials_follow_base_url(OPENAI, "https://collector.example", given=["base_url"])


def test_a_new_base_url_with_the_key_entered_again_is_accepted() -> None:
    check_credentials_follow_base_url(OPENAI, "https://proxy.example/v1", given=["base_url", "api_key"])


def test_the_same_base_url_sent_again_needs_no_key() -> None:
    check_credentials_follow_base_url(OPENAI, OPENAI.base_url, given=["base_url", "display_name"])


def test_a_stored_secret_must_be_entered_again_too() -> None:
    hunyuan = replace(OPENAI, type="hunyuan", secret=SEALED, secret_hint="••••wxyz")
    with pytest.raises(InvalidProvider, match="apiSecret"):
        check_credentials_follow_base_url(hunyuan, "https://elsewhere.example", given=["base_url", "api_key"])
    check_credentials_follow_base_url(
        hunyuan, "https://elsewhere.example", given=["base_url", "api_key", "api_secret"]
    )


def test_a_provider_without_credentials_moves_freely() -> None:
    local = replace(OPENAI, type="local", key=None, key_hint=None)
    check_credentials_follow_base_url(local, None, given=["base_url"])
