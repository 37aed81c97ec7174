"""The product's catalog, for a fresh install: tool types, the five tools and two demo banners.

Idempotent: what exists already is found (tool types by name, tools by slug, banners by their fixed ids)
and left as it is, so re-running creates no duplicates and never undoes an admin's edits. With
`update_existing=True` the seed's values are written over existing entries instead (only where they
differ). A seed banner an admin deleted stays deleted; a seed tool or tool type an admin deleted is created
again (its slug is free).

Every tool runs with the built-in `local` provider out of the box; `image_provider`,
`background_provider`, `model_provider` and `point_cloud_provider` pick real ones (`openai`, `fal`, `tripo`,
`replicate`) with their models. `tripo_choice` and `hunyuan_choice` (provider names) let Image to 3D's users
pick Tripo (model version, face limit, PBR) or Hunyuan 3D (generate type, face count, PBR) per request, as
the original did, beside the step's own provider (the default).
"""

from __future__ import annotations

from typing import Any

from funmagic_tasks.application.catalog import Catalog
from funmagic_tasks.domain.catalog import CatalogConflict, CatalogNotFound

__all__ = ["SEED_BANNER_IDS", "seed_catalog"]

# Fixed ids: a seed banner is recognised on the next run even after an admin renamed it.
SEED_BANNER_IDS = ("5eed0000-0000-4000-8000-000000000001", "5eed0000-0000-4000-8000-000000000002")


def _step(
    step_id: str,
    name: str,
    step_type: str,
    provider: str,
    model: str,
    cost: int,
    *,
    options: dict[str, Any] | None = None,
    image: str = "required",
    prompt: str = "optional",
    timeout_seconds: int = 600,
    default_prompt: str | None = None,
) -> dict[str, Any]:
    return {
        "id": step_id,
        "name": name,
        "type": step_type,
        "provider": {"name": provider, "model": model, "options": options or {}},
        "cost": cost,
        "timeoutSeconds": timeout_seconds,
        "prompt": default_prompt,
        "input": {"image": image, "prompt": prompt},
    }


def _image_model(provider: str) -> str:
    return "gpt-image-1" if provider == "openai" else "default"


def _image_options(provider: str) -> dict[str, Any]:
    return {"style": "vintage"} if provider == "local" else {}


def _background_model(provider: str) -> str:
    return "fal-ai/imageutils/rembg" if provider == "fal" else "default"


def _model_model(provider: str) -> str:
    return "v2.5-20250123" if provider == "tripo" else "default"


# What each 3D provider lets a user choose (its adapter's options, within the API's bounds).
_TRIPO_CHOICE_OPTIONS = {
    "face_limit": {"type": "integer", "min": 500, "max": 500_000},
    "pbr": {"type": "boolean", "default": True},
}
_HUNYUAN_CHOICE_OPTIONS = {
    "GenerateType": {"type": "enum", "values": ["Normal", "LowPoly", "Geometry", "Sketch"]},
    "FaceCount": {"type": "integer", "min": 40_000, "max": 1_500_000},
    "EnablePBR": {"type": "boolean", "default": False},
}


def _image_to_3d_choices(
    model_provider: str, tripo: str | None, hunyuan: str | None
) -> list[dict[str, Any]] | None:
    """The providers Image to 3D's users may pick: the step's own first (the default), then Tripo and
    Hunyuan where named; None when there is nothing to choose from."""
    if tripo is None and hunyuan is None:
        return None
    choices: list[dict[str, Any]] = []
    if model_provider not in (tripo, hunyuan):
        label = "Built-in" if model_provider == "local" else model_provider
        choices.append({"provider": model_provider, "label": label})
    for name, label, models, options in (
        (tripo, "Tripo", ["v2.5-20250123", "v3.0-20250812", "Turbo-v1.0-20250506"], _TRIPO_CHOICE_OPTIONS),
        (hunyuan, "Hunyuan 3D", None, _HUNYUAN_CHOICE_OPTIONS),
    ):
        if name is not None:
            choice: dict[str, Any] = {"provider": name, "label": label, "options": options}
            if models:
                choice["models"] = models
            # The step's own provider is the default, which comes first.
            choices.insert(0 if name == model_provider else len(choices), choice)
    return choices


def tool_types() -> list[dict[str, Any]]:
    return [
        {
            "name": "image",
            "display_name": "Image",
            "description": "Edit and restyle pictures.",
            "icon": "image",
            "color": "#6366f1",
            "sort_order": 10,
            "translations": {
                "de": {"display_name": "Bild", "description": "Bilder bearbeiten und neu gestalten."},
                "zh": {"display_name": "图像", "description": "编辑和重新设计图片。"},
            },
        },
        {
            "name": "3d",
            "display_name": "3D",
            "description": "Turn pictures into 3D models and point clouds.",
            "icon": "cube",
            "color": "#f59e0b",
            "sort_order": 20,
            "translations": {
                "de": {"display_name": "3D", "description": "Aus Bildern werden 3D-Modelle und Punktwolken."},
                "zh": {"display_name": "3D", "description": "把图片变成 3D 模型和点云。"},
            },
        },
    ]


def tools(
    type_ids: dict[str, str],
    *,
    image_provider: str,
    background_provider: str,
    model_provider: str,
    point_cloud_provider: str = "local",
    tripo_choice: str | None = None,
    hunyuan_choice: str | None = None,
) -> list[dict[str, Any]]:
    image_gen = {
        "provider": image_provider,
        "model": _image_model(image_provider),
        "options": _image_options(image_provider),
    }
    model_3d = {"provider": model_provider, "model": _model_model(model_provider)}
    remove_bg = {"provider": background_provider, "model": _background_model(background_provider)}
    return [
        {
            "slug": "figme",
            "title": "FigMe",
            "description": "Turn a photo into a stylised figurine, then into a 3D model.",
            "tool_type_id": type_ids["3d"],
            "is_featured": True,
            "config": {
                "steps": [
                    _step("image-gen", "Figurine Image", "image-gen", cost=20, **image_gen),
                    # Takes the previous step's output as its image (a pipeline or a chained task).
                    _step("3d-gen", "3D Model", "3d-gen", cost=30, prompt="none", **model_3d),
                ],
                "styleReferences": [
                    {
                        "id": "style-anime",
                        "name": "Anime",
                        "assetId": None,
                        "prompt": "Transform into an anime-style collectible figurine",
                    },
                    {
                        "id": "style-clay",
                        "name": "Clay",
                        "assetId": None,
                        "prompt": "Transform into a hand-made clay figurine with soft studio light",
                    },
                    {
                        "id": "style-pixel",
                        "name": "Pixel",
                        "assetId": None,
                        "prompt": "Transform into a voxel pixel-art figurine",
                    },
                ],
                "pipeline": True,
            },
            "translations": {
                "de": {
                    "title": "FigMe",
                    "description": "Aus einem Foto wird eine Figur und dann ein 3D-Modell.",
                    "steps": {"image-gen": {"name": "Figurenbild"}, "3d-gen": {"name": "3D-Modell"}},
                    "styleReferences": {"style-clay": {"name": "Knete"}},
                }
            },
        },
        {
            "slug": "background-remove",
            "title": "Background Remove",
            "description": "Cut the subject out of a photo with a transparent background.",
            "tool_type_id": type_ids["image"],
            "is_featured": True,
            "config": {
                "steps": [
                    _step("remove-bg", "Background Remove", "remove-bg", cost=5, prompt="none", **remove_bg)
                ],
                "pipeline": True,
            },
            "translations": {
                "de": {
                    "title": "Hintergrund entfernen",
                    "description": "Das Motiv freistellen, mit transparentem Hintergrund.",
                    "steps": {"remove-bg": {"name": "Hintergrund entfernen"}},
                }
            },
        },
        {
            "slug": "crystal-memory",
            "title": "Crystal Memory",
            "description": "Keep a memory as a glowing 3D point cloud, like an engraved crystal.",
            "tool_type_id": type_ids["3d"],
            "config": {
                "steps": [
                    _step("remove-bg", "Background Remove", "remove-bg", cost=5, prompt="none", **remove_bg),
                    # "default" is each provider's own: the built-in cloud, or Replicate's VGGT version.
                    _step(
                        "point-cloud",
                        "Point Cloud",
                        "point-cloud",
                        point_cloud_provider,
                        "default",
                        15,
                        prompt="none",
                    ),
                ],
                "pipeline": True,
            },
            "translations": {"de": {"title": "Kristallerinnerung"}},
        },
        {
            "slug": "vintage-trace",
            "title": "Vintage Trace",
            "description": "Give a photo the look of an old print.",
            "tool_type_id": type_ids["image"],
            "config": {
                "steps": [
                    _step(
                        "image-gen",
                        "Vintage Image",
                        "image-gen",
                        image_provider,
                        _image_model(image_provider),
                        20,
                        options=_image_options(image_provider),
                        default_prompt="Restyle as a faded vintage photograph",
                    )
                ],
                "pipeline": True,
            },
            "translations": {"de": {"title": "Vintage-Spur"}},
        },
        {
            "slug": "image-to-3d",
            "title": "Image to 3D",
            "description": "Make a textured 3D model from one picture.",
            "tool_type_id": type_ids["3d"],
            "config": {
                "steps": [
                    {
                        **_step("3d-gen", "3D Model", "3d-gen", cost=30, prompt="none", **model_3d),
                        **_choices_of(_image_to_3d_choices(model_provider, tripo_choice, hunyuan_choice)),
                    }
                ],
                "pipeline": True,
            },
            "translations": {"de": {"title": "Bild zu 3D"}},
        },
    ]


def _choices_of(choices: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {} if choices is None else {"choices": choices}


def banners() -> list[dict[str, Any]]:
    return [
        {
            "banner_id": SEED_BANNER_IDS[0],
            "title": "Meet FigMe",
            "description": "Your photo as a collectible figurine, in 3D.",
            "link": "/tools/figme",
            "link_text": "Try it",
            "type": "main",
            "position": 0,
            "badge": "New",
            "badge_color": "#ef4444",
            "translations": {
                "de": {"title": "Das ist FigMe", "link_text": "Ausprobieren", "badge": "Neu"},
            },
        },
        {
            "banner_id": SEED_BANNER_IDS[1],
            "title": "Clean cut-outs in seconds",
            "description": "Remove the background of any product photo.",
            "link": "/tools/background-remove",
            "link_text": "Remove a background",
            "type": "side",
            "position": 0,
            "translations": {"de": {"title": "Freisteller in Sekunden"}},
        },
    ]


async def seed_catalog(
    catalog: Catalog,
    *,
    image_provider: str = "local",
    background_provider: str = "local",
    model_provider: str = "local",
    point_cloud_provider: str = "local",
    tripo_choice: str | None = None,
    hunyuan_choice: str | None = None,
    update_existing: bool = False,
) -> dict[str, Any]:
    """Creates what is missing; returns what happened to each entry:
    `{"tool_types": {name: action}, "tools": {slug: action}, "banners": {id: action}}` with actions
    `created`, `unchanged` (exists, left as it is or already equal), `updated` or `skipped` (a seed banner
    an admin deleted)."""
    report: dict[str, dict[str, str]] = {"tool_types": {}, "tools": {}, "banners": {}}
    type_ids: dict[str, str] = {}
    for entry in tool_types():
        existing = await catalog.tool_type_by_name(entry["name"])
        if existing is None:
            created = await catalog.create_tool_type(**entry)
            type_ids[entry["name"]] = created["id"]
            report["tool_types"][entry["name"]] = "created"
            continue
        type_ids[entry["name"]] = existing["id"]
        action = "unchanged"
        if update_existing:
            updated = await catalog.update_tool_type(existing["id"], entry)
            action = "updated" if updated["updated_at"] != existing["updated_at"] else "unchanged"
        report["tool_types"][entry["name"]] = action

    wanted = tools(
        type_ids,
        image_provider=image_provider,
        background_provider=background_provider,
        model_provider=model_provider,
        point_cloud_provider=point_cloud_provider,
        tripo_choice=tripo_choice,
        hunyuan_choice=hunyuan_choice,
    )
    for entry in wanted:
        existing = await catalog.admin_tool_by_slug(entry["slug"])
        if existing is None:
            await catalog.create_tool(**entry)
            report["tools"][entry["slug"]] = "created"
            continue
        action = "unchanged"
        if update_existing:
            updated = await catalog.update_tool(existing["id"], entry)
            action = "updated" if updated["updated_at"] != existing["updated_at"] else "unchanged"
        report["tools"][entry["slug"]] = action

    for entry in banners():
        banner_id = entry.pop("banner_id")
        existing = await _banner_or_none(catalog, banner_id)
        if existing is None:
            try:
                await catalog.create_banner(banner_id=banner_id, **entry)
                report["banners"][banner_id] = "created"
            except CatalogConflict:  # an admin deleted it: it stays deleted
                report["banners"][banner_id] = "skipped"
            continue
        action = "unchanged"
        if update_existing:
            updated = await catalog.update_banner(banner_id, entry)
            action = "updated" if updated["updated_at"] != existing["updated_at"] else "unchanged"
        report["banners"][banner_id] = action
    return report


async def _banner_or_none(catalog: Catalog, banner_id: str) -> dict[str, Any] | None:
    try:
        return await catalog.admin_banner(banner_id)
    except CatalogNotFound:
        return None
