"""What each provider adapter can run: per provider type and step type, the models it knows and the
options it really reads from a step's `provider.options`.

Pure data, kept next to the adapters it describes, so a change to an adapter and to this declaration sit
side by side (and `tests/unit/adapters/test_capabilities.py` fails when they drift apart: it runs each
adapter and records which option names it looks up). Served as `GET /v1/admin/step-types`: the admin
app's tool editor builds its step form from it (step type → provider → model → options).

Models are the ones this platform was built against (`PROVIDERS.md`); an admin may still type another
model name, which the adapter passes on as it is. Options with no `default` are left out of the provider
call when a tool does not set them (the provider's own default applies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from funmagic_providers.domain.documents import JsonValue
from funmagic_providers.domain.steps import STEP_TYPES

__all__ = [
    "CAPABILITIES",
    "STUDIO_MODELS",
    "OptionField",
    "OptionKind",
    "StepSupport",
    "StudioModel",
    "step_type_catalog",
    "studio_models_of",
]

OptionKind = Literal["string", "integer", "number", "boolean", "enum"]


@dataclass(frozen=True)
class OptionField:
    name: str
    kind: OptionKind
    description: str
    default: JsonValue = None
    enum: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class StepSupport:
    """One provider type running one step type: the models to offer (the first is the default)."""

    models: tuple[str, ...]
    options: tuple[OptionField, ...] = ()


# --- the option fields, one definition each -----------------------------------------------------------

_DURATION = OptionField(
    "durationMs", "integer",
    "Spread the work over this many milliseconds, with progress on the way (demos, tests); capped at 120 s.",
    default=0, minimum=0, maximum=120_000,
)  # fmt: skip

_OPENAI_IMAGE = (
    OptionField("size", "enum", "Image size.", default="1024x1024",
                enum=("1024x1024", "1536x1024", "1024x1536", "auto")),
    OptionField("quality", "enum", "Rendering quality (GPT image models).",
                enum=("low", "medium", "high", "auto")),
    OptionField("background", "enum", "Transparent needs png or webp output.",
                enum=("transparent", "opaque", "auto")),
    OptionField("output_format", "enum", "File format of the image.", enum=("png", "jpeg", "webp")),
    OptionField("moderation", "enum", "Content moderation strictness.", enum=("low", "auto")),
    OptionField("input_fidelity", "enum", "How closely an edit keeps the input image (edits only).",
                enum=("high", "low")),
)  # fmt: skip

_FAL_REMOVE_BG = (
    OptionField("model", "enum", "BiRefNet's variant (birefnet models only).",
                enum=("General Use (Light)", "General Use (Heavy)", "Portrait")),
    OptionField("operating_resolution", "enum", "Resolution BiRefNet works at (birefnet models only).",
                enum=("1024x1024", "2048x2048")),
    OptionField("output_format", "enum", "File format of the cut-out (birefnet models only).",
                enum=("png", "webp", "gif")),
    OptionField("crop_to_bbox", "boolean", "Crop the result to the subject (rembg only)."),
)  # fmt: skip

_TRIPO_3D = (
    OptionField("model_version", "string", "Tripo's model version; overrides the model chosen above."),
    OptionField("face_limit", "integer", "At most this many faces in the mesh.",
                minimum=500, maximum=500_000),
    OptionField("texture", "boolean", "Texture the model.", default=True),
    OptionField("pbr", "boolean", "PBR materials.", default=True),
    OptionField("texture_quality", "enum", "Texture detail.", enum=("standard", "detailed")),
    OptionField("orientation", "enum", "Turn the model to face as the image does (image input only).",
                enum=("default", "align_image")),
)  # fmt: skip

# SubmitHunyuanTo3DProJob's options, under the API's own names (Tencent's SDK models of ai3d 2025-05-13).
_HUNYUAN_3D = (
    OptionField("EnablePBR", "boolean", "PBR materials (no effect with the Geometry type)."),
    OptionField("FaceCount", "integer", "Faces of the model (Hunyuan's default: 500,000).",
                minimum=40_000, maximum=1_500_000),
    OptionField("GenerateType", "enum",
                "Normal: textured; LowPoly: reduced faces; Geometry: untextured; Sketch: from a drawing.",
                enum=("Normal", "LowPoly", "Geometry", "Sketch")),
)  # fmt: skip

# Gemini's image config (ai.google.dev `generationConfig.imageConfig`): ten aspect ratios, three sizes (the
# longest side ~1024/2048/4096 px). No default: Gemini then follows the input image (or draws 1:1, 1K).
_GEMINI_IMAGE = (
    OptionField("aspectRatio", "enum", "Aspect ratio of the image.",
                enum=("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")),
    OptionField("imageSize", "enum", "Resolution: the longest side about 1K, 2K or 4K pixels.",
                enum=("1K", "2K", "4K")),
)  # fmt: skip

# Replicate's VGGT (replicate.py): the original's `pcd_source` and `sampling_rate`; `images`, `return_pcd`
# and `to_base64` are fixed by the adapter (it needs the point map back as tensors).
_REPLICATE_VGGT = (
    OptionField("pcd_source", "string", "Which VGGT head makes the points (the original used point_head).",
                default="point_head"),
    OptionField("sampling_rate", "integer", "Passed to the model as it is: its sampling of the point map.",
                minimum=1),
)  # fmt: skip

# --- who runs what ----------------------------------------------------------------------------------------

CAPABILITIES: dict[str, dict[str, StepSupport]] = {
    "openai": {
        "image-gen": StepSupport(("gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"), _OPENAI_IMAGE),
    },
    "fal": {
        "remove-bg": StepSupport(
            ("fal-ai/imageutils/rembg", "fal-ai/birefnet/v2", "fal-ai/birefnet"), _FAL_REMOVE_BG
        ),
    },
    "gemini": {
        "image-gen": StepSupport(("gemini-2.5-flash-image", "gemini-3-pro-image-preview"), _GEMINI_IMAGE),
    },
    "tripo": {
        "3d-gen": StepSupport(
            ("default", "v2.5-20250123", "v3.0-20250812", "Turbo-v1.0-20250506"), _TRIPO_3D
        ),
    },
    "hunyuan": {
        "3d-gen": StepSupport(("default",), _HUNYUAN_3D),
    },
    "replicate": {
        "point-cloud": StepSupport(
            ("770898f053ca56571e8a49d71f27fc695b6d203e0691baa30d8fbb6954599f2b",), _REPLICATE_VGGT
        ),
    },
    "local": {
        "image-gen": StepSupport(("default",), (
            OptionField("size", "string",
                        "Width x height of an image made from the prompt alone, 64–2048 each.",
                        default="512x512"),
            OptionField("style", "enum", "The restyle applied when the step has an input image.",
                        default="vintage", enum=("vintage", "sketch", "posterize")),
            OptionField("seed", "integer", "Another picture for the same prompt (a studio batch's variant).",
                        default=0, minimum=0),
            _DURATION,
        )),
        "remove-bg": StepSupport(("default",), (_DURATION,)),
        "3d-gen": StepSupport(("default",), (
            OptionField("grid", "integer", "Vertices per side of the heightfield mesh.", default=64,
                        minimum=2, maximum=512),
            _DURATION,
        )),
        "point-cloud": StepSupport(("default",), (
            OptionField("maxPoints", "integer", "At most this many points.", default=20_000, minimum=1),
            _DURATION,
        )),
    },
}  # fmt: skip

_STEP_DESCRIPTIONS = {
    "image-gen": "Make an image from a prompt, or restyle an input image.",
    "remove-bg": "Cut the subject out: the background becomes transparent.",
    "3d-gen": "Make a 3D model (GLB) from an image or a prompt.",
    "point-cloud": "Turn an image into a coloured 3D point cloud (PLY).",
}


def _option(field: OptionField) -> dict[str, JsonValue]:
    return {
        "name": field.name,
        "kind": field.kind,
        "description": field.description,
        "default": field.default,
        "enum": list(field.enum) or None,
        "minimum": field.minimum,
        "maximum": field.maximum,
    }


def step_type_catalog() -> dict[str, JsonValue]:
    """The declaration as `GET /v1/admin/step-types` answers it: each step type, the provider types that
    run it (in the order above), their models and option fields."""
    items: list[JsonValue] = []
    for step_type in STEP_TYPES:
        providers: list[JsonValue] = [
            {
                "type": provider_type,
                "models": list(support.models),
                "options": [_option(field) for field in support.options],
            }
            for provider_type, steps in CAPABILITIES.items()
            if (support := steps.get(step_type)) is not None
        ]
        items.append(
            {"type": step_type, "description": _STEP_DESCRIPTIONS[step_type], "providers": providers}
        )
    return {"items": items}


# --- the admin AI studio ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudioModel:
    """A model the studio's prompt bar offers: `text` models talk (and draw with their image tool), `image`
    models only draw, `utility` models work on each quoted image on its own (`studio-utility` steps: fal's
    upscaler and background removal). `options` are the options it takes, with their allowed values."""

    id: str
    kind: Literal["text", "image", "utility"]
    options: tuple[OptionField, ...] = ()


_STUDIO_IMAGE = tuple(field for field in _OPENAI_IMAGE if field.name != "input_fidelity")

STUDIO_MODELS: dict[str, tuple[StudioModel, ...]] = {
    "openai": (
        StudioModel("gpt-5", "text", _STUDIO_IMAGE),
        StudioModel("gpt-5-mini", "text", _STUDIO_IMAGE),
        StudioModel("gpt-4.1", "text", _STUDIO_IMAGE),
        StudioModel("gpt-image-1", "image", _STUDIO_IMAGE),
        StudioModel("gpt-image-1-mini", "image", _STUDIO_IMAGE),
    ),
    # fal.ai's queue API (fal_queue.py); inputs as fal.ai/models/fal-ai/clarity-upscaler/llms.txt lists them
    # (upscale_factor 1–4, creativity and resemblance 0–1; a few steps offered), bria's takes the image only.
    "fal": (
        StudioModel("fal-ai/clarity-upscaler", "utility", (
            OptionField("upscale_factor", "enum", "How many times larger.", default="2",
                        enum=("2", "3", "4")),
            OptionField("creativity", "enum", "How much new detail the model may invent.", default="0.35",
                        enum=("0.2", "0.35", "0.5", "0.7")),
            OptionField("resemblance", "enum", "How closely the result keeps the original.", default="0.6",
                        enum=("0.4", "0.6", "0.8", "1")),
        )),
        StudioModel("fal-ai/bria/background/remove", "utility"),
    ),
    # Gemini's image models (gemini.py): multi-turn, the chat's earlier turns sent along as history.
    "gemini": (
        StudioModel("gemini-2.5-flash-image", "image", _GEMINI_IMAGE),
        StudioModel("gemini-3-pro-image-preview", "image", _GEMINI_IMAGE),
    ),
    "local": (
        StudioModel("local-chat", "text", (
            OptionField("size", "enum", "Image size.", default="512x512", enum=("256x256", "512x512")),
        )),
        StudioModel("local-image", "image", (
            OptionField("size", "enum", "Image size.", default="512x512",
                        enum=("256x256", "512x512", "1024x1024")),
        )),
    ),
}  # fmt: skip
"""Per provider type (`STUDIO_CHAT` steps for text models, `image-gen` for image models, `STUDIO_UTILITY` for
utility models)."""


def studio_models_of(provider_type: str) -> list[JsonValue]:
    """The models a studio provider of this type offers, as the prompt bar reads them."""
    return [
        {
            "id": model.id,
            "kind": model.kind,
            "options": {field.name: list(field.enum) for field in model.options if field.enum},
        }
        for model in STUDIO_MODELS.get(provider_type, ())
    ]
