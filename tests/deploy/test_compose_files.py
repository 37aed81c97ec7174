"""The Docker Compose deployment in deploy/compose, checked fast and without a Docker engine.

`make test-compose` (tests/compose) runs the deployment for real: the images built, the platform
composed, the main job driven through it. These checks come before that and cover what one run does not
show: every setting of every service, secrets, the files' shape, the MinIO variant (s3-minio.yml, which
needs a registry's images), and the shell parts against stand-ins (fake mc and psql, a local HTTP server).

Every deploy/compose/*.yml of the default deployment is parsed with PyYAML and checked as one merged
model (infra.yml first, then one file per service); s3-minio.yml, an override, is checked on its own.

What each FunMagic service must receive is read from its pydantic-settings class (the one in
funmagic_<service>.config): every field without a default must be set, and a required secret must come
from .env as `${VAR:?…}`. A setting added to the code is thereby checked here without editing this file.

The web edge (web.yml: nginx serving the built apps/web, the one published port) is checked the same
way: its Dockerfile is read stage by stage, and its nginx template (nginx/web.conf) is rendered the way
the nginx image's entrypoint does and parsed, so the locations a request would reach are checked
against what the gateway reserves and sends (funmagic_gateway.entrypoints.web_apps).
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import http.server
import importlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from secrets import token_hex
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import AliasChoices, SecretBytes, SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO_ROOT / "deploy" / "compose"
DOCKERFILE = COMPOSE_DIR / "Dockerfile"
WEB_DOCKERFILE = COMPOSE_DIR / "web.Dockerfile"
NGINX_TEMPLATE = COMPOSE_DIR / "nginx" / "web.conf"
WEB_APP_DIR = REPO_ROOT / "apps" / "web"
WEB_PORT = 8080
POSTGRES_INIT_SCRIPT = COMPOSE_DIR / "postgres-init" / "01-create-service-databases.sh"

try:
    from funmagic_kit.crypto import SecretBox
    from funmagic_kit.settings import ServiceSettings, load_settings
except ImportError:  # not installed: read it from the source tree
    sys.path.insert(0, str(REPO_ROOT / "libs" / "kit" / "src"))
    from funmagic_kit.crypto import SecretBox
    from funmagic_kit.settings import ServiceSettings, load_settings

PORTS = {
    "gateway": 8000,
    "identity": 8001,
    "tasks": 8002,
    "credits": 8003,
    "storage": 8004,
    "providers": 8005,
}
FUNMAGIC_SERVICES = tuple(PORTS)
DATABASE_SERVICES = ("identity", "tasks", "credits", "storage", "providers")
BACKEND_SERVICES = DATABASE_SERVICES

COMMON_ENV = {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "HTTP_HOST", "HTTP_PORT", "LOG_LEVEL"}
STORAGE_ENV = {
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_REGION",
    "S3_BUCKET_PUBLIC",
    "S3_BUCKET_PRIVATE",
    "S3_BUCKET_ADMIN",
    "CDN_URL",
}
GATEWAY_ENV = {"IDENTITY_URL", "TASKS_URL", "CREDITS_URL", "STORAGE_URL", "PROVIDERS_URL", "CORS_ORIGINS"}
BUCKETS = {
    "S3_BUCKET_PUBLIC": "funmagic-public",
    "S3_BUCKET_PRIVATE": "funmagic-private",
    "S3_BUCKET_ADMIN": "funmagic-admin",
}

SECRET_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|PRIVATE_KEY|API_KEY|TOKEN|ROOT_USER|REDISCLI_AUTH")
# A duration or a size is no secret, whatever its name holds (ACCESS_TOKEN_TTL_SECONDS).
NOT_A_SECRET = re.compile(r"_(SECONDS|MINUTES|HOURS|DAYS|BYTES)$")
REQUIRED_REFERENCE = re.compile(r"^\$\{([A-Z][A-Z0-9_]*):\?[^}]*\}$")
# `${VAR?…}`: the variable must be defined in .env but may be empty (an optional secret, no default).
DEFINED_REFERENCE = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)\?[^}]*\}$")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/:@\s]*:(\$\{[^}]*\}|[^@\s/]+)@")
COMPOSE_VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[?-])?")


def is_secret_name(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_A_SECRET.search(name)


def expected_environment(service: str) -> set[str]:
    names = set(COMMON_ENV)
    if service in DATABASE_SERVICES:
        names.add("DATABASE_URL")
    if service == "storage":
        names |= STORAGE_ENV
    if service == "gateway":
        names |= GATEWAY_ENV
    return names


# --- loading -----------------------------------------------------------------------------------


# Override files, added on top of the default deployment by all.sh when asked for (S3_SERVER=minio).
OVERRIDE_FILES = ("s3-minio.yml",)


def compose_paths() -> list[Path]:
    """The files of the default deployment."""
    return sorted(p for p in COMPOSE_DIR.glob("*.yml") if p.name not in OVERRIDE_FILES)


@functools.cache
def compose_documents() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in compose_paths()}


@functools.cache
def minio_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((COMPOSE_DIR / "s3-minio.yml").read_text())["services"]


@functools.cache
def definitions() -> dict[str, list[str]]:
    """Service name -> the files that define it."""
    found: dict[str, list[str]] = {}
    for name, doc in compose_documents().items():
        for service in doc.get("services") or {}:
            found.setdefault(service, []).append(name)
    return found


@functools.cache
def merged_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = {}
    for doc in compose_documents().values():
        services.update(doc.get("services") or {})
    return services


def service(name: str) -> dict[str, Any]:
    services = merged_services()
    assert name in services, f"no compose file defines the service {name!r}"
    return services[name]


def environment(definition: dict[str, Any]) -> dict[str, str]:
    env = definition.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def is_one_shot(definition: dict[str, Any]) -> bool:
    return definition.get("restart") == "no"


def depends_on(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = definition.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: {} for name in deps}
    return {name: (spec or {}) for name, spec in deps.items()}


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def seconds(duration: str) -> float:
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration)):
        total += float(amount) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    return total


def shell_script(definition: dict[str, Any]) -> str:
    """The script a one-shot job runs, with compose's `$$` escapes undone."""
    command = definition["command"]
    assert isinstance(command, list), "the job's command should be a list holding one script"
    assert len(command) == 1, "the job's command should be one script"
    return command[0].replace("$$", "$")


def executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def env_example() -> dict[str, str]:
    values = {}
    for line in (COMPOSE_DIR / ".env.example").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]  # compose strips the quotes
            values[key.strip()] = value
    return values


def compose_variables() -> list[tuple[str, str, str]]:
    """(file, variable, operator) for every ${…} compose interpolates (comments are not)."""
    documents = compose_documents() | {"s3-minio.yml": {"services": minio_services()}}
    return [
        (name, variable, operator)
        for name, doc in documents.items()
        for text in strings(doc)
        for variable, operator in COMPOSE_VARIABLE.findall(text)
    ]


class MissingVariable(Exception):
    """Compose would refuse to start: a `${VAR:?…}` is unset or empty, or a `${VAR?…}` is unset."""


INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """What compose makes of a value: `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?…}`, `${VAR?…}`.

    Nested references and `$VAR` without braces are not handled: the files use neither.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        variable, operator, argument = match.groups()
        value = variables.get(variable)
        if operator == ":-":
            return value or argument
        if operator == "-":
            return argument if value is None else value
        if (operator == ":?" and not value) or (operator == "?" and value is None):
            raise MissingVariable(f"{variable}: {argument}")
        return value or ""

    return INTERPOLATION.sub(replace, text)


def can_be_empty(value: str) -> bool:
    """Whether compose may hand this value over empty (a literal never is; `${VAR:?…}` refuses)."""
    try:
        return not interpolate(value, {v: "" for v, _ in COMPOSE_VARIABLE.findall(value)}).strip()
    except MissingVariable:
        return False


def secret_key_command() -> str:
    """The command .env.example gives for SECRET_KEY, from the comments just above it."""
    text = (COMPOSE_DIR / ".env.example").read_text()
    assert "\nSECRET_KEY=" in text, ".env.example has no SECRET_KEY"
    comments = text.split("\nSECRET_KEY=", 1)[0].rsplit("\n\n", 1)[-1]
    match = re.search(r'python3? -c "([^"]+)"', comments)
    assert match, '.env.example should say above SECRET_KEY how to generate it (python -c "…")'
    return match.group(1)


@functools.cache
def generated_secret_key() -> str:
    run = subprocess.run(
        [sys.executable, "-c", secret_key_command()], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def filled_env_file() -> dict[str, str]:
    """.env.example with every required variable filled in the way its comments say."""
    values = env_example()
    for variable in {v for _, v, op in compose_variables() if op == ":?"}:
        if not values.get(variable):
            values[variable] = generated_secret_key() if variable == "SECRET_KEY" else token_hex(32)
    return values


# --- the settings classes ----------------------------------------------------------------------


@functools.cache
def settings_class(name: str) -> type[BaseSettings]:
    """The pydantic-settings class `python -m funmagic_<name>` loads: the one its config module defines."""
    module_name = f"funmagic_{name}.config"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != f"funmagic_{name}":
            raise
        sys.path.insert(0, str(REPO_ROOT / "services" / name / "src"))  # not installed: the source tree
        module = importlib.import_module(module_name)
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, ServiceSettings) and value.__module__ == module_name
    ]
    assert len(found) == 1, f"{module_name} should define exactly one ServiceSettings class, not {found}"
    return found[0]


def setting_name(cls: type[BaseSettings], field_name: str, field: FieldInfo) -> str:
    """The environment variable a field is read from (settings are case-insensitive: upper case here)."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        alias = next((choice for choice in alias.choices if isinstance(choice, str)), None)
    if isinstance(alias, str):
        return alias.upper()
    return (cls.model_config.get("env_prefix", "") + (field.alias or field_name)).upper()


def is_secret_type(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(is_secret_type(arg) for arg in typing.get_args(annotation))


def required_settings(name: str) -> set[str]:
    """The variables service `name` cannot start without: its settings fields that have no default."""
    cls = settings_class(name)
    return {setting_name(cls, n, f) for n, f in cls.model_fields.items() if f.is_required()}


def secret_settings(name: str) -> set[str]:
    cls = settings_class(name)
    return {setting_name(cls, n, f) for n, f in cls.model_fields.items() if is_secret_type(f.annotation)}


def funmagic_service_of(definition: dict[str, Any]) -> str | None:
    """Which FunMagic service a container runs (the service itself or its one-shot jobs), if any."""
    return environment(definition).get("FUNMAGIC_SERVICE")


def containers_of(name: str) -> list[str]:
    return sorted(c for c, d in merged_services().items() if funmagic_service_of(d) == name)


# --- the files ---------------------------------------------------------------------------------


def test_the_deployment_has_an_infra_file_and_one_file_per_service():
    names = {path.name for path in compose_paths()}
    assert {"infra.yml", *(f"{s}.yml" for s in FUNMAGIC_SERVICES)} <= names
    for extra in (".env.example", "README.md", "all.sh", "generate_env.py", "s3-minio.yml"):
        assert (COMPOSE_DIR / extra).is_file(), f"deploy/compose/{extra} is missing"


@pytest.mark.parametrize("path", compose_paths(), ids=lambda p: p.name)
def test_every_compose_file_parses_to_a_mapping_of_services(path):
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name} is not a YAML mapping"
    assert isinstance(doc.get("services"), dict), f"{path.name} has no services mapping"
    assert doc["services"], f"{path.name} defines no services"


def test_no_service_is_defined_in_two_files():
    twice = {name: files for name, files in definitions().items() if len(files) > 1}
    assert not twice, f"services defined in more than one file (compose would merge them silently): {twice}"


def test_all_sh_runs_compose_over_every_file_with_infra_first():
    text = (COMPOSE_DIR / "all.sh").read_text()
    assert os.access(COMPOSE_DIR / "all.sh", os.X_OK), "all.sh is not executable"
    match = re.search(r"^compose_files=\(([^)]*)\)", text, re.MULTILINE)
    assert match, "all.sh has no compose_files=(…) list"
    listed = match.group(1).split()
    assert listed[0] == "infra.yml", "infra.yml must come first (it holds the project name and network)"
    assert listed[-1] == "web.yml", "web.yml (the edge, which waits for the gateway) comes last"
    assert sorted(listed) == sorted(p.name for p in compose_paths())
    assert "minio) compose_files+=(s3-minio.yml)" in text, "S3_SERVER=minio adds the MinIO override"
    assert "docker compose" in text
    assert "--env-file" in text


# --- every service -----------------------------------------------------------------------------


def test_every_service_has_an_image_or_a_build():
    missing = [name for name, d in merged_services().items() if not (d.get("image") or d.get("build"))]
    assert not missing, f"services without image or build: {missing}"


def test_every_long_running_service_has_a_healthcheck():
    unchecked = [
        name
        for name, d in merged_services().items()
        if not is_one_shot(d) and not (d.get("healthcheck") or {}).get("test")
    ]
    assert not unchecked, f"long-running services without a healthcheck: {unchecked}"
    disabled = [name for name, d in merged_services().items() if (d.get("healthcheck") or {}).get("disable")]
    assert not disabled, f"healthchecks disabled for {disabled}"


def test_one_shot_jobs_never_restart_and_are_awaited_until_they_succeed():
    services = merged_services()
    one_shots = {name for name, d in services.items() if not (d.get("healthcheck") or {}).get("test")}
    assert "kafka-init" in one_shots
    for name in one_shots:
        assert services[name].get("restart") == "no", (
            f'{name} has no healthcheck, so it must be a job with restart: "no"'
        )
        awaited_by = [
            other
            for other, d in services.items()
            if depends_on(d).get(name, {}).get("condition") == "service_completed_successfully"
        ]
        assert awaited_by, f"nothing waits for the job {name} with condition service_completed_successfully"


def test_depends_on_names_only_services_defined_in_the_files():
    services = merged_services()
    unknown = {(name, dep) for name, d in services.items() for dep in depends_on(d) if dep not in services}
    assert not unknown, f"depends_on names services no file defines: {sorted(unknown)}"


def test_every_dependency_waits_for_the_right_condition():
    services = merged_services()
    for name, d in services.items():
        for dep, spec in depends_on(d).items():
            condition = spec.get("condition")
            if is_one_shot(services[dep]):
                assert condition == "service_completed_successfully", f"{name} -> job {dep}: {condition}"
            else:
                assert condition == "service_healthy", (
                    f"{name} -> {dep} should wait for service_healthy, not {condition}"
                )


def test_all_services_share_the_one_network():
    for name, doc in compose_documents().items():
        declared = set(doc.get("networks") or {})
        assert declared <= {"funmagic"}, f"{name} declares other networks: {declared}"
    assert "funmagic" in (compose_documents()["infra.yml"].get("networks") or {})
    for name, d in merged_services().items():
        networks = d.get("networks")
        assert networks is not None, f"{name} joins no network"
        assert set(networks) == {"funmagic"}, f"{name} joins {networks}"


# --- secrets -----------------------------------------------------------------------------------


def test_no_secret_is_written_as_a_literal_value():
    for name, d in merged_services().items():
        service_name = funmagic_service_of(d)
        required = required_settings(service_name) if service_name else None
        for key, value in environment(d).items():
            if not is_secret_name(key) or REQUIRED_REFERENCE.match(value):
                continue
            # A secret the service can do without (SMTP_PASSWORD, an OAuth client secret) must still
            # be written in .env, but may be empty there.
            assert required is not None, (
                f"{name}: {key} must be a required ${{VAR:?…}} reference, not {value!r}"
            )
            assert key not in required, (
                f"{name}: {key} is required by its settings: it must be ${{{key}:?…}}, not {value!r}"
            )
            assert DEFINED_REFERENCE.match(value), (
                f"{name}: {key} must be ${{VAR:?…}}, or ${{VAR?…}} if it may be empty, not {value!r}"
            )
        for text in strings(d):
            for password in URL_PASSWORD.findall(text):
                assert REQUIRED_REFERENCE.match(password), (
                    f"{name}: a URL carries the literal password {password!r}"
                )


def test_no_secret_has_a_default_anywhere_in_the_files():
    found = [(name, v, op) for name, v, op in compose_variables() if is_secret_name(v)]
    assert found, "no secret variables found in the compose files"
    for name, variable, operator in found:
        assert operator in (":?", "?"), f"{name}: ${{{variable}}} has a default or may be unset"


def test_env_example_lists_every_setting_and_holds_no_secret():
    example = env_example()
    used = {v for _, v, _ in compose_variables()}
    required = {v for _, v, op in compose_variables() if op in (":?", "?")}
    assert required, "no required variables found in the compose files"
    assert required <= set(example), (
        f".env.example misses required settings: {sorted(required - set(example))}"
    )
    used.add("S3_SERVER")  # read by all.sh, which picks the files
    assert set(example) <= used, f".env.example has settings no file uses: {sorted(set(example) - used)}"
    filled = {k: v for k, v in example.items() if is_secret_name(k) and v}
    assert not filled, f".env.example must leave secrets empty: {sorted(filled)}"


def test_env_example_says_how_to_generate_a_secret_key_that_identity_accepts():
    key = generated_secret_key()
    SecretBox.from_base64(key)  # ConfigError unless it is base64 of exactly 32 bytes
    assert len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) == 32


# --- what the settings classes require -----------------------------------------------------------


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_sets_every_setting_its_settings_class_requires(name):
    cls = settings_class(name)
    required = required_settings(name)
    assert {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "INTERNAL_API_TOKEN", "AUTH_JWKS_URL"} <= required, (
        f"{cls.__name__}: the required settings were not read right: {sorted(required)}"
    )
    for container in containers_of(name):
        env = environment(service(container))
        missing = sorted(required - set(env))
        assert not missing, f"{container} lacks {missing}, which {cls.__name__} requires (no default)"
        empty = sorted(key for key in required if can_be_empty(env[key]))
        assert not empty, f"{container}: {empty} may be handed over empty, but {cls.__name__} requires them"


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_required_secret_comes_from_env_with_no_default(name):
    cls = settings_class(name)
    secret = secret_settings(name)
    for container in containers_of(name):
        env = environment(service(container))
        for key in sorted(required_settings(name) & secret):
            value = env.get(key)
            assert value is not None, f"{container} lacks the secret {key} ({cls.__name__} requires it)"
            passwords = URL_PASSWORD.findall(value)
            assert REQUIRED_REFERENCE.match(value) or (
                passwords and all(REQUIRED_REFERENCE.match(p) for p in passwords)
            ), f"{container}: the required secret {key} must come from .env as ${{VAR:?…}}, not {value!r}"
        for key in sorted((secret - required_settings(name)) & set(env)):
            assert REQUIRED_REFERENCE.match(env[key]) or DEFINED_REFERENCE.match(env[key]), (
                f"{container}: the secret {key} must come from .env (${{VAR:?…}} or ${{VAR?…}}), "
                f"not {env[key]!r}"
            )


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_accepts_the_settings_compose_gives_it(name):
    variables = filled_env_file()
    env = {key: interpolate(value, variables) for key, value in environment(service(name)).items()}
    settings = load_settings(settings_class(name), env=env)
    assert settings.http_port == PORTS[name]
    assert settings.internal_api_tokens() == [variables["INTERNAL_API_TOKEN"]]


def test_compose_refuses_to_start_identity_without_its_secrets():
    env = environment(service("identity"))
    for variable in ("INTERNAL_API_TOKEN", "SECRET_KEY", "IDENTITY_DB_PASSWORD", "REDIS_PASSWORD"):
        variables = {k: v for k, v in filled_env_file().items() if k != variable}
        with pytest.raises(MissingVariable, match=variable):
            interpolate("\n".join(env.values()), variables)


def test_identity_uses_the_secret_key_and_oauth_clients_from_env():
    from funmagic_identity.config import oauth_providers_from_env

    variables = filled_env_file() | {
        "OAUTH_PROVIDERS": "google,github",
        "OAUTH_GOOGLE_CLIENT_ID": "google-client",
        "OAUTH_GOOGLE_CLIENT_SECRET": "google-secret",
        "OAUTH_GITHUB_CLIENT_ID": "github-client",
        "OAUTH_GITHUB_CLIENT_SECRET": "github-secret",
        "PUBLIC_API_URL": "https://api.example.com",
    }
    env = {key: interpolate(value, variables) for key, value in environment(service("identity")).items()}
    settings = load_settings(settings_class("identity"), env=env)
    SecretBox.from_base64(settings.secret_key.get_secret_value())
    providers = oauth_providers_from_env(settings.oauth_providers, settings.public_api_url, env)
    assert sorted(providers) == ["github", "google"]
    for name, provider in providers.items():
        assert provider.client_id == f"{name}-client"
        assert provider.client_secret.get_secret_value() == f"{name}-secret"
        assert provider.redirect_uri == f"https://api.example.com/api/auth/oauth/{name}/callback"
    # As .env.example ships: no provider, and the empty client settings are ignored.
    env = {
        key: interpolate(value, filled_env_file()) for key, value in environment(service("identity")).items()
    }
    assert oauth_providers_from_env(env["OAUTH_PROVIDERS"], env["PUBLIC_API_URL"], env) == {}


def test_every_service_verifies_tokens_with_identitys_keys_and_shares_one_credential():
    jwks_url = f"http://identity:{PORTS['identity']}/.well-known/jwks.json"
    identity_http = (
        REPO_ROOT / "services" / "identity" / "src" / "funmagic_identity" / "entrypoints" / "http.py"
    )
    assert f'"{urlsplit(jwks_url).path}"' in identity_http.read_text(), "identity serves its JWKS elsewhere"
    envs = {name: environment(service(name)) for name in FUNMAGIC_SERVICES}
    for name, env in envs.items():
        assert env["AUTH_JWKS_URL"] == jwks_url, f"{name} fetches signing keys from {env['AUTH_JWKS_URL']}"
        match = REQUIRED_REFERENCE.match(env["INTERNAL_API_TOKEN"])
        assert match, f"{name}: INTERNAL_API_TOKEN is {env['INTERNAL_API_TOKEN']!r}"
        assert match.group(1) == "INTERNAL_API_TOKEN", f"{name} reads its credential from {match.group(1)}"
    # identity signs with these claims and every service checks them: one value (or the default) for all.
    for claim in ("AUTH_ISSUER", "AUTH_AUDIENCE"):
        values = {env.get(claim) for env in envs.values()}
        assert len(values) == 1, f"services disagree on {claim}: {values}"


def test_identity_and_the_gateway_agree_on_where_the_app_lives():
    identity, gateway = environment(service("identity")), environment(service("gateway"))
    assert identity["PUBLIC_APP_URL"] == gateway["PUBLIC_APP_URL"]
    variables = filled_env_file()
    app = urlsplit(interpolate(gateway["PUBLIC_APP_URL"], variables))
    origins = [o.strip() for o in interpolate(gateway["CORS_ORIGINS"], variables).split(",")]
    assert f"{app.scheme}://{app.netloc}" in origins, "the app's own origin must be allowed by CORS"
    assert interpolate(gateway["COOKIE_SECURE"], variables) == "true", "cookies must be Secure by default"


def test_the_readme_shows_the_identity_commands_that_exist():
    from funmagic_identity.bootstrap import SPEC

    text = (COMPOSE_DIR / "README.md").read_text()
    shown = re.findall(r"all\.sh run --rm (?:-e [A-Z_]+ )*identity ([a-z][a-z-]*)", text)
    assert "create-admin" in shown, "README.md should show how to create the first super_admin"
    unknown = set(shown) - {*SPEC.commands, "serve", "migrate"}
    assert not unknown, f"README.md shows identity commands that do not exist: {sorted(unknown)}"


# --- the FunMagic services ---------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_gets_exactly_the_settings_its_code_reads(name):
    env = environment(service(name))
    missing = expected_environment(name) - set(env)
    assert not missing, f"{name} lacks {sorted(missing)}"
    assert env["HTTP_HOST"] == "0.0.0.0"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert re.fullmatch(r"redis://:\$\{REDIS_PASSWORD:\?[^}]*\}@redis:6379/\d+", env["REDIS_URL"]), env[
        "REDIS_URL"
    ]
    assert env["LOG_LEVEL"].startswith("${LOG_LEVEL")


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_listens_on_its_own_port(name):
    port = PORTS[name]
    d = service(name)
    assert environment(d)["HTTP_PORT"] == str(port)
    assert str(port) in [str(p) for p in d.get("expose", [])]
    assert f"http://127.0.0.1:{port}/health'" in d["healthcheck"]["test"][-1]


def test_only_the_web_edge_is_published_on_the_host():
    names = (*FUNMAGIC_SERVICES, "web")
    published = {name: service(name).get("ports") for name in names if service(name).get("ports")}
    assert set(published) == {"web"}, f"published FunMagic services: {sorted(published)}"
    (mapping,) = published["web"]
    assert str(mapping).endswith(f":{WEB_PORT}"), f"web publishes {mapping!r}, not nginx's port {WEB_PORT}"
    # The gateway stays reachable inside the network, where nginx passes the API to it.
    assert str(PORTS["gateway"]) in [str(p) for p in service("gateway").get("expose", [])]


def test_the_gateway_reaches_each_service_at_its_internal_url():
    env = environment(service("gateway"))
    for name in BACKEND_SERVICES:
        assert env[f"{name.upper()}_URL"] == f"http://{name}:{PORTS[name]}"


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_each_service_with_a_database_uses_its_own_database_and_role(name):
    url = environment(service(name))["DATABASE_URL"]
    variable = f"{name.upper()}_DB_PASSWORD"
    expected = rf"postgresql://funmagic_{name}:\$\{{{variable}:\?[^}}]*\}}@postgres:5432/funmagic_{name}"
    assert re.fullmatch(expected, url), url
    assert variable in environment(service("postgres")), (
        f"postgres does not receive {variable} for its init script"
    )


def test_storage_uses_the_buckets_that_minio_init_creates_on_the_s3_service():
    env = environment(service("storage"))
    for key, bucket in BUCKETS.items():
        assert env[key] == bucket
    assert env["S3_ENDPOINT"] == "${S3_ENDPOINT:-http://s3:9000}"


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_runs_the_one_service_image(name):
    d = service(name)
    assert "build" not in d, "make images builds the images; compose only runs them"
    assert d["image"] == "${FUNMAGIC_IMAGE_REPOSITORY:-funmagic}/service:${FUNMAGIC_VERSION:-dev}"
    assert environment(d)["FUNMAGIC_SERVICE"] == name


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_restarts_and_drains_on_stop(name):
    d = service(name)
    assert d.get("restart") in ("unless-stopped", "always")
    assert d.get("stop_signal", "SIGTERM") == "SIGTERM"
    drain = float(environment(d).get("SHUTDOWN_GRACE_SECONDS", "15"))  # funmagic_kit's default is 15 s
    grace = seconds(d.get("stop_grace_period", "10s"))  # compose's default is 10 s
    assert grace >= drain + 5, f"SIGKILL after {grace} s cuts a drain that may take {drain} s"


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_funmagic_service_waits_for_what_it_needs(name):
    deps = depends_on(service(name))
    needed = {
        "redis": "service_healthy",
        "kafka": "service_healthy",
        "kafka-init": "service_completed_successfully",
    }
    if name in DATABASE_SERVICES:
        needed |= {"postgres": "service_healthy", f"{name}-migrate": "service_completed_successfully"}
    if name == "storage":
        needed |= {"s3": "service_healthy"}
    if name == "gateway":
        needed |= {backend: "service_healthy" for backend in BACKEND_SERVICES}
    for dep, condition in needed.items():
        assert deps.get(dep, {}).get("condition") == condition, f"{name} should wait for {dep} ({condition})"


@pytest.mark.parametrize("name", DATABASE_SERVICES)
def test_migrations_run_once_before_each_service_with_a_database(name):
    job = service(f"{name}-migrate")
    main = service(name)
    assert job["command"] == ["migrate"]
    assert job["image"] == main["image"]
    assert environment(job) == environment(main), "migrate must see the same settings as the service"
    assert depends_on(job)["postgres"]["condition"] == "service_healthy"
    assert is_one_shot(job)


class _HealthHandler(http.server.BaseHTTPRequestHandler):
    status = 200
    paths: typing.ClassVar[list[str]] = []

    def do_GET(self):
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    handler = type("Handler", (_HealthHandler,), {"status": 200, "paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", FUNMAGIC_SERVICES)
def test_each_healthcheck_passes_on_a_healthy_service_and_fails_on_an_unhealthy_one(name, health_server):
    server, handler = health_server
    check = service(name)["healthcheck"]["test"]
    assert check[:3] == ["CMD", "python", "-c"], "the slim image has python but no curl"
    code = check[3]
    assert "urllib" in code
    assert f"127.0.0.1:{PORTS[name]}/" in code
    code = code.replace(f"127.0.0.1:{PORTS[name]}/", f"127.0.0.1:{server.server_address[1]}/")

    healthy = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr.decode()
    assert handler.paths == ["/health"]

    handler.status = 503
    unhealthy = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert unhealthy.returncode != 0, "the healthcheck passed on a 503"


# --- the Dockerfile ----------------------------------------------------------------------------


def dockerfile_stages(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[list[tuple[str, str]]]]:
    """Global ARG defaults, and each stage's (INSTRUCTION, arguments) in order."""
    text = re.sub(r"\\\n", " ", path.read_text())
    global_args: dict[str, str] = {}
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if not stages:
            if instruction == "ARG" and "=" in rest:
                key, value = rest.split("=", 1)
                global_args[key.strip()] = value.strip()
            continue
        stages[-1].append((instruction, rest.strip()))
    return global_args, stages


def stage_bases(path: Path) -> list[str]:
    global_args, stages = dockerfile_stages(path)
    return [
        re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), stage[0][1].split()[0])
        for stage in stages
    ]


@pytest.mark.parametrize("path", [DOCKERFILE, WEB_DOCKERFILE], ids=lambda p: p.name)
def test_the_images_start_from_the_debootstrap_base_and_nothing_from_a_registry(path):
    global_args, stages = dockerfile_stages(path)
    assert global_args["BASE_IMAGE"] == "funmagic/base:bookworm", (
        "the base make images builds with debootstrap"
    )
    names = {stage[0][1].split()[-1] for stage in stages if " AS " in stage[0][1].upper()}
    for base in stage_bases(path):
        assert base in ("funmagic/base:bookworm", *names), f"{path.name} starts a stage from {base}"


def test_the_service_image_is_multi_stage_and_the_runtime_copies_only_the_virtualenv():
    _, stages = dockerfile_stages()
    assert len(stages) >= 3, "python, build and runtime should be separate stages"
    final = stages[-1]
    assert [a for i, a in final if i == "COPY"] == ["--from=build /opt/venv /opt/venv"]
    assert not any("ca.crt" in a for i, a in final), "the build's CA bundle stays out of the final image"


def test_the_third_party_packages_are_a_layer_of_their_own_before_the_code():
    _, stages = dockerfile_stages()
    build = next(stage for stage in stages if stage[0][1].endswith("AS build"))
    steps = [(i, a) for i, a in build if i in ("COPY", "RUN")]
    code_copy = steps.index(("COPY", "libs libs"))
    dependencies = next(n for n, (i, a) in enumerate(steps) if i == "RUN" and "-r requirements.txt" in a)
    assert dependencies < code_copy, "a code change must not reinstall the dependencies"
    assert re.search(r"pip install -c constraints\.txt -r requirements\.txt", steps[dependencies][1])
    before = " ".join(a for i, a in steps[:code_copy] if i == "COPY")
    assert "/src" not in before, "only the manifests come before the code"
    assert "pyproject.toml" in before
    (install,) = [a for i, a in steps[code_copy:] if i == "RUN" and "pip install" in a]
    assert "--no-deps" in install
    for package in ("./libs/contracts", "./libs/kit", *(f"./services/{s}" for s in FUNMAGIC_SERVICES)):
        assert package in install, f"the image does not install {package}"


def test_the_requirements_layer_lists_every_third_party_dependency_and_no_funmagic_package():
    sys.path.insert(0, str(REPO_ROOT / "deploy" / "images"))
    from third_party_requirements import third_party_requirements

    pyprojects = [REPO_ROOT / "libs" / n / "pyproject.toml" for n in ("contracts", "kit")]
    pyprojects += [REPO_ROOT / "services" / n / "pyproject.toml" for n in FUNMAGIC_SERVICES]
    requirements = third_party_requirements(pyprojects)
    assert not [r for r in requirements if r.startswith("funmagic")]
    names = {re.split(r"[<>=\[ ]", r)[0] for r in requirements}
    assert {"pydantic", "aiokafka", "psycopg", "argon2-cffi", "openai", "pillow"} <= names


def test_the_service_image_runs_as_a_non_root_user_and_drains_on_sigterm():
    _, stages = dockerfile_stages()
    final = stages[-1]
    users = [a for i, a in final if i == "USER"]
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0"), f"the image runs as {users}"
    assert ("STOPSIGNAL", "SIGTERM") in final


def test_the_image_entrypoint_runs_the_named_service_module_with_its_subcommand(tmp_path):
    _, stages = dockerfile_stages()
    final = dict(stages[-1])
    entrypoint = json.loads(final["ENTRYPOINT"])
    assert json.loads(final["CMD"]) == ["serve"]
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    executable(fake_bin / "python", '#!/bin/sh\nprintf "%s\\n" "$@"\n')
    env = {"PATH": f"{fake_bin}:/usr/bin:/bin", "FUNMAGIC_SERVICE": "credits"}
    for args, expected in (
        (["serve"], ["-m", "funmagic_credits", "serve"]),
        (["migrate"], ["-m", "funmagic_credits", "migrate"]),
    ):
        run = subprocess.run(entrypoint + args, capture_output=True, text=True, env=env, timeout=30)
        assert run.returncode == 0, run.stderr
        assert run.stdout.split("\n")[:-1] == expected
    unnamed = subprocess.run(
        [*entrypoint, "serve"], capture_output=True, text=True, env={"PATH": env["PATH"]}
    )
    assert unnamed.returncode == 64
    assert "set FUNMAGIC_SERVICE" in unnamed.stderr


# --- the web edge: nginx serving the web app (web.yml, web.Dockerfile, nginx/web.conf) -------------

# Reserved gateway paths the edge answers 404 itself instead of passing on: Prometheus scrapes
# gateway:8000/metrics inside the network.
NOT_PUBLISHED = {"/metrics"}
SSE_PATHS = ("/api/stream", "/api/tasks/{task_id}/stream")


@functools.cache
def gateway_module(name: str) -> Any:
    settings_class("gateway")  # puts the gateway's source tree on sys.path when it is not installed
    return importlib.import_module(f"funmagic_gateway.{name}")


def dockerfile_env(path: Path) -> dict[str, str]:
    """The ENV the final stage of a Dockerfile sets (`ENV KEY=value …` only)."""
    _, stages = dockerfile_stages(path)
    env: dict[str, str] = {}
    for instruction, arguments in stages[-1]:
        if instruction == "ENV":
            items = shlex.split(arguments)
            assert all("=" in item for item in items), f"write ENV as KEY=value: {arguments!r}"
            env.update(item.split("=", 1) for item in items)
    return env


def web_container_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """What the web container's environment holds: the image's ENV, then web.yml's (which wins)."""
    env = dockerfile_env(WEB_DOCKERFILE)
    env.update({key: interpolate(value, variables) for key, value in environment(service("web")).items()})
    return env


WEB_ENTRYPOINT = REPO_ROOT / "deploy" / "images" / "web" / "entrypoint.sh"
# The variables the web image's entrypoint hands to envsubst: the defined WEB_* ones.
WEB_SUBSTITUTED = "^WEB_"


def render_like_the_nginx_image(template: str, env: Mapping[str, str]) -> str:
    """The web image's entrypoint: envsubst with only the defined variables whose name starts with WEB_."""
    names = [name for name in env if re.search(WEB_SUBSTITUTED, name)]
    for name in names:
        template = re.sub(rf"\$(?:\{{{name}\}}|{name}(?!\w))", lambda _m, n=name: env[n], template)
    return template


@dataclasses.dataclass
class NginxBlock:
    directives: list[tuple[str, list[str]]]
    blocks: list[tuple[str, list[str], NginxBlock]]

    def values(self, name: str) -> list[list[str]]:
        return [args for directive, args in self.directives if directive == name]

    def value(self, name: str) -> list[str] | None:
        found = self.values(name)
        return found[-1] if found else None

    def block(self, name: str) -> NginxBlock:
        (found,) = [block for directive, _, block in self.blocks if directive == name]
        return found


NGINX_TOKEN = re.compile(r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|#[^\n]*|[{};]|[^\s{};"'#]+""")


def parse_nginx(text: str) -> NginxBlock:
    tokens = [token for token in NGINX_TOKEN.findall(text) if not token.startswith("#")]
    position = 0

    def block(nested: bool) -> NginxBlock:
        nonlocal position
        node = NginxBlock([], [])
        words: list[str] = []
        while position < len(tokens):
            token = tokens[position]
            position += 1
            if token == ";":
                node.directives.append((words[0], words[1:]))
                words = []
            elif token == "{":
                node.blocks.append((words[0], words[1:], block(nested=True)))
                words = []
            elif token == "}":
                assert nested, "unbalanced } in the nginx configuration"
                assert not words, f"a directive before }} lacks its ;: {words}"
                return node
            else:
                words.append(token[1:-1] if token[0] in "\"'" else token)
        assert not nested, "a block of the nginx configuration is never closed"
        assert not words, f"a directive lacks its ;: {words}"
        return node

    return block(nested=False)


@functools.cache
def nginx_template() -> str:
    return NGINX_TEMPLATE.read_text()


def nginx_server(text: str | None = None) -> NginxBlock:
    """The one server block of the template (rendered, when `text` is given)."""
    return parse_nginx(nginx_template() if text is None else text).block("server")


def nginx_location(server: NginxBlock, path: str) -> NginxBlock:
    """The location nginx picks for a request path: `=`, then the longest prefix (final with `^~`),
    then the first matching regex, then that longest prefix."""
    locations = [(args, block) for name, args, block in server.blocks if name == "location"]
    for args, block in locations:
        if args[0] == "=" and args[1] == path:
            return block
    prefixes = [
        (args[-1], args[0] == "^~", block) for args, block in locations if len(args) == 1 or args[0] == "^~"
    ]
    matching = [prefix for prefix in prefixes if path.startswith(prefix[0])]
    longest = max(matching, key=lambda prefix: len(prefix[0]), default=None)
    if longest and longest[1]:
        return longest[2]
    for args, block in locations:
        if args[0] in ("~", "~*") and re.search(args[1], path, re.IGNORECASE if args[0] == "~*" else 0):
            return block
    assert longest, f"no location of nginx/web.conf serves {path}"
    return longest[2]


def nginx_inherited(server: NginxBlock, location: NginxBlock, name: str) -> list[list[str]]:
    """An array directive (proxy_set_header, add_header): the location's own, or else all of the server's."""
    return location.values(name) or server.values(name)


def nginx_setting(server: NginxBlock, location: NginxBlock, name: str) -> list[str] | None:
    return location.value(name) or server.value(name)


def nginx_headers(server: NginxBlock, location: NginxBlock) -> dict[str, tuple[str, bool]]:
    """add_header name -> (value, `always`)."""
    headers = nginx_inherited(server, location, "add_header")
    return {args[0]: (args[1], args[2:] == ["always"]) for args in headers}


def nginx_proxy_target(server: NginxBlock, location: NginxBlock) -> str | None:
    target = location.value("proxy_pass")
    if target is None:
        return None
    (url,) = target
    if url.startswith("$"):
        # A variable makes nginx resolve the name per request (Docker's DNS): a resolver must be set.
        assert nginx_setting(server, location, "resolver"), "proxy_pass with a variable needs a resolver"
        defined = {args[0]: args[1] for args in [*server.values("set"), *location.values("set")]}
        assert url in defined, f"proxy_pass {url} is never set"
        url = defined[url]
    return url


def nginx_size(value: str) -> int:
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert match, value
    return int(match.group(1)) * 1024 ** " kmg".index(match.group(2).lower() or " ")


def test_the_web_edge_runs_its_image():
    web = service("web")
    assert "build" not in web, "make images builds the images; compose only runs them"
    assert web["image"] == "${FUNMAGIC_IMAGE_REPOSITORY:-funmagic}/web:${FUNMAGIC_VERSION:-dev}"
    assert web.get("restart") in ("unless-stopped", "always")
    assert depends_on(web)["gateway"]["condition"] == "service_healthy"
    assert str(WEB_PORT) in [str(p) for p in web.get("expose", [])]


def test_the_web_image_serves_both_apps_builds_with_nginx_from_the_template():
    _, stages = dockerfile_stages(WEB_DOCKERFILE)
    (final,) = stages
    runs = " ".join(a for i, a in final if i == "RUN")
    assert "nginx-light" in runs, "nginx with gzip_static"
    assert "gettext-base" in runs, "envsubst for the template"
    copies = [shlex.split(a) for i, a in final if i == "COPY"]
    assert ["apps/web/dist/", "/usr/share/nginx/html/"] in copies
    assert ["apps/admin/dist/", "/usr/share/nginx/html/admin/"] in copies
    template = ["deploy/compose/nginx/web.conf", "/etc/nginx/templates/default.conf.template"]
    assert template in copies
    assert (REPO_ROOT / template[0]).resolve() == NGINX_TEMPLATE
    assert not [c for c in copies if c[-1].startswith("/etc/nginx/conf.d")], "conf.d is the template's output"
    assert [a for i, a in final if i == "EXPOSE"] == [str(WEB_PORT)]
    assert ("STOPSIGNAL", "SIGQUIT") in final, "nginx's graceful stop"
    entrypoint = WEB_ENTRYPOINT.read_text()
    assert "/etc/nginx/templates/default.conf.template >/etc/nginx/conf.d/default.conf" in entrypoint
    assert "exec nginx -g 'daemon off;'" in entrypoint


def test_the_web_entrypoint_substitutes_only_the_web_variables(tmp_path):
    if not shutil.which("envsubst"):
        pytest.fail("envsubst is missing (Debian's gettext-base)")
    script = WEB_ENTRYPOINT.read_text().split("envsubst", 1)[0]  # up to the rendering: the variable list
    run = subprocess.run(
        ["sh", "-c", script + 'printf "%s" "$variables"'],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "WEB_CONTENT_ORIGINS": "https://cdn.example", "HOST": "x", "uri": "y"},
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["${WEB_CONTENT_ORIGINS}"]


def dockerignore_patterns() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore syntax: Go filepath.Match from the context root, plus `**`."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1].replace("[!", "[^"), end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Whether the build context leaves `path` out: it or a parent folder matches; the last match wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = dockerignore_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_the_dockerignore_lets_in_what_the_images_copy_and_nothing_else():
    patterns = dockerignore_patterns()
    needed = [
        "constraints.txt",
        "deploy/images/third_party_requirements.py",
        "deploy/images/.build/ca.crt",
        "deploy/images/web/entrypoint.sh",
        "deploy/compose/nginx/web.conf",
        "apps/web/dist/index.html",
        "apps/admin/dist/index.html",
    ]
    for package in (
        *(f"libs/{n}" for n in ("contracts", "kit")),
        *(f"services/{n}" for n in FUNMAGIC_SERVICES),
    ):
        needed.append(f"{package}/pyproject.toml")
        sources = sorted((REPO_ROOT / package / "src").rglob("*.py"))
        assert sources, f"{package}/src has no source"
        needed += [
            path.relative_to(REPO_ROOT).as_posix() for path in sources if "__pycache__" not in path.parts
        ]
    needed.append("services/tasks/src/funmagic_tasks/migrations/001_catalog.sql")
    left_out = [f for f in needed if dockerignored(f, patterns)]
    assert not left_out, f".dockerignore leaves out files the images are built from: {left_out}"
    for private in (
        "deploy/compose/.env",
        ".stack/env",
        ".venv/bin/python",
        "tests/e2e/conftest.py",
        "services/tasks/tests/unit/test_x.py",
        "bench/run.py",
        "apps/web/node_modules/vite/package.json",
        "apps/web/src/main.ts",
        "services/tasks/src/funmagic_tasks/__pycache__/x.cpython-311.pyc",
    ):
        assert dockerignored(private, patterns), f"{private} would be sent to the builder"


def test_the_web_edge_listens_on_its_port_without_telling_its_version():
    server = nginx_server()
    assert server.value("listen")[0] == str(WEB_PORT)
    assert server.value("server_tokens") == ["off"]
    assert server.value("root") == ["/usr/share/nginx/html"]
    assert server.value("gzip") == ["on"]
    assert server.value("gzip_static") == ["on"], "the build's .gz twins (precompress.mjs) go out as they are"
    types = set(server.value("gzip_types"))
    assert {"application/javascript", "text/css", "application/json", "image/svg+xml"} <= types


def test_the_web_edge_takes_the_same_request_bodies_as_the_gateway():
    limit = nginx_size(nginx_server().value("client_max_body_size")[0])
    gateway_default = settings_class("gateway").model_fields["max_body_bytes"].default
    composed = interpolate(environment(service("gateway"))["MAX_BODY_BYTES"], filled_env_file())
    assert limit == gateway_default == int(composed), (limit, gateway_default, composed)


def test_the_web_edge_passes_every_reserved_gateway_path_to_the_gateway():
    server = nginx_server()
    reserved = gateway_module("entrypoints.web_apps")._RESERVED
    assert "/api/" in reserved, "the gateway's reserved paths were not read right"
    for prefix in reserved:
        for path in {prefix, prefix + "x" if prefix.endswith("/") else prefix + "/x"}:
            location = nginx_location(server, path)
            if prefix in NOT_PUBLISHED:
                assert location.value("return") == ["404"], f"{path} should be refused at the edge"
                continue
            target = nginx_proxy_target(server, location)
            assert target == f"http://gateway:{PORTS['gateway']}", f"{path} goes to {target}, not the gateway"
            assert nginx_setting(server, location, "proxy_http_version") == ["1.1"]
            headers = {args[0]: args[1] for args in nginx_inherited(server, location, "proxy_set_header")}
            assert headers == {
                "Host": "$host",
                "X-Forwarded-For": "$proxy_add_x_forwarded_for",
                "X-Forwarded-Proto": "$scheme",
            }, f"{path}: {headers}"


def test_the_sse_streams_go_out_unbuffered_and_stay_open():
    sse_routes = Path(gateway_module("entrypoints.sse_routes").__file__).read_text()
    server = nginx_server()
    for route in SSE_PATHS:
        assert f'"{route}"' in sse_routes, f"the gateway no longer streams at {route}"
        path = route.replace("{task_id}", "0b7c2d4e-9f1a-4c3b-8d5e-6f7a8b9c0d1e")
        location = nginx_location(server, path)
        assert nginx_proxy_target(server, location) == f"http://gateway:{PORTS['gateway']}"
        assert nginx_setting(server, location, "proxy_buffering") == ["off"], f"{path} is buffered"
        timeout = seconds(nginx_setting(server, location, "proxy_read_timeout")[0])
        assert timeout >= 3600, f"{path}: nginx closes a quiet stream after {timeout} s"
    plain = nginx_location(server, "/api/tasks/0b7c2d4e-9f1a-4c3b-8d5e-6f7a8b9c0d1e")
    assert plain.value("proxy_buffering") is None, "only the streams need buffering off"


def test_hashed_assets_are_cached_for_a_year_and_a_missing_one_is_404():
    web_apps = gateway_module("entrypoints.web_apps")
    server = nginx_server()
    location = nginx_location(server, "/assets/index-BVNCUu4B.js")
    assert location.value("try_files") == ["$uri", "=404"], "a missing asset must be 404, never index.html"
    value, always = nginx_headers(server, location)["Cache-Control"]
    assert value == web_apps.IMMUTABLE
    assert not always, "with `always` the 404 for a missing asset would be cached for a year"


def test_deep_links_get_index_html_which_is_never_cached():
    web_apps = gateway_module("entrypoints.web_apps")
    server = nginx_server()
    for path in ("/", "/ja/tools/figme", "/creations"):
        location = nginx_location(server, path)
        assert location.value("try_files") == ["$uri", "/index.html"], f"{path} is no deep link"
    index = nginx_location(server, "/index.html")
    assert nginx_headers(server, index)["Cache-Control"][0] == web_apps.NO_CACHE


def test_dotfiles_of_the_build_are_not_served():
    server = nginx_server()
    for path in ("/.vite/manifest.json", "/.env", "/ja/.hidden"):
        assert nginx_location(server, path).value("return") == ["404"], f"{path} would be served"
    well_known = nginx_location(server, "/.well-known/jwks.json")
    assert nginx_proxy_target(server, well_known) == f"http://gateway:{PORTS['gateway']}"


def test_index_html_carries_the_gateways_content_security_policy():
    web_apps = gateway_module("entrypoints.web_apps")
    variables = filled_env_file()
    env = web_container_environment(variables)
    rendered = render_like_the_nginx_image(nginx_template(), env)
    server = nginx_server(rendered)
    origins = env["WEB_CONTENT_ORIGINS"].split()
    policy, always = nginx_headers(server, nginx_location(server, "/index.html"))["Content-Security-Policy"]
    assert policy == web_apps.content_security_policy(origins)
    assert always
    # By default and as .env.example ships, the pages may load from and upload to the object store and
    # the CDN that storage hands out URLs for.
    storage, web = environment(service("storage")), environment(service("web"))
    for variables in ({}, filled_env_file()):
        allowed = interpolate(web["WEB_CONTENT_ORIGINS"], variables).split()
        for key in ("S3_PUBLIC_ENDPOINT", "CDN_URL"):
            url = urlsplit(interpolate(storage[key], variables))
            origin = f"{url.scheme}://{url.netloc}"
            assert origin in allowed, f"the pages' CSP does not allow {key} ({origin})"


def test_the_admin_app_is_served_at_admin_with_its_deep_links():
    web_apps = gateway_module("entrypoints.web_apps")
    env = web_container_environment(filled_env_file())
    server = nginx_server(render_like_the_nginx_image(nginx_template(), env))
    for path in ("/admin/", "/admin/users/0b7c2d4e-9f1a-4c3b-8d5e-6f7a8b9c0d1e", "/admin/queue"):
        location = nginx_location(server, path)
        assert location.value("try_files") == ["$uri", "/admin/index.html"], f"{path} is no admin deep link"
    asset = nginx_location(server, "/admin/assets/index-BVNCUu4B.js")
    assert asset.value("try_files") == ["$uri", "=404"], "a missing admin asset must be 404"
    assert nginx_headers(server, asset)["Cache-Control"] == (web_apps.IMMUTABLE, False)
    index = nginx_headers(server, nginx_location(server, "/admin/index.html"))
    assert index["Cache-Control"][0] == web_apps.NO_CACHE
    assert index["Content-Security-Policy"] == (
        web_apps.content_security_policy(env["WEB_CONTENT_ORIGINS"].split()),
        True,
    )
    assert nginx_location(server, "/admin/.vite/manifest.json").value("return") == ["404"]
    # The product app's deep links are still its own.
    assert nginx_location(server, "/administrator").value("try_files") == ["$uri", "/index.html"]


def test_the_template_substitutes_only_what_web_yml_sets_and_leaves_nginx_variables_alone():
    template = nginx_template()
    env = web_container_environment(filled_env_file())
    pattern = WEB_SUBSTITUTED
    substituted = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", template))
    assert substituted, "the template takes nothing from the environment"
    assert substituted <= set(environment(service("web"))), (
        f"web.yml does not set {sorted(substituted - set(environment(service('web'))))}"
    )
    assert all(re.search(pattern, name) for name in substituted), f"{pattern} does not match {substituted}"
    nginx_variables = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", template))
    assert {"uri", "host", "proxy_add_x_forwarded_for", "scheme"} <= nginx_variables
    assert not [name for name in nginx_variables if re.search(pattern, name)]
    # Even with an environment that happens to define them, nginx's variables stay as they are.
    rendered = render_like_the_nginx_image(template, {**env, **{name: "X" for name in nginx_variables}})
    assert "${" not in rendered
    assert set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", rendered)) == nginx_variables


def test_the_web_healthcheck_passes_on_nginx_health_and_fails_otherwise(health_server):
    server = nginx_server()
    assert nginx_location(server, "/nginx-health").value("return")[0] == "200"
    check = service("web")["healthcheck"]["test"]
    assert check[:2] == ["CMD", "curl"], "the nginx bookworm image has curl, not python"
    url = f"http://127.0.0.1:{WEB_PORT}/nginx-health"
    assert check[-1] == url
    short_options = "".join(a for a in check if a.startswith("-") and not a.startswith("--"))
    assert "f" in short_options, "without -f curl succeeds on an error status"
    if not shutil.which("curl"):
        pytest.fail("curl is needed to run the healthcheck as the image does: apt-get install curl")
    httpd, handler = health_server
    command = [*check[1:-1], url.replace(f":{WEB_PORT}/", f":{httpd.server_address[1]}/")]
    healthy = subprocess.run(command, capture_output=True, timeout=30)
    assert healthy.returncode == 0, healthy.stderr.decode()
    assert handler.paths == ["/nginx-health"]
    handler.status = 503
    assert subprocess.run(command, capture_output=True, timeout=30).returncode != 0


def test_the_gateway_believes_x_forwarded_for_from_the_web_edges_network():
    network = compose_documents()["infra.yml"]["networks"]["funmagic"]
    (subnet,) = [ipaddress.ip_network(c["subnet"]) for c in network["ipam"]["config"]]
    parse_trusted_proxies = gateway_module("entrypoints.edge").parse_trusted_proxies
    value = environment(service("gateway"))["TRUSTED_PROXIES"]
    for variables in ({}, filled_env_file()):  # the file's default, and .env.example's value
        trusted = parse_trusted_proxies(interpolate(value, variables))
        assert any(subnet.subnet_of(net) for net in trusted if net.version == subnet.version), (
            f"nginx connects from {subnet}, the gateway trusts {trusted}"
        )


def test_the_app_and_the_api_live_on_the_web_edge():
    gateway, identity = environment(service("gateway")), environment(service("identity"))
    (mapping,) = service("web")["ports"]
    for variables in ({}, filled_env_file()):  # the files' defaults, and .env.example's values
        edge = f"http://localhost:{interpolate(str(mapping), variables).split(':')[-2]}"
        app = {interpolate(env["PUBLIC_APP_URL"], variables) for env in (gateway, identity)}
        assert app == {edge}, f"the app is served at {edge}, not {app}"
        api = interpolate(identity["PUBLIC_API_URL"], variables)
        assert api == edge, f"browsers reach the API (and OAuth callbacks) through nginx at {edge}, not {api}"
        assert edge in [o.strip() for o in interpolate(gateway["CORS_ORIGINS"], variables).split(",")]


# --- infrastructure ----------------------------------------------------------------------------


def test_infra_runs_the_images_make_images_builds_unless_told_otherwise():
    assert service("postgres")["image"] == "${POSTGRES_IMAGE:-funmagic/postgres:dev}"
    assert service("redis")["image"] == "${REDIS_IMAGE:-funmagic/redis:dev}"
    assert service("kafka")["image"] == "${KAFKA_IMAGE:-funmagic/kafka:dev}"
    assert service("s3")["image"] == "${S3_IMAGE:-funmagic/s3:dev}"
    assert "minio/minio" in minio_services()["s3"]["image"]
    assert "minio/mc" in minio_services()["minio-init"]["image"]


def test_infra_keeps_its_data_in_named_volumes():
    declared = set(compose_documents()["infra.yml"].get("volumes") or {})
    targets = {
        "postgres": "/var/lib/postgresql",
        "redis": "/data",
        "kafka": "/var/lib/kafka/data",
        "s3": "/data",
    }
    for name, target in targets.items():
        mounts = [str(v).split(":") for v in service(name).get("volumes", [])]
        named = [m for m in mounts if m[0] in declared]
        assert any(m[1] == target for m in named), (
            f"{name} keeps no named volume at {target} (postgres 18 wants /var/lib/postgresql)"
        )
    assert minio_services()["s3"]["volumes"] == ["s3-data:/data"], "MinIO keeps its data in the same volume"


def test_kafka_runs_kraft_combined_mode_and_advertises_the_address_services_use():
    env = environment(service("kafka"))
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["CLUSTER_ID"]
    advertised = {entry.split("://", 1)[1] for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for name in FUNMAGIC_SERVICES:
        assert environment(service(name))["KAFKA_BOOTSTRAP_SERVERS"] in advertised
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", (
        "topics must come from kafka-init with their contract config"
    )
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"


def test_kafka_init_creates_the_contract_topics_with_the_code_the_native_stack_uses():
    job = service("kafka-init")
    assert job["image"] == service("tasks")["image"], "the service image holds funmagic_kit"
    assert job["entrypoint"][:3] == ["python", "-m", "funmagic_kit.create_topics"]
    assert "--wait" in job["entrypoint"], "the broker may be healthy before it answers metadata"
    env = environment(job)
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["KAFKA_TOPIC_PREFIX"] == "${KAFKA_TOPIC_PREFIX:-}"
    assert env["FUNMAGIC_KAFKA_PARTITIONS"] == "6"
    stack = (REPO_ROOT / "deploy" / "local" / "stack.sh").read_text()
    assert "py -m funmagic_kit.create_topics" in stack


def _run_minio_init(
    tmp_path: Path, attached: bool
) -> tuple[subprocess.CompletedProcess, list[list[str]], Path]:
    d = minio_services()["minio-init"]
    log = tmp_path / "mc.log"
    policy_line = "echo 'PolicyName: funmagic-storage'" if attached else ":"
    bin_dir = tmp_path / "mc-bin"
    bin_dir.mkdir()
    executable(
        bin_dir / "mc",
        f"""#!/bin/sh
for a in "$@"; do printf '%s\\037' "$a"; done >> {shlex.quote(str(log))}; echo >> {shlex.quote(str(log))}
if [ "$1 $2 $3" = "admin user info" ]; then echo "AccessKey: $5"; {policy_line}; fi
""",
    )
    policy = tmp_path / "policy.json"
    script = shell_script(d).replace("/tmp/funmagic-storage-policy.json", str(policy))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "MINIO_ROOT_USER": "root-user",
        "MINIO_ROOT_PASSWORD": "root-password",
        "S3_ACCESS_KEY": "storage-key",
        "S3_SECRET_KEY": "storage-secret",
    }
    assert set(env) - {"PATH"} <= set(environment(d)), "minio-init does not receive the credentials it uses"
    run = subprocess.run(d["entrypoint"] + [script], capture_output=True, text=True, env=env, timeout=60)
    calls = [line.split("\037")[:-1] for line in log.read_text().splitlines()] if log.exists() else []
    return run, calls, policy


def test_minio_init_creates_the_buckets_and_opens_only_the_public_one(tmp_path):
    run, calls, policy = _run_minio_init(tmp_path, attached=False)
    assert run.returncode == 0, run.stderr
    assert ["alias", "set", "funmagic", "http://s3:9000", "root-user", "root-password"] in calls
    made = {call[-1].split("/", 1)[1] for call in calls if call[:1] == ["mb"]}
    assert made == set(BUCKETS.values())
    anonymous = {call[-1].split("/", 1)[1]: call[2] for call in calls if call[:2] == ["anonymous", "set"]}
    assert anonymous == {"funmagic-public": "download", "funmagic-private": "none", "funmagic-admin": "none"}
    assert ["admin", "user", "add", "funmagic", "storage-key", "storage-secret"] in calls
    assert ["admin", "policy", "attach", "funmagic", "funmagic-storage", "--user", "storage-key"] in calls
    statements = json.loads(policy.read_text())["Statement"]
    resources = {r for s in statements for r in s["Resource"]}
    assert {r.split(":::")[1].split("/")[0] for r in resources} == set(BUCKETS.values())


def test_minio_init_can_run_again_on_every_start(tmp_path):
    run, calls, _ = _run_minio_init(tmp_path, attached=True)
    assert run.returncode == 0, run.stderr
    assert all(call[:1] != ["mb"] or "--ignore-existing" in call for call in calls)
    assert not [call for call in calls if call[:3] == ["admin", "policy", "attach"]]


def _run_postgres_init(
    tmp_path: Path, passwords: dict[str, str]
) -> tuple[subprocess.CompletedProcess, list[tuple[list[str], str]]]:
    bin_dir = tmp_path / "pg-bin"
    bin_dir.mkdir()
    calls_dir = tmp_path / "psql-calls"
    calls_dir.mkdir()
    executable(
        bin_dir / "psql",
        f"""#!/bin/sh
n=$(ls {shlex.quote(str(calls_dir))} | wc -l)
for a in "$@"; do printf '%s\\037' "$a"; done > {shlex.quote(str(calls_dir))}/$n.args
cat > {shlex.quote(str(calls_dir))}/$n.sql
""",
    )
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "POSTGRES_USER": "postgres", **passwords}
    run = subprocess.run(
        ["bash", str(POSTGRES_INIT_SCRIPT)], capture_output=True, text=True, env=env, timeout=60
    )
    calls = []
    for args_file in sorted(calls_dir.glob("*.args"), key=lambda p: int(p.stem)):
        calls.append((args_file.read_text().split("\037")[:-1], args_file.with_suffix(".sql").read_text()))
    return run, calls


def test_the_postgres_init_script_creates_one_owned_database_per_service(tmp_path):
    postgres = service("postgres")
    assert "./postgres-init:/docker-entrypoint-initdb.d:ro" in postgres["volumes"]
    passwords = {f"{s.upper()}_DB_PASSWORD": f"pw-{s}-'\"" for s in DATABASE_SERVICES}
    run, calls = _run_postgres_init(tmp_path, passwords)
    assert run.returncode == 0, run.stderr
    seen = {}
    for args, sql in calls:
        assert "ON_ERROR_STOP=1" in args
        settings = dict(a.split("=", 1)[1].split("=", 1) for a in args if a.startswith("--set="))
        seen[settings["role"]] = settings["password"]
        assert 'CREATE DATABASE :"role" OWNER :"role"' in sql
        assert "CREATE ROLE :\"role\" LOGIN PASSWORD :'password'" in sql
    assert seen == {f"funmagic_{s}": passwords[f"{s.upper()}_DB_PASSWORD"] for s in DATABASE_SERVICES}


def test_the_postgres_init_script_refuses_to_run_without_a_password(tmp_path):
    passwords = {f"{s.upper()}_DB_PASSWORD": "pw" for s in DATABASE_SERVICES}
    passwords["CREDITS_DB_PASSWORD"] = ""
    run, _ = _run_postgres_init(tmp_path, passwords)
    assert run.returncode != 0
    assert "CREDITS_DB_PASSWORD" in run.stderr
