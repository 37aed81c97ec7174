import pytest

from funmagic_kit.errors import ConfigError
from funmagic_kit.settings import DatabaseSettings, ServiceSettings, load_settings


class ExampleSettings(ServiceSettings, DatabaseSettings):
    pass


BASE_ENV = {
    "HTTP_PORT": "8123",
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "DATABASE_URL": "postgresql://u:secret-password@127.0.0.1/db",
    "INTERNAL_API_TOKEN": "an-internal-token-of-enough-length",
    "AUTH_JWKS_URL": "http://127.0.0.1:8001/.well-known/jwks.json",
}


def test_settings_are_read_from_the_given_environment() -> None:
    settings = load_settings(ExampleSettings, env=BASE_ENV)

    assert settings.http_port == 8123
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.database_url.get_secret_value().endswith("/db")


def test_a_missing_variable_fails_at_start_naming_it() -> None:
    env = {k: v for k, v in BASE_ENV.items() if k != "DATABASE_URL"}

    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_settings(ExampleSettings, env=env)


def test_an_invalid_value_fails_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="HTTP_PORT"):
        load_settings(ExampleSettings, env={**BASE_ENV, "HTTP_PORT": "not-a-port"})


def test_secrets_are_not_shown_when_settings_are_printed() -> None:
    settings = load_settings(ExampleSettings, env=BASE_ENV)

    assert "secret-password" not in repr(settings)
    assert "secret-password" not in str(settings.model_dump())


def test_a_short_internal_token_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigError, match="INTERNAL_API_TOKEN") as error:
        load_settings(ExampleSettings, env={**BASE_ENV, "INTERNAL_API_TOKEN": "short-token"})

    assert "short-token" not in str(error.value)


def test_internal_tokens_can_be_rotated_with_a_list() -> None:
    env = {**BASE_ENV, "INTERNAL_API_TOKEN": "old-token-of-enough-length-1, new-token-of-enough-length-2"}

    settings = load_settings(ExampleSettings, env=env)

    assert settings.internal_api_tokens() == ["old-token-of-enough-length-1", "new-token-of-enough-length-2"]


def test_the_metrics_are_open_unless_a_metrics_token_is_set() -> None:
    assert load_settings(ExampleSettings, env=BASE_ENV).metrics_token() is None
    assert load_settings(ExampleSettings, env={**BASE_ENV, "METRICS_AUTH_TOKEN": ""}).metrics_token() is None

    guarded = load_settings(ExampleSettings, env={**BASE_ENV, "METRICS_AUTH_TOKEN": "scrape-me-please"})

    assert guarded.metrics_token() == "scrape-me-please"
    assert "scrape-me-please" not in repr(guarded)


def test_without_a_topic_prefix_kafka_names_are_the_registrys() -> None:
    names = load_settings(ExampleSettings, env=BASE_ENV).kafka_names()

    assert names.topic("tasks.events") == "tasks.events"
    assert names.group("credits") == "credits"


def test_a_topic_prefix_goes_in_front_of_every_topic_and_group_and_comes_off_again() -> None:
    names = load_settings(ExampleSettings, env={**BASE_ENV, "KAFKA_TOPIC_PREFIX": "blue."}).kafka_names()

    assert names.topic("tasks.events") == "blue.tasks.events"
    assert names.topic("tasks.events.dlq") == "blue.tasks.events.dlq"
    assert names.group("credits") == "blue.credits"
    assert names.logical_topic("blue.tasks.events") == "tasks.events"
    assert names.logical_group("blue.credits") == "credits"


@pytest.mark.parametrize("prefix", ["blue team.", "a/b.", "x" * 65])
def test_a_topic_prefix_kafka_cannot_name_is_refused_naming_the_variable(prefix: str) -> None:
    with pytest.raises(ConfigError, match="KAFKA_TOPIC_PREFIX"):
        load_settings(ExampleSettings, env={**BASE_ENV, "KAFKA_TOPIC_PREFIX": prefix})
