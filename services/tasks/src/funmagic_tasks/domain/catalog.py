"""The tool catalog's rules: tool types, tools and their step configs, banners, and localisation.

Pure: no I/O. Every rule that decides what may be stored lives here, so the HTTP API, the seed command and
the task saga all see the same catalog. A rule that fails raises `InvalidCatalogEntry(field, message)`
naming the field at fault as the API spells it (`config.steps[1].provider.name`, `link`, `translations.de`).

Tool configs are JSON documents in camelCase (as the admin SPA writes them):

    {"steps": [{"id", "name", "type", "provider": {"name", "model", "options"}, "cost", "timeoutSeconds",
                "prompt", "input": {"image", "prompt"}, "useStyleImage",
                "choices": [{"provider", "label", "models", "options": {"<name>": {"type", …}}}, …]}, …],
     "styleReferences": [{"id", "name", "prompt", "assetId"}, ...],
     "pipeline": true}

A step after the first may take the previous step's output as its image: that is how a pipeline task
(every step in order) and a chained task (`parentTaskId`, the next step on the parent's output) work, so no
field says so. A tool's price (`credits_cost`) is the sum of its steps' costs, computed, never typed.

A step may let the user choose its provider per request (`choices`; the original's image-to-3d `3d-gen`
step, Tripo or Hunyuan by `input.providerName`): each choice names a provider of the registry, the models the
user may pick (the first is the default) and the options the user may set, each with what it allows
(`{"type": "enum", "values": [...]}`, `{"type": "integer", "min", "max"}` or `{"type": "boolean"}`, with an
optional `default` the picker shows). The step's own `provider` is the default and must be one of the
choices (with its `model` first, when the choice lists models), so "nothing chosen" and "the default
chosen" run the same. `tasks.plan_task` checks a request's choice against them.

A task may name one of the tool's style references: its prompt is the task's prompt (unless the user gave
one), and an `image-gen` step working on the user's image also gets the style's image, before the user's
(the original's `images.edit` with [style image, user image]) — unless the step says `useStyleImage: false`.

Images: a tool's or banner's thumbnail and a style reference's image are assets of storage, named by id.
When an entry is saved, storage publishes each image it names for the catalog and tasks keeps the image's
CDN URL beside it (`image_urls`, by asset id), so public views show URLs, not ids.

Localisation: base columns are English; `translations` holds per-locale overrides, field by field. A
request for `de-AT` looks at `de-AT`, then `de`, then the English base, for each field on its own.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import cast

from funmagic_kit.errors import Conflict, NotFound, Refused
from funmagic_tasks.domain.json_values import JsonObject, JsonValue

__all__ = [
    "BANNER_TYPES",
    "DEFAULT_TIMEOUT_SECONDS",
    "INPUT_MODES",
    "LINK_TARGETS",
    "LOCAL_PROVIDER",
    "MAX_PROMPT_LENGTH",
    "MAX_STEPS",
    "MAX_STYLE_REFERENCES",
    "STEP_TYPES",
    "BannerEntry",
    "BannerRecord",
    "CatalogConflict",
    "CatalogError",
    "CatalogImage",
    "CatalogNotFound",
    "InvalidCatalogEntry",
    "OptionRule",
    "ProviderChoice",
    "ProviderRef",
    "StepSpec",
    "StyleReference",
    "Tool",
    "ToolConfig",
    "ToolEntry",
    "ToolRecord",
    "ToolTypeEntry",
    "ToolTypeLabel",
    "ToolTypeRecord",
    "banner_images",
    "banner_is_live",
    "changed_fields",
    "check_banner",
    "check_link",
    "check_locale",
    "check_slug",
    "check_tool",
    "check_tool_type",
    "check_translations",
    "choice_fields",
    "config_to_json",
    "credits_cost",
    "image_urls_of",
    "images_named",
    "locale_chain",
    "localize",
    "localize_config",
    "parse_tool_config",
    "provider_names",
    "public_config",
    "tool_images",
]

STEP_TYPES: tuple[str, ...] = ("image-gen", "remove-bg", "3d-gen", "point-cloud")
INPUT_MODES: tuple[str, ...] = ("required", "optional", "none")
BANNER_TYPES: tuple[str, ...] = ("main", "side")
LINK_TARGETS: tuple[str, ...] = ("_self", "_blank")
# The built-in provider of the providers service: no key and no registry row needed, so always there.
LOCAL_PROVIDER = "local"
# Steps that work on an image and nothing else: they cannot be told to take none.
IMAGE_ONLY_STEP_TYPES = frozenset({"remove-bg", "point-cloud"})

MAX_STEPS = 8
MAX_STYLE_REFERENCES = 16
MAX_PROMPT_LENGTH = 4000
MAX_STEP_COST = 1_000_000
MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS, DEFAULT_TIMEOUT_SECONDS = 10, 3600, 600
MAX_OPTIONS_BYTES = 8 * 1024
MAX_OPTIONS_DEPTH = 4
MAX_CHOICES, MAX_CHOICE_MODELS, MAX_USER_OPTIONS, MAX_ENUM_VALUES = 8, 16, 16, 32
OPTION_TYPES: tuple[str, ...] = ("enum", "integer", "boolean")
MAX_LOCALES = 50
MAX_SORT = 1_000_000  # sort_order and position: far inside a Postgres integer
NAME_LENGTH, TITLE_LENGTH, DESCRIPTION_LENGTH, SHORT_LENGTH, LINK_LENGTH = 120, 200, 2000, 80, 2048

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")  # as the providers service names them
_OPTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")  # a provider's option (`face_limit`, `EnablePBR`)
_LOCALE = re.compile(r"^[a-z]{2}(-[A-Z]{2})?$")
# A colour goes into the SPA's styles: a hex colour or a plain token (`red`, `primary-500`), nothing else.
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|[a-z][a-z0-9-]{0,31})$")
_HTTP_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][^\s]*)?$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_CONFIG_KEYS = frozenset({"steps", "styleReferences", "pipeline"})
_STEP_KEYS = frozenset(
    {
        "id",
        "name",
        "type",
        "provider",
        "cost",
        "timeoutSeconds",
        "prompt",
        "input",
        "useStyleImage",
        "choices",
    }
)
_CHOICE_KEYS = frozenset({"provider", "label", "models", "options"})
_OPTION_RULE_KEYS = {
    "enum": frozenset({"type", "values", "default"}),
    "integer": frozenset({"type", "min", "max", "default"}),
    "boolean": frozenset({"type", "default"}),
}
_PROVIDER_KEYS = frozenset({"name", "model", "options"})
_INPUT_KEYS = frozenset({"image", "prompt"})
_STYLE_KEYS = frozenset({"id", "name", "prompt", "assetId"})


# --- errors -------------------------------------------------------------------------------------------


class CatalogError(Exception):
    """Root of the catalog's own errors (each one is also a kit refusal kind, which says how the edge
    answers)."""


class InvalidCatalogEntry(CatalogError, Refused, ValueError, code="invalid_catalog_entry"):
    """A catalog entry that may not be stored, with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field=field)
        self.message = message


class CatalogNotFound(CatalogError, NotFound, LookupError):
    """No live (non-deleted) entry with that id or slug; for public reads, none that is shown."""


class CatalogConflict(CatalogError, Conflict):
    """The change clashes with what is stored: a taken name or slug, a tool type still in use."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


# --- the model the task saga reads ------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderRef:
    name: str
    model: str
    options: Mapping[str, JsonValue]


@dataclass(frozen=True)
class OptionRule:
    """What a user may set one option of a provider to: one of `values` (enum), a whole number in
    `low`–`high` (integer), or true/false (boolean). `default` is what the picker shows first."""

    type: str  # "enum" | "integer" | "boolean"
    values: tuple[str, ...] = ()
    low: int | None = None
    high: int | None = None
    default: str | int | bool | None = None

    def allows(self, value: object) -> bool:
        if self.type == "boolean":
            return isinstance(value, bool)
        if self.type == "integer":
            return (
                isinstance(value, int)
                and not isinstance(value, bool)
                and self.low is not None
                and self.high is not None
                and self.low <= value <= self.high
            )
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        """What it allows, for a refusal."""
        if self.type == "boolean":
            return "true or false"
        if self.type == "integer":
            return f"a whole number from {self.low} to {self.high}"
        return "one of " + ", ".join(self.values)


@dataclass(frozen=True)
class ProviderChoice:
    """A provider the user may choose for a step, with the models (first = default) and options they may
    pick."""

    provider: str
    label: str
    models: tuple[str, ...]
    options: Mapping[str, OptionRule]


@dataclass(frozen=True)
class StepSpec:
    id: str
    name: str
    type: str
    provider: ProviderRef
    cost: int
    timeout_seconds: int
    prompt: str | None
    image_input: str  # "required" | "optional" | "none"
    prompt_input: str  # "required" | "optional" | "none"
    # image-gen steps: the chosen style reference's image goes with the user's (see the module's docstring).
    use_style_image: bool = True
    # The providers a user may choose from per request (none: the step always runs on `provider`).
    choices: tuple[ProviderChoice, ...] = ()

    def choice(self, provider: str) -> ProviderChoice | None:
        return next((c for c in self.choices if c.provider == provider), None)


@dataclass(frozen=True)
class StyleReference:
    id: str
    name: str
    prompt: str
    asset_id: str | None


@dataclass(frozen=True)
class ToolConfig:
    steps: tuple[StepSpec, ...]
    style_references: tuple[StyleReference, ...]
    pipeline: bool

    def step(self, step_id: str) -> StepSpec | None:
        return next((s for s in self.steps if s.id == step_id), None)


@dataclass(frozen=True)
class Tool:
    id: str
    slug: str
    title: str
    is_active: bool
    credits_cost: int
    config: ToolConfig


# --- entries: what an admin writes, checked whole ------------------------------------------------------


@dataclass(frozen=True)
class ToolTypeEntry:
    name: str
    display_name: str
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    sort_order: int = 0
    is_active: bool = True
    translations: JsonObject = dataclasses.field(default_factory=dict)

    def as_fields(self) -> dict[str, object]:
        """The entry as the API's fields, to apply a change to and check again."""
        return {name: getattr(self, name) for name in TOOL_TYPE_FIELDS}


@dataclass(frozen=True)
class ToolEntry:
    slug: str
    title: str
    description: str
    thumbnail_asset_id: str | None
    tool_type_id: str
    config: ToolConfig
    is_active: bool = True
    is_featured: bool = False
    translations: JsonObject = dataclasses.field(default_factory=dict)

    @property
    def credits_cost(self) -> int:
        return credits_cost(self.config)

    def as_fields(self) -> dict[str, object]:
        fields = {name: getattr(self, name) for name in TOOL_FIELDS}
        fields["config"] = config_to_json(self.config)
        return fields


@dataclass(frozen=True)
class BannerEntry:
    title: str
    description: str | None = None
    thumbnail_asset_id: str | None = None
    link: str | None = None
    link_text: str | None = None
    link_target: str = "_self"
    type: str = "main"
    position: int = 0
    badge: str | None = None
    badge_color: str | None = None
    is_active: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    translations: JsonObject = dataclasses.field(default_factory=dict)

    def as_fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in BANNER_FIELDS}


TOOL_TYPE_FIELDS = ("name", "display_name", "description", "icon", "color", "sort_order", "is_active",
                    "translations")  # fmt: skip
TOOL_FIELDS = ("slug", "title", "description", "thumbnail_asset_id", "tool_type_id", "config", "is_active",
               "is_featured", "translations")  # fmt: skip
BANNER_FIELDS = ("title", "description", "thumbnail_asset_id", "link", "link_text", "link_target",
                 "type", "position", "badge", "badge_color", "is_active", "starts_at", "ends_at",
                 "translations")  # fmt: skip


def changed_fields(
    before: ToolTypeEntry | ToolEntry | BannerEntry,
    after: ToolTypeEntry | ToolEntry | BannerEntry,
    asked: Iterable[str],
) -> list[str]:
    """The fields a change asked for whose value it really changes."""
    return sorted(name for name in asked if getattr(before, name) != getattr(after, name))


# --- stored entries, as the store reads them -----------------------------------------------------------


@dataclass(frozen=True)
class ToolTypeRecord:
    id: str
    entry: ToolTypeEntry
    # Live tools of this type (active or not), and the active ones among them.
    tools_count: int
    active_tools_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ToolTypeLabel:
    """The tool type as a tool shows it."""

    id: str
    name: str
    display_name: str
    translations: JsonObject


@dataclass(frozen=True)
class ToolRecord:
    id: str
    entry: ToolEntry
    credits_cost: int
    tool_type: ToolTypeLabel
    created_at: datetime
    updated_at: datetime
    # Set on a tool deleted while tasks referred to it: hidden from users, kept for those tasks' history.
    deleted_at: datetime | None = None
    # The CDN URL of each image the entry names, by asset id (none for an image not published yet).
    image_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Top-level tasks of the tool that started.
    usage_count: int = 0

    def as_tool(self) -> Tool:
        """The tool as the task saga uses it (an inactive one has `is_active` False)."""
        return Tool(
            id=self.id,
            slug=self.entry.slug,
            title=self.entry.title,
            is_active=self.entry.is_active,
            credits_cost=self.credits_cost,
            config=self.entry.config,
        )


@dataclass(frozen=True)
class BannerRecord:
    id: str
    entry: BannerEntry
    created_at: datetime
    updated_at: datetime
    image_urls: Mapping[str, str] = dataclasses.field(default_factory=dict)


# --- images ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogImage:
    """An image an entry names: the asset, and the field that names it (for a refusal)."""

    field: str
    asset_id: str


def images_named(fields: Mapping[str, object], config: ToolConfig | None) -> tuple[CatalogImage, ...]:
    """The images a body (a whole entry, or a change) names: its thumbnail, its config's style references'.
    A thumbnail id that is not a UUID is refused here, before storage is asked about it."""
    thumbnail = _optional_uuid(fields.get("thumbnail_asset_id"), "thumbnail_asset_id")
    images = [CatalogImage("thumbnail_asset_id", thumbnail)] if thumbnail else []
    if config is not None:
        images += [
            CatalogImage(f"config.styleReferences[{index}].assetId", style.asset_id)
            for index, style in enumerate(config.style_references)
            if style.asset_id
        ]
    return tuple(images)


def tool_images(entry: ToolEntry) -> tuple[CatalogImage, ...]:
    return images_named({"thumbnail_asset_id": entry.thumbnail_asset_id}, entry.config)


def banner_images(entry: BannerEntry) -> tuple[CatalogImage, ...]:
    return images_named({"thumbnail_asset_id": entry.thumbnail_asset_id}, None)


def image_urls_of(images: Iterable[CatalogImage], known: Mapping[str, str]) -> dict[str, str]:
    """The URLs of `images` among the `known` ones (stored before, or just published): what an entry keeps,
    so an image it no longer names loses its URL."""
    return {image.asset_id: known[image.asset_id] for image in images if image.asset_id in known}


# --- tool configs -------------------------------------------------------------------------------------


def parse_tool_config(document: object) -> ToolConfig:
    """The config of a tool, checked rule by rule; the first broken rule raises `InvalidCatalogEntry`."""
    where = "config"
    raw = _mapping(document, where)
    _known_keys(raw, _CONFIG_KEYS, where)
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise InvalidCatalogEntry(f"{where}.steps", f"a tool needs 1–{MAX_STEPS} steps")
    if len(steps_raw) > MAX_STEPS:
        raise InvalidCatalogEntry(f"{where}.steps", f"at most {MAX_STEPS} steps")
    steps: list[StepSpec] = []
    for index, step_raw in enumerate(steps_raw):
        step = _parse_step(step_raw, f"{where}.steps[{index}]")
        if any(s.id == step.id for s in steps):
            raise InvalidCatalogEntry(f"{where}.steps[{index}].id", f"the step id {step.id!r} is used twice")
        steps.append(step)
    styles_raw = raw.get("styleReferences", [])
    if styles_raw is None:
        styles_raw = []
    if not isinstance(styles_raw, list):
        raise InvalidCatalogEntry(f"{where}.styleReferences", "must be a list")
    if len(styles_raw) > MAX_STYLE_REFERENCES:
        raise InvalidCatalogEntry(
            f"{where}.styleReferences", f"at most {MAX_STYLE_REFERENCES} style references"
        )
    styles: list[StyleReference] = []
    for index, style_raw in enumerate(styles_raw):
        style = _parse_style(style_raw, f"{where}.styleReferences[{index}]")
        if any(s.id == style.id for s in styles):
            raise InvalidCatalogEntry(
                f"{where}.styleReferences[{index}].id", f"the style reference id {style.id!r} is used twice"
            )
        styles.append(style)
    pipeline = raw.get("pipeline", True)
    if not isinstance(pipeline, bool):
        raise InvalidCatalogEntry(f"{where}.pipeline", "must be true or false")
    return ToolConfig(steps=tuple(steps), style_references=tuple(styles), pipeline=pipeline)


def _parse_step(document: object, where: str) -> StepSpec:
    raw = _mapping(document, where)
    _known_keys(raw, _STEP_KEYS, where)
    step_id = check_slug(raw.get("id"), f"{where}.id")
    name = _text(raw.get("name"), f"{where}.name", NAME_LENGTH)
    step_type = raw.get("type")
    if not isinstance(step_type, str) or step_type not in STEP_TYPES:
        raise InvalidCatalogEntry(f"{where}.type", f"must be one of {', '.join(STEP_TYPES)}")
    provider = _parse_provider(raw.get("provider"), f"{where}.provider")
    cost = _integer(raw.get("cost"), f"{where}.cost", 0, MAX_STEP_COST)
    timeout = raw.get("timeoutSeconds", DEFAULT_TIMEOUT_SECONDS)
    timeout = _integer(timeout, f"{where}.timeoutSeconds", MIN_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS)
    prompt = _optional_text(raw.get("prompt"), f"{where}.prompt", MAX_PROMPT_LENGTH, multiline=True)
    input_raw = _mapping({} if raw.get("input") is None else raw["input"], f"{where}.input")
    _known_keys(input_raw, _INPUT_KEYS, f"{where}.input")
    modes: dict[str, str] = {}
    for key in ("image", "prompt"):
        mode = input_raw.get(key, "optional")
        if not isinstance(mode, str) or mode not in INPUT_MODES:
            raise InvalidCatalogEntry(f"{where}.input.{key}", f"must be one of {', '.join(INPUT_MODES)}")
        modes[key] = mode
    if step_type in IMAGE_ONLY_STEP_TYPES and modes["image"] == "none":
        raise InvalidCatalogEntry(f"{where}.input.image", f"a {step_type} step works on an image")
    use_style_image = raw.get("useStyleImage", True)
    if not isinstance(use_style_image, bool):
        raise InvalidCatalogEntry(f"{where}.useStyleImage", "must be true or false")
    choices = _parse_choices(raw.get("choices"), provider, f"{where}.choices")
    return StepSpec(
        id=step_id,
        name=name,
        type=step_type,
        provider=provider,
        cost=cost,
        timeout_seconds=timeout,
        prompt=prompt or None,
        image_input=modes["image"],
        prompt_input=modes["prompt"],
        use_style_image=use_style_image,
        choices=choices,
    )


def _parse_provider(document: object, where: str) -> ProviderRef:
    raw = _mapping(document, where)
    _known_keys(raw, _PROVIDER_KEYS, where)
    name = raw.get("name")
    if not isinstance(name, str) or not _PROVIDER_NAME.match(name):
        raise InvalidCatalogEntry(
            f"{where}.name", "a provider name: 1–63 lower-case letters, digits, '.', '_', '-'"
        )
    model = "default" if raw.get("model") is None else raw["model"]
    model = _text(model, f"{where}.model", 200)
    options = _mapping({} if raw.get("options") is None else raw["options"], f"{where}.options")
    checked = _check_json_object(options, f"{where}.options")
    if len(json.dumps(checked)) > MAX_OPTIONS_BYTES:
        raise InvalidCatalogEntry(f"{where}.options", f"at most {MAX_OPTIONS_BYTES} bytes of JSON")
    return ProviderRef(name=name, model=model, options=MappingProxyType(checked))


def _parse_choices(document: object, default: ProviderRef, where: str) -> tuple[ProviderChoice, ...]:
    """A step's `choices`: providers named once each, the step's own among them (its model first)."""
    if document is None:
        return ()
    if not isinstance(document, list):
        raise InvalidCatalogEntry(where, "must be a list")
    if len(document) > MAX_CHOICES:
        raise InvalidCatalogEntry(where, f"at most {MAX_CHOICES} choices")
    choices: list[ProviderChoice] = []
    for index, raw in enumerate(document):
        choice = _parse_choice(raw, f"{where}[{index}]")
        if any(c.provider == choice.provider for c in choices):
            raise InvalidCatalogEntry(
                f"{where}[{index}].provider", f"the provider {choice.provider!r} is offered twice"
            )
        choices.append(choice)
    if not choices:
        return ()
    own = next((c for c in choices if c.provider == default.name), None)
    if own is None:
        raise InvalidCatalogEntry(where, f"must offer the step's own provider {default.name!r} (the default)")
    if own.models and own.models[0] != default.model:
        index = choices.index(own)
        raise InvalidCatalogEntry(
            f"{where}[{index}].models",
            f"must start with the step's own model {default.model!r} (the default)",
        )
    return tuple(choices)


def _parse_choice(document: object, where: str) -> ProviderChoice:
    raw = _mapping(document, where)
    _known_keys(raw, _CHOICE_KEYS, where)
    name = raw.get("provider")
    if not isinstance(name, str) or not _PROVIDER_NAME.match(name):
        raise InvalidCatalogEntry(
            f"{where}.provider", "a provider name: 1–63 lower-case letters, digits, '.', '_', '-'"
        )
    label = _optional_text(raw.get("label"), f"{where}.label", NAME_LENGTH) or name
    models_raw = [] if raw.get("models") is None else raw["models"]
    if not isinstance(models_raw, list) or len(models_raw) > MAX_CHOICE_MODELS:
        raise InvalidCatalogEntry(f"{where}.models", f"a list of at most {MAX_CHOICE_MODELS} models")
    models = tuple(_text(m, f"{where}.models[{i}]", 200) for i, m in enumerate(models_raw))
    if len(set(models)) != len(models):
        raise InvalidCatalogEntry(f"{where}.models", "each model once")
    options_raw = _mapping({} if raw.get("options") is None else raw["options"], f"{where}.options")
    if len(options_raw) > MAX_USER_OPTIONS:
        raise InvalidCatalogEntry(f"{where}.options", f"at most {MAX_USER_OPTIONS} options")
    options: dict[str, OptionRule] = {}
    for option, rule in options_raw.items():
        field = f"{where}.options.{_label(option)}"
        if not _OPTION_NAME.match(option):
            raise InvalidCatalogEntry(field, "an option name: a letter, then letters, digits or '_'")
        options[option] = _parse_option_rule(rule, field)
    return ProviderChoice(provider=name, label=label, models=models, options=MappingProxyType(options))


def _parse_option_rule(document: object, where: str) -> OptionRule:
    # A null field is an absent one (the admin API's model sends every field, unset ones as null).
    raw = {key: value for key, value in _mapping(document, where).items() if value is not None}
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in OPTION_TYPES:
        raise InvalidCatalogEntry(f"{where}.type", f"must be one of {', '.join(OPTION_TYPES)}")
    _known_keys(raw, _OPTION_RULE_KEYS[kind], where)
    if kind == "integer":
        low = _integer(raw.get("min"), f"{where}.min", -(2**31), 2**31 - 1)
        high = _integer(raw.get("max"), f"{where}.max", -(2**31), 2**31 - 1)
        if high < low:
            raise InvalidCatalogEntry(f"{where}.max", "must not be below min")
        rule = OptionRule(kind, low=low, high=high)
    elif kind == "enum":
        values_raw = raw.get("values")
        if not isinstance(values_raw, list) or not 1 <= len(values_raw) <= MAX_ENUM_VALUES:
            raise InvalidCatalogEntry(f"{where}.values", f"a list of 1–{MAX_ENUM_VALUES} values")
        values = tuple(_text(v, f"{where}.values[{i}]", 100) for i, v in enumerate(values_raw))
        if len(set(values)) != len(values):
            raise InvalidCatalogEntry(f"{where}.values", "each value once")
        rule = OptionRule(kind, values=values)
    else:
        rule = OptionRule(kind)
    default = raw.get("default")
    if default is not None and not rule.allows(default):
        raise InvalidCatalogEntry(f"{where}.default", f"must be {rule.describe()}")
    return dataclasses.replace(rule, default=cast(str | int | bool | None, default))


def _choice_document(choice: ProviderChoice) -> JsonObject:
    return {
        "provider": choice.provider,
        "label": choice.label,
        "models": list(choice.models),
        "options": {name: _rule_document(rule) for name, rule in choice.options.items()},
    }


def _rule_document(rule: OptionRule) -> JsonObject:
    document: JsonObject = {"type": rule.type}
    if rule.type == "enum":
        document["values"] = list(rule.values)
    if rule.type == "integer":
        document["min"], document["max"] = rule.low, rule.high
    if rule.default is not None:
        document["default"] = rule.default
    return document


def _parse_style(document: object, where: str) -> StyleReference:
    raw = _mapping(document, where)
    _known_keys(raw, _STYLE_KEYS, where)
    return StyleReference(
        id=check_slug(raw.get("id"), f"{where}.id"),
        name=_text(raw.get("name"), f"{where}.name", NAME_LENGTH),
        prompt=_text(raw.get("prompt"), f"{where}.prompt", MAX_PROMPT_LENGTH, multiline=True),
        asset_id=_optional_uuid(raw.get("assetId"), f"{where}.assetId"),
    )


def config_to_json(config: ToolConfig) -> JsonObject:
    """The canonical stored form: every field present, defaults filled in."""
    return {
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "type": s.type,
                "provider": {
                    "name": s.provider.name,
                    "model": s.provider.model,
                    "options": dict(s.provider.options),
                },
                "cost": s.cost,
                "timeoutSeconds": s.timeout_seconds,
                "prompt": s.prompt,
                "input": {"image": s.image_input, "prompt": s.prompt_input},
                "useStyleImage": s.use_style_image,
                "choices": [_choice_document(c) for c in s.choices],
            }
            for s in config.steps
        ],
        "styleReferences": [
            {"id": r.id, "name": r.name, "prompt": r.prompt, "assetId": r.asset_id}
            for r in config.style_references
        ],
        "pipeline": config.pipeline,
    }


def public_config(config: ToolConfig, image_urls: Mapping[str, str] | None = None) -> JsonObject:
    """What users see of a config: no timeouts, default prompts or the step's provider options; of the
    providers and models only the `choices` a step offers (its default marked), each style reference's image
    as its CDN URL (`image_url`, from `image_urls`) beside its asset id."""
    urls = image_urls or {}
    return {
        "steps": [
            {
                "id": s.id,
                "name": s.name,
                "type": s.type,
                "cost": s.cost,
                "input": {"image": s.image_input, "prompt": s.prompt_input},
                "choices": [
                    {**_choice_document(c), "default": c.provider == s.provider.name} for c in s.choices
                ],
            }
            for s in config.steps
        ],
        "styleReferences": [
            {
                "id": r.id,
                "name": r.name,
                "prompt": r.prompt,
                "assetId": r.asset_id,
                "image_url": urls.get(r.asset_id) if r.asset_id else None,
            }
            for r in config.style_references
        ],
        "pipeline": config.pipeline,
    }


def credits_cost(config: ToolConfig) -> int:
    """A tool's price: what running every step costs."""
    return sum(step.cost for step in config.steps)


def provider_names(config: ToolConfig) -> list[str]:
    """The providers a config names, each once, in step order."""
    return list(dict.fromkeys(step.provider.name for step in config.steps))


def choice_fields(config: ToolConfig) -> list[tuple[str, str]]:
    """(field, provider) of every provider a step's `choices` name, for the registry check on save."""
    return [
        (f"config.steps[{index}].choices[{number}].provider", choice.provider)
        for index, step in enumerate(config.steps)
        for number, choice in enumerate(step.choices)
    ]


# --- entries ------------------------------------------------------------------------------------------


def check_slug(value: object, field: str = "slug") -> str:
    if not isinstance(value, str) or not _SLUG.match(value):
        raise InvalidCatalogEntry(
            field, "use 1–63 lower-case letters, digits or '-', starting with a letter or digit"
        )
    return value


def check_tool_type(entry: Mapping[str, object]) -> ToolTypeEntry:
    """A whole tool type (after a change is applied to the stored one), normalised."""
    return ToolTypeEntry(
        name=check_slug(entry.get("name"), "name"),
        display_name=_text(entry.get("display_name"), "display_name", NAME_LENGTH),
        description=_optional_text(
            entry.get("description"), "description", DESCRIPTION_LENGTH, multiline=True
        ),
        icon=_optional_text(entry.get("icon"), "icon", 64),
        color=_optional_color(entry.get("color"), "color"),
        sort_order=_integer(entry.get("sort_order", 0), "sort_order", -MAX_SORT, MAX_SORT),
        is_active=_boolean(entry.get("is_active", True), "is_active"),
        translations=check_translations(entry.get("translations"), "tool_type"),
    )


def check_tool(entry: Mapping[str, object]) -> ToolEntry:
    """A whole tool, normalised, with its parsed config (whose providers the caller still has to check)."""
    slug = check_slug(entry.get("slug"), "slug")
    title = _text(entry.get("title"), "title", TITLE_LENGTH)
    description = _optional_text(entry.get("description"), "description", DESCRIPTION_LENGTH, multiline=True)
    thumbnail_asset_id = _optional_uuid(entry.get("thumbnail_asset_id"), "thumbnail_asset_id")
    tool_type_id = _uuid(entry.get("tool_type_id"), "tool_type_id")
    is_active = _boolean(entry.get("is_active", True), "is_active")
    is_featured = _boolean(entry.get("is_featured", False), "is_featured")
    translations = check_translations(entry.get("translations"), "tool")
    raw_config = entry.get("config")
    if raw_config is None:
        raise InvalidCatalogEntry("config", "a tool needs a config with at least one step")
    return ToolEntry(
        slug=slug,
        title=title,
        description=description or "",
        thumbnail_asset_id=thumbnail_asset_id,
        tool_type_id=tool_type_id,
        config=parse_tool_config(raw_config),
        is_active=is_active,
        is_featured=is_featured,
        translations=translations,
    )


def check_banner(entry: Mapping[str, object]) -> BannerEntry:
    """A whole banner, normalised."""
    link_target = entry.get("link_target", "_self")
    if not isinstance(link_target, str) or link_target not in LINK_TARGETS:
        raise InvalidCatalogEntry("link_target", f"must be one of {', '.join(LINK_TARGETS)}")
    banner_type = entry.get("type", "main")
    if not isinstance(banner_type, str) or banner_type not in BANNER_TYPES:
        raise InvalidCatalogEntry("type", f"must be one of {', '.join(BANNER_TYPES)}")
    starts_at = _optional_time(entry.get("starts_at"), "starts_at")
    ends_at = _optional_time(entry.get("ends_at"), "ends_at")
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise InvalidCatalogEntry("ends_at", "must be after starts_at")
    return BannerEntry(
        title=_text(entry.get("title"), "title", TITLE_LENGTH),
        description=_optional_text(
            entry.get("description"), "description", DESCRIPTION_LENGTH, multiline=True
        ),
        thumbnail_asset_id=_optional_uuid(entry.get("thumbnail_asset_id"), "thumbnail_asset_id"),
        link=check_link(entry.get("link")),
        link_text=_optional_text(entry.get("link_text"), "link_text", SHORT_LENGTH),
        link_target=link_target,
        type=banner_type,
        position=_integer(entry.get("position", 0), "position", -MAX_SORT, MAX_SORT),
        badge=_optional_text(entry.get("badge"), "badge", 40),
        badge_color=_optional_color(entry.get("badge_color"), "badge_color"),
        is_active=_boolean(entry.get("is_active", True), "is_active"),
        starts_at=starts_at,
        ends_at=ends_at,
        translations=check_translations(entry.get("translations"), "banner"),
    )


def check_link(link: object, field: str = "link") -> str | None:
    """An `https://…` or `http://…` URL, or a path of this site (`/tools/figme`); never `javascript:`,
    `data:`, a protocol-relative `//host` or a backslash a browser would read as a slash."""
    if link is None or link == "":
        return None
    if not isinstance(link, str) or len(link) > LINK_LENGTH:
        raise InvalidCatalogEntry(field, f"a URL or path of at most {LINK_LENGTH} characters")
    if _CONTROL.search(link) or "\\" in link or any(c.isspace() for c in link):
        raise InvalidCatalogEntry(field, "no spaces, backslashes or control characters")
    if link.startswith("/"):
        if link.startswith("//"):
            raise InvalidCatalogEntry(field, "a path starts with a single '/'")
        return link
    if _HTTP_URL.match(link):
        return link
    raise InvalidCatalogEntry(field, "must be an https:// or http:// URL or a path starting with '/'")


def banner_is_live(
    *, is_active: bool, starts_at: datetime | None, ends_at: datetime | None, now: datetime
) -> bool:
    """Shown to users: switched on, and `starts_at <= now < ends_at` (a missing bound is open)."""
    return is_active and (starts_at is None or starts_at <= now) and (ends_at is None or now < ends_at)


# --- translations and localisation ------------------------------------------------------------------

_TRANSLATED_FIELDS: dict[str, dict[str, int]] = {
    "tool_type": {"display_name": NAME_LENGTH, "description": DESCRIPTION_LENGTH},
    "tool": {"title": TITLE_LENGTH, "description": DESCRIPTION_LENGTH},
    "banner": {
        "title": TITLE_LENGTH,
        "description": DESCRIPTION_LENGTH,
        "link_text": SHORT_LENGTH,
        "badge": 40,
    },
}
# Tools also translate the names of their steps and style references: {"steps": {"<stepId>": {"name"}}}.
_TOOL_NESTED = ("steps", "styleReferences")


def check_locale(locale: object, field: str = "locale") -> str:
    if not isinstance(locale, str) or not _LOCALE.match(locale):
        raise InvalidCatalogEntry(field, "a locale such as 'de' or 'de-AT'")
    return locale


def check_translations(document: object, kind: str) -> JsonObject:
    """`{"<locale>": {field: text}}` for the fields of `kind` ("tool_type", "tool", "banner")."""
    if document is None:
        return {}
    raw = _mapping(document, "translations")
    if len(raw) > MAX_LOCALES:
        raise InvalidCatalogEntry("translations", f"at most {MAX_LOCALES} locales")
    fields = _TRANSLATED_FIELDS[kind]
    result: JsonObject = {}
    for locale, locale_texts in raw.items():
        where = f"translations.{_label(locale)}"
        check_locale(locale, where)
        texts = _mapping(locale_texts, where)
        allowed = set(fields) | (set(_TOOL_NESTED) if kind == "tool" else set())
        _known_keys(texts, frozenset(allowed), where)
        checked: JsonObject = {}
        for key, value in texts.items():
            if key in _TOOL_NESTED:
                if value is not None:
                    checked[key] = _check_named(value, f"{where}.{key}")
            elif value is not None:
                checked[key] = _text(
                    value, f"{where}.{key}", fields[key], multiline=key == "description", empty=True
                )
        result[locale] = checked
    return result


def _check_named(document: object, where: str) -> JsonObject:
    """`{"<id>": {"name": text}}`: translated names of steps or style references."""
    raw = _mapping(document, where)
    if len(raw) > max(MAX_STEPS, MAX_STYLE_REFERENCES):
        raise InvalidCatalogEntry(where, "too many entries")
    result: JsonObject = {}
    for item_id, item_names in raw.items():
        item = f"{where}.{_label(item_id)}"
        check_slug(item_id, item)
        names = _mapping(item_names, item)
        _known_keys(names, frozenset({"name"}), item)
        result[item_id] = {"name": _text(names.get("name"), f"{item}.name", NAME_LENGTH, empty=True)}
    return result


def locale_chain(locale: str | None) -> tuple[str, ...]:
    """Where to look for a locale's texts, most specific first: `de-AT` → (`de-AT`, `de`). The English base
    columns come after the chain; no locale means the base alone."""
    if not locale:
        return ()
    check_locale(locale)
    language = locale.split("-", 1)[0]
    return (locale, language) if language != locale else (locale,)


def _translated(translations: Mapping[str, JsonValue], chain: Sequence[str], *path: str) -> str | None:
    for locale in chain:
        node = translations.get(locale)
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str) and node.strip():
            return node
    return None


def localize(
    base: JsonObject, translations: Mapping[str, JsonValue] | None, locale: str | None, fields: Sequence[str]
) -> JsonObject:
    """`base` with each of `fields` taken from the first locale of the chain that has it (non-empty), else
    kept as it is (English)."""
    result = dict(base)
    chain = locale_chain(locale)
    for field in fields:
        text = _translated(translations or {}, chain, field)
        if text is not None:
            result[field] = text
    return result


def localize_config(
    config: JsonObject, translations: Mapping[str, JsonValue] | None, locale: str | None
) -> JsonObject:
    """A (public) config with its step and style-reference names in the locale, falling back per name."""
    chain = locale_chain(locale)
    texts = translations or {}

    def named(items: JsonValue, group: str) -> list[JsonValue]:
        return [
            {**item, "name": _translated(texts, chain, group, str(item["id"]), "name") or item["name"]}
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]

    return {
        **config,
        "steps": named(config.get("steps", []), "steps"),
        "styleReferences": named(config.get("styleReferences", []), "styleReferences"),
    }


# --- small checks -------------------------------------------------------------------------------------


def _mapping(value: object, field: str) -> Mapping[str, object]:
    """`value` if it is a JSON object (a mapping with text keys)."""
    if not isinstance(value, Mapping):
        raise InvalidCatalogEntry(field, "must be an object")
    if not all(isinstance(key, str) for key in value):
        raise InvalidCatalogEntry(field, "keys must be strings")
    return value


def _known_keys(value: Mapping[str, object], known: frozenset[str], field: str) -> None:
    unknown = sorted(set(value) - known)
    if unknown:
        raise InvalidCatalogEntry(
            f"{field}.{_label(unknown[0])}", f"unknown field; known: {', '.join(sorted(known))}"
        )


def _label(key: object) -> str:
    """A key a caller sent, fit to name a field in an error: short and printable."""
    text = str(key)
    return text if len(text) <= 40 and text.isprintable() else repr(text[:40])


def _storable(value: str, field: str) -> None:
    # Postgres text and jsonb refuse NUL, and lone surrogates cannot be encoded as UTF-8.
    if "\x00" in value:
        raise InvalidCatalogEntry(field, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCatalogEntry(field, "must be valid Unicode text") from None


def _text(value: object, field: str, max_length: int, *, multiline: bool = False, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidCatalogEntry(field, "must be text")
    _storable(value, field)
    stripped = value.strip()
    if not stripped and not empty:
        raise InvalidCatalogEntry(field, "must not be empty")
    if len(stripped) > max_length:
        raise InvalidCatalogEntry(field, f"at most {max_length} characters")
    # Line breaks and tabs are fine in descriptions and prompts; no other control character anywhere.
    checked = stripped.replace("\n", "").replace("\r", "").replace("\t", "") if multiline else stripped
    if _CONTROL.search(checked):
        raise InvalidCatalogEntry(field, "must not contain control characters")
    return stripped


def _optional_text(value: object, field: str, max_length: int, *, multiline: bool = False) -> str | None:
    if value is None:
        return None
    text = _text(value, field, max_length, multiline=multiline, empty=True)
    return text or None


def _optional_color(value: object, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _COLOR.match(value):
        raise InvalidCatalogEntry(field, "a hex colour (#1e90ff) or a colour token (primary, red-500)")
    return value


def _integer(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCatalogEntry(field, "must be a whole number")
    if not low <= value <= high:
        raise InvalidCatalogEntry(field, f"must be between {low} and {high}")
    return value


def _boolean(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidCatalogEntry(field, "must be true or false")
    return value


def _uuid(value: object, field: str) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidCatalogEntry(field, "must be a UUID")


def _optional_uuid(value: object, field: str) -> str | None:
    return None if value is None else _uuid(value, field)


def _optional_time(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidCatalogEntry(field, "an ISO 8601 time with its offset") from None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidCatalogEntry(field, "an ISO 8601 time with its offset")
    return value


def _check_json(value: object, field: str, depth: int = 0) -> JsonValue:
    """Plain JSON that Postgres jsonb stores as given (finite numbers, storable text, bounded depth), as
    plain dicts and lists."""
    if depth > MAX_OPTIONS_DEPTH:
        raise InvalidCatalogEntry(field, f"nested at most {MAX_OPTIONS_DEPTH} levels deep")
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidCatalogEntry(field, "numbers must be finite")
        return value
    if isinstance(value, str):
        _storable(value, field)
        return value
    if isinstance(value, Mapping):
        return _check_json_object(value, field, depth)
    if isinstance(value, list | tuple):
        return [_check_json(item, f"{field}[{index}]", depth + 1) for index, item in enumerate(value)]
    raise InvalidCatalogEntry(field, "must be plain JSON")


def _check_json_object(value: Mapping[object, object], field: str, depth: int = 0) -> JsonObject:
    checked: JsonObject = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidCatalogEntry(field, "keys must be strings")
        _storable(key, field)
        checked[key] = _check_json(item, f"{field}.{_label(key)}", depth + 1)
    return checked
