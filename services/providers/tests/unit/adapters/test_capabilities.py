"""The step types' schema (`adapters/apis/capabilities.py`) says what the adapters really do: each adapter
is run on each step type, with options that record which names it looks up. A declared option the adapter
never reads, an option it reads that is not declared, or a step type declared for a provider that refuses
it (or refused by the schema but run by the adapter) fails here.

The three network adapters are pointed at a port where nothing listens: they read their options, then fail
to connect, which is all this needs (no request leaves the machine)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from io import BytesIO
from typing import Any, get_args

import aiohttp
import pytest
from PIL import Image

from funmagic_contracts.api.providers import ProviderCreate, StepTypeCatalog
from funmagic_providers.adapters.apis.capabilities import CAPABILITIES, OptionField, step_type_catalog
from funmagic_providers.adapters.apis.fal_queue import FalQueue
from funmagic_providers.adapters.apis.gemini import Gemini
from funmagic_providers.adapters.apis.hunyuan import Hunyuan
from funmagic_providers.adapters.apis.local import LocalProvider
from funmagic_providers.adapters.apis.openai_images import OpenAIImages
from funmagic_providers.adapters.apis.replicate import Replicate
from funmagic_providers.adapters.apis.tripo import Tripo
from funmagic_providers.domain.errors import (
    InvalidStepInput,
    ProviderError,
    ProviderUnavailable,
    UnsupportedStep,
)
from funmagic_providers.domain.providers import PROVIDER_TYPES
from funmagic_providers.domain.steps import STEP_TYPES, InputFile, ProviderAccess, ProviderAdapter, StepCall

# Options only the studio sends (a chat's earlier turns, for Gemini): no tool form offers them.
STUDIO_ONLY_OPTIONS = {"history"}


class RecordedOptions(dict[str, Any]):
    """A step's options that remember every name an adapter looked up (`get`, `[]`, `in`)."""

    def __init__(self) -> None:
        super().__init__()
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def png() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (32, 24), (255, 255, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


async def no_progress(percent: int, message: str) -> None:
    return None


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound (so no one else takes it) but not listening: a connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
async def adapters(closed_port: int) -> AsyncIterator[dict[str, tuple[ProviderAdapter, str | None]]]:
    async with aiohttp.ClientSession() as http:
        yield {
            "openai": (OpenAIImages(timeout_seconds=5), f"http://127.0.0.1:{closed_port}/v1"),
            "fal": (FalQueue(http, poll_interval_seconds=0.01), f"http://127.0.0.1:{closed_port}"),
            "tripo": (Tripo(http, poll_interval_seconds=0.01), f"http://127.0.0.1:{closed_port}/v2/openapi"),
            "replicate": (Replicate(http, poll_interval_seconds=0.01), f"http://127.0.0.1:{closed_port}/v1"),
            "hunyuan": (Hunyuan(http, poll_interval_seconds=0.01), f"http://127.0.0.1:{closed_port}"),
            "gemini": (Gemini(http), f"http://127.0.0.1:{closed_port}"),
            "local": (LocalProvider(), None),
        }


def call(provider_type: str, base_url: str | None, step_type: str, *, image: bool, model: str) -> StepCall:
    inputs = (InputFile("asset-1", "photo.png", "image/png", png()),) if image else ()
    key = None if provider_type == "local" else "key-1234"
    return StepCall(
        task_id="task-1", user_id="user-1", step_id="step-1", step_type=step_type, model=model,
        prompt="a lighthouse at dusk", options=RecordedOptions(), inputs=inputs,
        provider=ProviderAccess("p", provider_type, base_url, key,
                                api_secret="secret-5678" if provider_type == "hunyuan" else None),
    )  # fmt: skip


async def options_read(adapter: ProviderAdapter, step: StepCall) -> set[str]:
    try:
        await adapter.run(step, no_progress)
    except ProviderUnavailable:
        pass  # the network adapters, at the closed port: the options were read before
    except InvalidStepInput:
        pass  # a step that needs an image, run without one (local's 3d-gen…): the other run covers it
    assert isinstance(step.options, RecordedOptions)
    return step.options.read


def test_every_provider_type_and_every_step_type_is_declared() -> None:
    assert (
        set(CAPABILITIES)
        == set(PROVIDER_TYPES)
        == set(get_args(ProviderCreate.model_fields["type"].annotation))
    )
    declared_steps = {step for steps in CAPABILITIES.values() for step in steps}
    assert declared_steps == set(STEP_TYPES)
    # `local` always exists (no key, no row): every step type must have a provider that runs it.
    assert set(CAPABILITIES["local"]) == set(STEP_TYPES)


@pytest.mark.parametrize("provider_type", PROVIDER_TYPES)
async def test_the_options_declared_are_the_options_the_adapter_reads(provider_type: str, adapters) -> None:
    adapter, base_url = adapters[provider_type]
    for step_type, support in CAPABILITIES[provider_type].items():
        read: set[str] = set()
        # With an input image and without: some options matter on one path only (local's style, size).
        for image in (True, False):
            read |= await options_read(adapter, call(provider_type, base_url, step_type, image=image,
                                                     model=support.models[0]))  # fmt: skip
        declared = {field.name for field in support.options}
        read -= STUDIO_ONLY_OPTIONS  # sent by the studio (tasks), not an admin's tool option
        assert read == declared, (
            f"{provider_type} {step_type}: reads {sorted(read)}, declares {sorted(declared)}"
        )


@pytest.mark.parametrize("provider_type", PROVIDER_TYPES)
async def test_an_adapter_refuses_exactly_the_step_types_not_declared_for_it(
    provider_type: str, adapters
) -> None:
    adapter, base_url = adapters[provider_type]
    for step_type in STEP_TYPES:
        step = call(provider_type, base_url, step_type, image=True, model="default")
        try:
            await adapter.run(step, no_progress)
            refused = False
        except UnsupportedStep:
            refused = True
        except ProviderError:
            refused = False  # it tried (and could not reach the provider): it runs this step type
        assert refused == (step_type not in CAPABILITIES[provider_type]), f"{provider_type} {step_type}"


def valid_default(field: OptionField) -> bool:
    value = field.default
    if value is None:
        return True
    if field.kind == "enum":
        return value in field.enum
    if field.kind == "boolean":
        return isinstance(value, bool)
    if field.kind in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if field.kind == "integer" and not isinstance(value, int):
            return False
        return (field.minimum is None or value >= field.minimum) and (
            field.maximum is None or value <= field.maximum
        )
    return isinstance(value, str)


def test_every_option_field_is_well_formed() -> None:
    for provider_type, steps in CAPABILITIES.items():
        for step_type, support in steps.items():
            assert support.models, f"{provider_type} {step_type} offers no model"
            names = [field.name for field in support.options]
            assert len(names) == len(set(names)), f"{provider_type} {step_type} declares an option twice"
            for field in support.options:
                assert (field.kind == "enum") == bool(field.enum), field
                assert valid_default(field), field
                assert field.description, field


def test_the_answer_is_what_the_gateways_reply_model_reads() -> None:
    catalog = step_type_catalog()
    parsed = StepTypeCatalog.model_validate(catalog)
    assert [item.type for item in parsed.items] == list(STEP_TYPES)
    image_gen = next(item for item in parsed.items if item.type == "image-gen")
    assert [provider.type for provider in image_gen.providers] == ["openai", "gemini", "local"]
    local = next(provider for provider in image_gen.providers if provider.type == "local")
    style = next(option for option in local.options if option.name == "style")
    assert (style.kind, style.default, style.enum) == ("enum", "vintage", ["vintage", "sketch", "posterize"])
