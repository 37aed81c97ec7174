"""`/api/tool-types`, `/api/tools`, `/api/banners` (public) and `/api/admin/{tool-types,tools,banners}`
(admins): the models of the tasks service's catalog, as the public sees it.

Public answers never carry a step's provider, model, options or default prompt: the public reply models
(`ToolDetail`, `PublicStep`…) have no such fields, so even a service answer that held them would lose them
at the gateway. Texts come in `?locale=` (`de`, `de-AT`; a regional locale falls back to its language, then
to English), field by field. Images an admin gave by asset id (a tool's or banner's thumbnail, a style
reference's image) are published by storage when the entry is saved; views show their CDN URLs beside the
ids (`thumbnail_url`, `image_url`; null where there is no image, or none published yet).

Request models and the tasks route they are the body (or query) of — they check every field (slugs,
locales, lengths), and the service reads its input with them too, but for a tool's `config`, which it takes
as a plain object for its domain to parse (a refusal there names the field, `config.steps[0].type`):

    ToolTypeQuery / ToolListQuery / ToolDetailQuery / BannerListQuery
                                  GET /v1/tool-types, /v1/tools, /v1/tools/{slug}, /v1/banners (query)
    AdminToolTypeQuery / AdminToolQuery / AdminBannerQuery
                                  GET /v1/admin/tool-types, /v1/admin/tools, /v1/admin/banners (query)
    ToolTypeCreate / ToolCreate / BannerCreate
                                  POST /v1/admin/tool-types, /v1/admin/tools, /v1/admin/banners
    ToolTypeUpdate / ToolUpdate / BannerUpdate
                                  PATCH /v1/admin/…/{id} (only the fields sent: `exclude_unset`)
    (no body)                     DELETE /v1/admin/tool-types/{id} (409 `tool_type_in_use` while it has
                                  tools), DELETE /v1/admin/tools/{id} (a tool tasks ran is kept, hidden:
                                  `deleted_at`), DELETE /v1/admin/banners/{id} → 204
    ActiveToolsCount              GET /v1/admin/tool-types/{id}/active-tools-count (the answer)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from funmagic_contracts.api.base import IsoDatetime, Reply, Request

__all__ = [
    "ActiveToolsCount",
    "AdminBannerPage",
    "AdminBannerQuery",
    "AdminBannerView",
    "AdminStep",
    "AdminToolConfig",
    "AdminToolPage",
    "AdminToolQuery",
    "AdminToolTypePage",
    "AdminToolTypeQuery",
    "AdminToolTypeView",
    "AdminToolView",
    "BannerCreate",
    "BannerListQuery",
    "BannerPage",
    "BannerTranslation",
    "BannerUpdate",
    "BannerView",
    "NameTranslation",
    "OptionRuleConfig",
    "OptionRuleView",
    "ProviderChoice",
    "ProviderView",
    "PublicStep",
    "PublicStyleReference",
    "PublicToolConfig",
    "StepChoiceConfig",
    "StepChoiceView",
    "StepConfig",
    "StepInputModes",
    "StepInputView",
    "StyleReferenceConfig",
    "ToolConfigBody",
    "ToolCreate",
    "ToolDetail",
    "ToolDetailQuery",
    "ToolListQuery",
    "ToolPage",
    "ToolSummary",
    "ToolTranslation",
    "ToolTypeCreate",
    "ToolTypePage",
    "ToolTypeQuery",
    "ToolTypeRef",
    "ToolTypeTranslation",
    "ToolTypeUpdate",
    "ToolTypeView",
    "ToolUpdate",
]

SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
LOCALE = r"^[a-z]{2}(-[A-Z]{2})?$"
UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
SEARCH = r"^[^\x00-\x1f\x7f]*$"
# A hex colour or a colour token; empty clears it (the catalog's `_optional_color`).
COLOR = r"^(#[0-9a-fA-F]{3,8}|[a-z][a-z0-9-]{0,31})?$"

# The lengths say what the patterns allow (the document shows them; a query's request line stays short).
Slug = Annotated[str, Field(max_length=63, pattern=SLUG, examples=["figme"])]
Locale = Annotated[str, Field(max_length=5, pattern=LOCALE, examples=["de"])]
AssetId = Annotated[str, Field(max_length=36, pattern=UUID, description="An asset of storage (its id).")]
InputMode = Literal["required", "optional", "none"]
StepType = Literal["image-gen", "remove-bg", "3d-gen", "point-cloud"]
LOCALE_DOC = "`de`, `de-AT`…: texts in that locale, falling back to the language, then English, per field."


# --- tool configs ---------------------------------------------------------------------------------------


class ProviderChoice(Request):
    name: str = Field(min_length=1, max_length=63, examples=["local"], description="A provider's name.")
    model: str = Field("default", min_length=1, max_length=200, examples=["gpt-image-1"])
    options: dict[str, Any] = Field(default_factory=dict, description="Passed to the provider as they are.")


# What a user may set one option to: `enum` (one of `values`), `integer` (`min`–`max`) or `boolean`.
class OptionRuleConfig(Request):
    type: Literal["enum", "integer", "boolean"]
    values: list[str] | None = Field(None, max_length=32, description="enum: the values allowed.")
    min: int | None = Field(None, description="integer: the lowest value allowed.")
    max: int | None = Field(None, description="integer: the highest value allowed.")
    default: bool | int | str | None = Field(None, description="What the picker shows first.")


# A provider the user may choose for the step per request.
class StepChoiceConfig(Request):
    provider: str = Field(min_length=1, max_length=63, description="A provider's name (of the registry).")
    label: str | None = Field(None, max_length=120, description="Shown to users (default: the name).")
    models: list[str] = Field(
        default_factory=list, max_length=16, description="The models users may pick (the first: the default)."
    )
    options: dict[str, OptionRuleConfig] = Field(
        default_factory=dict, description="The options users may set, by the provider's option name."
    )


class StepInputModes(Request):
    image: InputMode = Field("optional", description="Whether the step takes an image.")
    prompt: InputMode = Field("optional", description="Whether the step takes a prompt.")


class StepConfig(Request):
    id: Slug
    name: str = Field(min_length=1, max_length=120)
    type: StepType
    provider: ProviderChoice
    cost: int = Field(ge=0, le=1_000_000, description="Credits; the tool's price is the sum of its steps.")
    timeoutSeconds: int = Field(600, ge=10, le=3600)
    prompt: str | None = Field(None, max_length=4000, description="The default prompt.")
    input: StepInputModes = Field(
        default_factory=StepInputModes,
        description="A step after the first may take the previous step's output as its image.",
    )
    useStyleImage: bool = Field(
        True,
        description="image-gen steps: send the chosen style reference's image with the user's image (false:"
        " the user's image alone; the style's prompt is used either way).",
    )
    choices: list[StepChoiceConfig] = Field(
        default_factory=list,
        max_length=8,
        description="Providers users may choose per request; the step's own `provider` must be one (its "
        "`model` first when the choice lists models) and is the default.",
    )


class StyleReferenceConfig(Request):
    id: Slug
    name: str = Field(min_length=1, max_length=120)
    prompt: str = Field(min_length=1, max_length=4000)
    assetId: AssetId | None = None


class ToolConfigBody(Request):
    steps: list[StepConfig] = Field(min_length=1, max_length=8)
    styleReferences: list[StyleReferenceConfig] = Field(default_factory=list, max_length=16)
    pipeline: bool = Field(True, description="A task without `stepId` runs every step in order.")


# --- translations ---------------------------------------------------------------------------------------


class NameTranslation(Request):
    name: str = Field(max_length=120)


class ToolTypeTranslation(Request):
    display_name: str | None = Field(None, max_length=120)
    description: str | None = Field(None, max_length=2000)


class ToolTranslation(Request):
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    steps: dict[Slug, NameTranslation] | None = Field(None, description="Step names by step id.")
    styleReferences: dict[Slug, NameTranslation] | None = Field(None, description="By style reference id.")


class BannerTranslation(Request):
    title: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=2000)
    link_text: str | None = Field(None, max_length=80)
    badge: str | None = Field(None, max_length=40)


# --- requests -------------------------------------------------------------------------------------------


class ToolTypeCreate(Request):
    name: Slug = Field(description="Unique among live tool types; the `type` filter of /api/tools.")
    display_name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(None, max_length=2000)
    icon: str | None = Field(None, max_length=64)
    color: str | None = Field(None, max_length=32, pattern=COLOR, examples=["#6366f1"])
    sort_order: int = Field(0, ge=-1_000_000, le=1_000_000)
    is_active: bool = True
    translations: dict[Locale, ToolTypeTranslation] = Field(default_factory=dict)


class ToolTypeUpdate(Request):
    name: Slug | None = None
    display_name: str | None = Field(None, min_length=1, max_length=120)
    description: str | None = Field(None, max_length=2000)
    icon: str | None = Field(None, max_length=64)
    color: str | None = Field(None, max_length=32, pattern=COLOR)
    sort_order: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    is_active: bool | None = None
    translations: dict[Locale, ToolTypeTranslation] | None = None


class ToolCreate(Request):
    slug: Slug = Field(description="Unique among live tools.")
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    thumbnail_asset_id: AssetId | None = None
    tool_type_id: str = Field(pattern=UUID)
    config: ToolConfigBody
    is_active: bool = True
    is_featured: bool = False
    translations: dict[Locale, ToolTranslation] = Field(default_factory=dict)


class ToolUpdate(Request):
    slug: Slug | None = None
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    thumbnail_asset_id: AssetId | None = None
    tool_type_id: str | None = Field(None, pattern=UUID)
    config: ToolConfigBody | None = None
    is_active: bool | None = None
    is_featured: bool | None = None
    translations: dict[Locale, ToolTranslation] | None = None


class BannerCreate(Request):
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    thumbnail_asset_id: AssetId | None = None
    link: str | None = Field(
        None, max_length=2048, description="`https://…`, `http://…` or a path of the site (`/tools/figme`)."
    )
    link_text: str | None = Field(None, max_length=80)
    link_target: Literal["_self", "_blank"] = "_self"
    type: Literal["main", "side"] = "main"
    position: int = Field(0, ge=-1_000_000, le=1_000_000)
    badge: str | None = Field(None, max_length=40)
    badge_color: str | None = Field(None, max_length=32, pattern=COLOR)
    is_active: bool = True
    starts_at: IsoDatetime | None = Field(None, description="Shown from this moment (none: at once).")
    ends_at: IsoDatetime | None = Field(None, description="Shown until just before this moment.")
    translations: dict[Locale, BannerTranslation] = Field(default_factory=dict)


class BannerUpdate(Request):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    thumbnail_asset_id: AssetId | None = None
    link: str | None = Field(None, max_length=2048)
    link_text: str | None = Field(None, max_length=80)
    link_target: Literal["_self", "_blank"] | None = None
    type: Literal["main", "side"] | None = None
    position: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    badge: str | None = Field(None, max_length=40)
    badge_color: str | None = Field(None, max_length=32, pattern=COLOR)
    is_active: bool | None = None
    starts_at: IsoDatetime | None = None
    ends_at: IsoDatetime | None = None
    translations: dict[Locale, BannerTranslation] | None = None


class _PageQuery(Request):
    cursor: str | None = Field(None, max_length=300, description="`next_cursor` of the previous page.")


class ToolTypeQuery(_PageQuery):
    locale: Locale | None = Field(None, description=LOCALE_DOC)
    limit: int = Field(100, ge=1, le=200)


class ToolListQuery(_PageQuery):
    type: Slug | None = Field(None, description="A tool type's `name`.")
    q: str | None = Field(None, max_length=100, pattern=SEARCH, description="Part of a title or description.")
    featured: bool | None = None
    locale: Locale | None = Field(None, description=LOCALE_DOC)
    limit: int = Field(24, ge=1, le=100)


class ToolDetailQuery(Request):
    locale: Locale | None = Field(None, description=LOCALE_DOC)


class BannerListQuery(_PageQuery):
    type: Literal["main", "side"] | None = None
    locale: Locale | None = Field(None, description=LOCALE_DOC)
    limit: int = Field(20, ge=1, le=100)


class AdminToolTypeQuery(_PageQuery):
    active: bool | None = None
    limit: int = Field(100, ge=1, le=200)


class AdminToolQuery(_PageQuery):
    type: Slug | None = None
    q: str | None = Field(None, max_length=100, pattern=SEARCH)
    active: bool | None = None
    featured: bool | None = None
    deleted: bool | None = Field(
        None, description="Deleted tools (kept as tasks ran them) only, or live ones only; both if unset."
    )
    limit: int = Field(50, ge=1, le=100)


class AdminBannerQuery(_PageQuery):
    type: Literal["main", "side"] | None = None
    active: bool | None = None
    limit: int = Field(50, ge=1, le=100)


# --- replies --------------------------------------------------------------------------------------------


class ToolTypeView(Reply):
    id: str
    name: str
    display_name: str
    description: str | None = None
    icon: str | None = None
    color: str | None = None
    sort_order: int


class ToolTypePage(Reply):
    items: list[ToolTypeView]
    next_cursor: str | None = None


class AdminToolTypeView(ToolTypeView):
    is_active: bool
    translations: dict[str, Any]
    tools_count: int = Field(description="Live tools of this type (a type with tools cannot be deleted).")
    active_tools_count: int
    created_at: datetime
    updated_at: datetime


class ActiveToolsCount(Reply):
    count: int = Field(description="Active, live tools of the tool type.")


class AdminToolTypePage(Reply):
    items: list[AdminToolTypeView]
    next_cursor: str | None = None


class ToolTypeRef(Reply):
    id: str
    name: str
    display_name: str


class StepInputView(Reply):
    image: str
    prompt: str


class ProviderView(Reply):
    name: str
    model: str
    options: dict[str, Any]


class OptionRuleView(Reply):
    type: str = Field(description="`enum`, `integer` or `boolean`.")
    values: list[str] | None = None
    min: int | None = None
    max: int | None = None
    default: bool | int | str | None = None


class StepChoiceView(Reply):
    provider: str
    label: str
    models: list[str] = Field(description="The first is the default.")
    options: dict[str, OptionRuleView]
    default: bool | None = Field(None, description="The step's own provider (what runs when none is chosen).")


class PublicStep(Reply):
    id: str
    name: str
    type: str
    cost: int
    input: StepInputView
    choices: list[StepChoiceView] = Field(
        default_factory=list, description="Providers I may choose for this step (`input.provider`)."
    )


class PublicStyleReference(Reply):
    id: str
    name: str
    prompt: str
    assetId: str | None = None
    image_url: str | None = Field(None, description="The CDN URL of the image `assetId` names.")


class PublicToolConfig(Reply):
    steps: list[PublicStep]
    styleReferences: list[PublicStyleReference]
    pipeline: bool


class ToolSummary(Reply):
    id: str
    slug: str
    title: str
    description: str
    thumbnail_asset_id: str | None = None
    thumbnail_url: str | None = Field(None, description="The CDN URL of the thumbnail.")
    credits_cost: int = Field(description="Credits for running every step.")
    is_featured: bool
    tool_type: ToolTypeRef


class ToolPage(Reply):
    items: list[ToolSummary]
    next_cursor: str | None = None


class ToolDetail(ToolSummary):
    config: PublicToolConfig


class AdminStep(Reply):
    id: str
    name: str
    type: str
    provider: ProviderView
    cost: int
    timeoutSeconds: int
    prompt: str | None = None
    input: StepInputView
    useStyleImage: bool = True
    choices: list[StepChoiceView] = Field(default_factory=list)


class AdminToolConfig(Reply):
    steps: list[AdminStep]
    styleReferences: list[PublicStyleReference]
    pipeline: bool


class AdminToolView(Reply):
    id: str
    slug: str
    title: str
    description: str
    thumbnail_asset_id: str | None = None
    thumbnail_url: str | None = None
    tool_type_id: str
    tool_type: ToolTypeRef
    config: AdminToolConfig
    credits_cost: int = Field(description="Computed: the sum of the steps' costs.")
    is_active: bool
    is_featured: bool
    translations: dict[str, Any]
    usage_count: int = Field(description="How many tasks of the tool started (child tasks not counted).")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(
        None, description="Set on a tool deleted while tasks referred to it: hidden from users, kept for them"
    )


class AdminToolPage(Reply):
    items: list[AdminToolView]
    next_cursor: str | None = None


class BannerView(Reply):
    id: str
    title: str
    description: str | None = None
    thumbnail_asset_id: str | None = None
    thumbnail_url: str | None = Field(None, description="The CDN URL of the thumbnail.")
    link: str | None = None
    link_text: str | None = None
    link_target: str
    type: str
    position: int
    badge: str | None = None
    badge_color: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class BannerPage(Reply):
    items: list[BannerView]
    next_cursor: str | None = None


class AdminBannerView(BannerView):
    is_active: bool
    translations: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class AdminBannerPage(Reply):
    items: list[AdminBannerView]
    next_cursor: str | None = None
