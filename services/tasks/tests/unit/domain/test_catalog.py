"""The catalog's rules: tool configs, entries, links, banner windows and localisation (pure, no I/O)."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from funmagic_tasks.domain.catalog import (
    CatalogImage,
    InvalidCatalogEntry,
    banner_is_live,
    check_banner,
    check_link,
    check_tool,
    check_tool_type,
    check_translations,
    config_to_json,
    credits_cost,
    image_urls_of,
    images_named,
    locale_chain,
    localize,
    localize_config,
    parse_tool_config,
    provider_names,
    public_config,
)


def step(step_id: str = "remove-bg", **overrides: Any) -> dict[str, Any]:
    raw = {
        "id": step_id,
        "name": "Background Remove",
        "type": "remove-bg",
        "provider": {"name": "local", "model": "default", "options": {}},
        "cost": 5,
        "timeoutSeconds": 300,
        "prompt": None,
        "input": {"image": "required", "prompt": "none"},
    }
    raw.update(overrides)
    return raw


def config(*steps: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "steps": list(steps) or [step()],
        "styleReferences": [
            {"id": "style-anime", "name": "Anime", "prompt": "Transform into anime style", "assetId": None}
        ],
        "pipeline": True,
    }
    raw.update(overrides)
    return raw


def refused(raw: Any) -> InvalidCatalogEntry:
    with pytest.raises(InvalidCatalogEntry) as caught:
        parse_tool_config(raw)
    return caught.value


# --- configs ----------------------------------------------------------------------------------------


def test_the_example_config_parses_into_the_domain_model() -> None:
    parsed = parse_tool_config(config())

    (only,) = parsed.steps
    assert only.id == "remove-bg"
    assert only.type == "remove-bg"
    assert only.provider.name == "local"
    assert only.provider.model == "default"
    assert dict(only.provider.options) == {}
    assert (only.cost, only.timeout_seconds, only.prompt) == (5, 300, None)
    assert (only.image_input, only.prompt_input) == ("required", "none")
    assert parsed.style_references[0].id == "style-anime"
    assert parsed.style_references[0].asset_id is None
    assert parsed.pipeline is True
    assert parsed.step("remove-bg") is only
    assert parsed.step("nope") is None


def test_defaults_fill_in_what_is_left_out() -> None:
    minimal = {"steps": [{"id": "gen", "name": "Gen", "type": "image-gen", "provider": {"name": "local"},
                          "cost": 1}]}  # fmt: skip

    parsed = parse_tool_config(minimal)

    gen = parsed.steps[0]
    assert gen.timeout_seconds == 600
    assert (gen.image_input, gen.prompt_input) == ("optional", "optional")
    assert gen.provider.model == "default"
    assert parsed.style_references == ()
    assert parsed.pipeline is True
    assert config_to_json(parsed)["steps"][0]["timeoutSeconds"] == 600


def test_the_canonical_form_parses_back_to_the_same_config() -> None:
    parsed = parse_tool_config(config(step("a", cost=3), step("b", type="point-cloud", cost=7)))

    assert parse_tool_config(config_to_json(parsed)) == parsed


def test_the_price_is_the_sum_of_the_steps_costs() -> None:
    parsed = parse_tool_config(config(step("a", cost=20), step("b", cost=30, type="3d-gen")))

    assert credits_cost(parsed) == 50


@pytest.mark.parametrize("count", [0, 9])
def test_a_tool_has_one_to_eight_steps(count: int) -> None:
    error = refused(config() | {"steps": [step(f"s{i}") for i in range(count)]})

    assert error.field == "config.steps"


def test_eight_steps_are_fine() -> None:
    assert len(parse_tool_config(config(*[step(f"s{i}") for i in range(8)])).steps) == 8


def test_step_ids_are_unique_slugs() -> None:
    assert refused(config(step("same"), step("same"))).field == "config.steps[1].id"
    assert refused(config(step("Not A Slug"))).field == "config.steps[0].id"
    assert refused(config(step("-leading"))).field == "config.steps[0].id"


def test_the_step_type_is_one_of_four() -> None:
    error = refused(config(step(type="video-gen")))

    assert error.field == "config.steps[0].type"
    for step_type in ("image-gen", "remove-bg", "3d-gen", "point-cloud"):
        parse_tool_config(config(step(type=step_type)))


@pytest.mark.parametrize("cost", [-1, 1.5, "5", True, None])
def test_the_cost_is_a_whole_number_of_at_least_zero(cost: Any) -> None:
    assert refused(config(step(cost=cost))).field == "config.steps[0].cost"


def test_a_step_may_cost_nothing() -> None:
    assert parse_tool_config(config(step(cost=0))).steps[0].cost == 0


@pytest.mark.parametrize(
    ("timeout", "ok"), [(9, False), (10, True), (3600, True), (3601, False), ("60", False)]
)
def test_the_timeout_is_ten_seconds_to_an_hour(timeout: Any, ok: bool) -> None:
    raw = config(step(timeoutSeconds=timeout))
    if ok:
        assert parse_tool_config(raw).steps[0].timeout_seconds == timeout
    else:
        assert refused(raw).field == "config.steps[0].timeoutSeconds"


@pytest.mark.parametrize("key", ["image", "prompt"])
def test_input_modes_are_required_optional_or_none(key: str) -> None:
    error = refused(config(step(type="image-gen", input={key: "sometimes"})))

    assert error.field == f"config.steps[0].input.{key}"


def test_a_background_removal_cannot_go_without_an_image() -> None:
    assert refused(config(step(input={"image": "none"}))).field == "config.steps[0].input.image"


def test_an_image_gen_step_uses_the_style_image_unless_it_says_false() -> None:
    assert parse_tool_config(config(step(type="image-gen"))).steps[0].use_style_image is True
    off = parse_tool_config(config(step(type="image-gen", useStyleImage=False)))

    assert off.steps[0].use_style_image is False
    assert config_to_json(off)["steps"][0]["useStyleImage"] is False
    assert parse_tool_config(config_to_json(off)) == off


@pytest.mark.parametrize("value", ["false", 0, None])
def test_use_style_image_is_true_or_false(value: Any) -> None:
    error = refused(config(step(type="image-gen", useStyleImage=value)))

    assert error.field == "config.steps[0].useStyleImage"


def test_the_default_prompt_is_at_most_4000_characters() -> None:
    parse_tool_config(config(step(prompt="x" * 4000)))

    assert refused(config(step(prompt="x" * 4001))).field == "config.steps[0].prompt"


@pytest.mark.parametrize(
    ("provider", "field"),
    [
        (None, "config.steps[0].provider"),
        ({"model": "default"}, "config.steps[0].provider.name"),
        ({"name": "Open AI"}, "config.steps[0].provider.name"),
        ({"name": "local", "options": []}, "config.steps[0].provider.options"),
        ({"name": "local", "options": {"x": float("nan")}}, "config.steps[0].provider.options.x"),
        ({"name": "local", "options": {"x": "a\x00b"}}, "config.steps[0].provider.options.x"),
        ({"name": "local", "apiKey": "sk-1"}, "config.steps[0].provider.apiKey"),
    ],
)
def test_the_provider_is_named_and_its_options_are_plain_json(provider: Any, field: str) -> None:
    assert refused(config(step(provider=provider))).field == field


def test_provider_options_are_kept_and_cannot_be_changed_in_place() -> None:
    parsed = parse_tool_config(config(step(provider={"name": "openai", "model": "gpt-image-1",
                                                       "options": {"size": "1024x1024"}})))  # fmt: skip

    options = parsed.steps[0].provider.options
    assert options == {"size": "1024x1024"}
    with pytest.raises(TypeError):
        options["size"] = "1x1"  # type: ignore[index]


def test_each_provider_is_named_once_in_step_order() -> None:
    parsed = parse_tool_config(config(
        step("a", provider={"name": "fal"}), step("b", provider={"name": "local"}),
        step("c", provider={"name": "fal"}),
    ))  # fmt: skip

    assert provider_names(parsed) == ["fal", "local"]


def test_style_references_are_at_most_sixteen_with_unique_ids() -> None:
    style = {"id": "s", "name": "S", "prompt": "p"}
    many = [{**style, "id": f"s{i}"} for i in range(17)]

    assert refused(config(styleReferences=many)).field == "config.styleReferences"
    assert len(parse_tool_config(config(styleReferences=many[:16])).style_references) == 16
    assert refused(config(styleReferences=[style, style])).field == "config.styleReferences[1].id"


def test_a_style_reference_has_a_prompt_of_at_most_4000_characters_and_maybe_an_asset() -> None:
    asset = str(uuid.uuid4())
    ok = {"id": "s", "name": "S", "prompt": "p" * 4000, "assetId": asset.upper()}

    assert parse_tool_config(config(styleReferences=[ok])).style_references[0].asset_id == asset
    too_long = {**ok, "prompt": "p" * 4001}
    assert refused(config(styleReferences=[too_long])).field == "config.styleReferences[0].prompt"
    not_an_asset = {**ok, "assetId": "https://cdn.example.com/a.png"}
    assert refused(config(styleReferences=[not_an_asset])).field == "config.styleReferences[0].assetId"
    no_prompt = {"id": "s", "name": "S"}
    assert refused(config(styleReferences=[no_prompt])).field == "config.styleReferences[0].prompt"


def test_pipeline_is_a_boolean_defaulting_to_true() -> None:
    raw = config()
    del raw["pipeline"]

    assert parse_tool_config(raw).pipeline is True
    assert parse_tool_config(config(pipeline=False)).pipeline is False
    assert refused(config(pipeline="yes")).field == "config.pipeline"


def test_unknown_fields_are_refused_by_name() -> None:
    assert refused(config(stepz=[])).field == "config.stepz"
    assert refused(config(step(providerId="uuid-openai"))).field == "config.steps[0].providerId"
    assert refused([]).field == "config"


def test_the_public_config_hides_providers_timeouts_and_default_prompts() -> None:
    secret = step(prompt="secret sauce", provider={"name": "openai", "options": {"k": 1}})
    parsed = parse_tool_config(config(secret))

    shown = public_config(parsed)

    assert shown["steps"] == [
        {"id": "remove-bg", "name": "Background Remove", "type": "remove-bg", "cost": 5,
         "input": {"image": "required", "prompt": "none"}, "choices": []}
    ]  # fmt: skip
    assert shown["styleReferences"] == [
        {"id": "style-anime", "name": "Anime", "prompt": "Transform into anime style", "assetId": None,
         "image_url": None}
    ]  # fmt: skip
    assert "secret sauce" not in repr(shown)
    assert "openai" not in repr(shown)


# --- images ----------------------------------------------------------------------------------------


THUMBNAIL, STYLE_A, STYLE_C = (str(uuid.uuid4()) for _ in range(3))
STYLES = [
    {"id": "a", "name": "A", "prompt": "a", "assetId": STYLE_A},
    {"id": "b", "name": "B", "prompt": "b", "assetId": None},
    {"id": "c", "name": "C", "prompt": "c", "assetId": STYLE_C},
]


def test_the_images_an_entry_names_are_its_thumbnail_and_its_style_references_images() -> None:
    parsed = parse_tool_config(config(styleReferences=STYLES))

    assert images_named({"thumbnail_asset_id": THUMBNAIL.upper()}, parsed) == (
        CatalogImage("thumbnail_asset_id", THUMBNAIL),
        CatalogImage("config.styleReferences[0].assetId", STYLE_A),
        CatalogImage("config.styleReferences[2].assetId", STYLE_C),
    )
    assert images_named({"title": "no images"}, None) == ()
    assert images_named({"thumbnail_asset_id": None}, None) == ()
    with pytest.raises(InvalidCatalogEntry) as caught:
        images_named({"thumbnail_asset_id": "not-a-uuid"}, None)
    assert caught.value.field == "thumbnail_asset_id"


def test_an_entry_keeps_the_urls_of_the_images_it_still_names() -> None:
    known = {THUMBNAIL: "https://cdn/t.png", STYLE_A: "https://cdn/a.png"}
    images = [CatalogImage("thumbnail_asset_id", THUMBNAIL), CatalogImage("x", STYLE_C)]

    assert image_urls_of(images, known) == {THUMBNAIL: "https://cdn/t.png"}
    assert image_urls_of([], known) == {}


def test_the_public_config_shows_each_style_references_image_url() -> None:
    parsed = parse_tool_config(config(styleReferences=STYLES))

    shown = public_config(parsed, {STYLE_A: "https://cdn/a.png"})

    assert [s["image_url"] for s in shown["styleReferences"]] == ["https://cdn/a.png", None, None]
    assert [s["assetId"] for s in shown["styleReferences"]] == [STYLE_A, None, STYLE_C]


# --- entries ----------------------------------------------------------------------------------------


def tool_entry(**overrides: Any) -> dict[str, Any]:
    entry = {"slug": "figme", "title": "FigMe", "tool_type_id": str(uuid.uuid4()), "config": config()}
    entry.update(overrides)
    return entry


def test_a_tool_is_normalised_with_its_price_computed() -> None:
    values = check_tool(tool_entry(config=config(step("a", cost=2), step("b", cost=3)), title=" FigMe "))
    parsed = parse_tool_config(config(step("a", cost=2), step("b", cost=3)))

    assert values.credits_cost == 5
    assert values.title == "FigMe"
    assert values.description == ""
    assert values.is_active is True
    assert values.is_featured is False
    assert config_to_json(values.config) == config_to_json(parsed)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": "Fig Me"}, "slug"),
        ({"slug": "a" * 64}, "slug"),
        ({"title": "  "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"tool_type_id": "not-a-uuid"}, "tool_type_id"),
        ({"thumbnail_asset_id": "thumb.png"}, "thumbnail_asset_id"),
        ({"config": None}, "config"),
        ({"is_active": "yes"}, "is_active"),
        ({"description": "bell\x07"}, "description"),
        ({"title": "nul\x00"}, "title"),
        ({"title": "\ud800"}, "title"),
    ],
)
def test_tool_fields_are_checked_by_name(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidCatalogEntry) as caught:
        check_tool(tool_entry(**overrides))

    assert caught.value.field == field


def test_a_slug_of_63_characters_is_fine() -> None:
    assert check_tool(tool_entry(slug="a" * 63)).slug == "a" * 63


def test_a_tool_type_is_a_slug_name_with_a_display_name_and_a_safe_colour() -> None:
    values = check_tool_type({"name": "image", "display_name": "Image", "color": "#6366f1"})

    assert values.sort_order == 0
    assert values.is_active is True
    assert values.translations == {}
    for bad, field in (
        ({"name": "Image"}, "name"),
        ({"display_name": ""}, "display_name"),
        ({"color": "red;background:url(x)"}, "color"),
        ({"sort_order": 10**12}, "sort_order"),
    ):
        with pytest.raises(InvalidCatalogEntry) as caught:
            check_tool_type({"name": "image", "display_name": "Image", **bad})
        assert caught.value.field == field


# --- banners ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "link",
    [
        "https://example.com",
        "https://example.com/a?b=c#d",
        "http://localhost:5173/x",
        "/tools/figme",
        "/",
        None,
    ],
)
def test_links_are_http_urls_or_paths(link: str | None) -> None:
    assert check_link(link) == link


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>",
        "//evil.example.com",
        "/\\evil.example.com",
        "ftp://example.com",
        "https://",
        "https://exa mple.com",
        "tools/figme",
        " /tools",
        "https://example.com/\x00",
        "/" + "a" * 2048,
    ],
)
def test_other_links_are_refused(link: str) -> None:
    with pytest.raises(InvalidCatalogEntry) as caught:
        check_link(link)

    assert caught.value.field == "link"


def test_a_banner_checks_its_type_target_window_and_link() -> None:
    now = datetime.now(UTC)
    ok = {"title": "Hi", "link": "/x", "starts_at": now, "ends_at": now + timedelta(days=1)}

    values = check_banner(ok)

    assert (values.type, values.link_target, values.position) == ("main", "_self", 0)
    for bad, field in (
        ({"type": "top"}, "type"),
        ({"link_target": "_parent"}, "link_target"),
        ({"ends_at": now}, "ends_at"),
        ({"starts_at": datetime(2030, 1, 1)}, "starts_at"),  # naive on purpose
        ({"link": "javascript:void(0)"}, "link"),
        ({"badge_color": "url(x)"}, "badge_color"),
    ):
        with pytest.raises(InvalidCatalogEntry) as caught:
            check_banner({**ok, **bad})
        assert caught.value.field == field


def test_a_banner_is_live_from_its_start_until_just_before_its_end() -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=7)

    def live(now: datetime, *, active: bool = True, starts: datetime | None = start,
             ends: datetime | None = end) -> bool:  # fmt: skip
        return banner_is_live(is_active=active, starts_at=starts, ends_at=ends, now=now)

    assert not live(start - timedelta(microseconds=1))
    assert live(start)
    assert live(end - timedelta(microseconds=1))
    assert not live(end)
    assert not live(start, active=False)
    assert live(start - timedelta(days=999), starts=None)
    assert live(end + timedelta(days=999), ends=None)
    assert live(start, starts=None, ends=None)


# --- translations and localisation -------------------------------------------------------------------


def test_translations_are_checked_per_locale_and_field() -> None:
    ok = {
        "de": {"title": "Hallo", "steps": {"remove-bg": {"name": "Freistellen"}}},
        "pt-BR": {"title": "Olá"},
    }

    assert check_translations(ok, "tool") == ok
    for bad, field in (
        ({"DE": {"title": "x"}}, "translations.DE"),
        ({"de_AT": {"title": "x"}}, "translations.de_AT"),
        ({"de": {"headline": "x"}}, "translations.de.headline"),
        ({"de": {"title": 5}}, "translations.de.title"),
        ({"de": {"steps": {"remove-bg": {"title": "x"}}}}, "translations.de.steps.remove-bg.title"),
        ({"de": "Hallo"}, "translations.de"),
    ):
        with pytest.raises(InvalidCatalogEntry) as caught:
            check_translations(bad, "tool")
        assert caught.value.field == field
    with pytest.raises(InvalidCatalogEntry):
        check_translations({"de": {"steps": {}}}, "banner")  # only tools translate step names


def test_a_regional_locale_falls_back_to_its_language() -> None:
    assert locale_chain("de-AT") == ("de-AT", "de")
    assert locale_chain("de") == ("de",)
    assert locale_chain(None) == ()
    with pytest.raises(InvalidCatalogEntry):
        locale_chain("de_at")


def test_each_field_falls_back_on_its_own() -> None:
    base = {"title": "Background Remove", "description": "Cut it out", "slug": "background-remove"}
    translations = {
        "de": {"title": "Hintergrund entfernen", "description": ""},
        "de-AT": {"description": "Freistellen, bitte"},
    }

    assert localize(base, translations, "de", ("title", "description")) == {
        **base, "title": "Hintergrund entfernen"}  # fmt: skip
    assert localize(base, translations, "de-AT", ("title", "description")) == {
        **base, "title": "Hintergrund entfernen", "description": "Freistellen, bitte"}  # fmt: skip
    assert localize(base, translations, "fr", ("title", "description")) == base
    assert localize(base, translations, None, ("title", "description")) == base
    assert localize(base, None, "de", ("title",)) == base


def test_step_and_style_names_are_localised_with_fallback() -> None:
    steps = (step("a", name="Remove"), step("b", name="Cloud", type="point-cloud"))
    shown = public_config(parse_tool_config(config(*steps)))
    translations = {
        "de": {"steps": {"a": {"name": "Entfernen"}}, "styleReferences": {"style-anime": {"name": "Manga"}}}
    }
    before = copy.deepcopy(shown)

    localised = localize_config(shown, translations, "de-CH")

    assert [s["name"] for s in localised["steps"]] == ["Entfernen", "Cloud"]
    assert localised["styleReferences"][0]["name"] == "Manga"
    assert shown == before  # the input is not changed in place
