"""The built-in `local` provider: no key, no network; really computes its outputs with Pillow/numpy.

- `image-gen`: a procedural image from the prompt; with an input image, a style transfer stand-in
  (`options.style`: vintage, sketch, posterize), tinted towards a style reference's image when the step
  has one (its id in the metadata, `referenceAssetIds`).
- `remove-bg`: background removal for plain backgrounds (RGBA PNG).
- `3d-gen`: a heightfield mesh (GLB) from the image, with the image as preview.
- `point-cloud`: a coloured point cloud (PLY), one vertex per sampled pixel, each with a confidence.
- `studio-chat` (studio replies): a deterministic answer that repeats the prompt, written word by word to
  the live output; with `options.image_generation`, also a procedural image from the prompt (a blurred
  partial image first), so the studio works offline.

`options.durationMs` spreads the work over that time with progress on the way, for demos and for tests
that need a step to be in flight; it is capped so a tool config cannot park a runner for long.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Callable

from PIL import Image, ImageFilter

from funmagic_providers.adapters import local_compute
from funmagic_providers.domain.errors import InvalidStepInput, UnsupportedStep
from funmagic_providers.domain.steps import (
    STUDIO_CHAT,
    HealthReport,
    InputFile,
    OutputFile,
    ProgressReporter,
    ProviderAccess,
    StepCall,
    StepResult,
)

__all__ = ["LocalProvider"]

_MAX_DURATION_SECONDS = 120.0
# A studio answer is written at about this pace, so the live view has something to show.
_WORD_INTERVAL_SECONDS = 0.02


class LocalProvider:
    async def run(self, call: StepCall, progress: ProgressReporter) -> StepResult:
        if call.step_type == STUDIO_CHAT:
            return await self._studio_reply(call)
        work = self._work_for(call)
        await self._pace(call, progress)
        try:
            files, metadata = await asyncio.to_thread(work)
        except local_compute.LocalComputeError as error:
            raise InvalidStepInput(str(error)) from None
        await progress(95, "Saving the result")
        return StepResult(tuple(files), provider_request_id=None, metadata=metadata)

    async def check_health(self, provider: ProviderAccess) -> HealthReport:
        return HealthReport(True)

    async def _studio_reply(self, call: StepCall) -> StepResult:
        prompt = (call.prompt or "").strip()
        if not prompt:
            raise InvalidStepInput("a studio reply needs a prompt")
        image_options = call.options.get("image_generation")
        text = studio_answer(prompt, images=len(call.inputs), drawing=isinstance(image_options, dict))
        for index, word in enumerate(text.split(" ")):
            await call.live.text_delta(word if index == 0 else " " + word)
            await asyncio.sleep(_WORD_INTERVAL_SECONDS)
        files: tuple[OutputFile, ...] = ()
        if isinstance(image_options, dict):
            width, height = _size(str(image_options.get("size") or "512x512"))
            seeded = _seeded(prompt, image_options.get("seed"))
            image = await asyncio.to_thread(local_compute.generate_image, seeded, width=width, height=height)
            await call.live.partial_image(0, await asyncio.to_thread(_blurred, image), "image/png")
            files = (OutputFile("image", "image_0.png", "image/png", image),)
        words = len(text.split())
        response_id = "local_" + hashlib.sha256(f"{call.task_id}:{text}".encode()).hexdigest()[:24]
        usage = {"inputTokens": len(prompt.split()), "outputTokens": words,
                 "totalTokens": len(prompt.split()) + words}  # fmt: skip
        return StepResult(
            files, provider_request_id=response_id,
            metadata={"text": text, "responseId": response_id, "usage": usage},
        )  # fmt: skip

    def _work_for(self, call: StepCall) -> Callable[[], tuple[list[OutputFile], dict]]:
        source = call.inputs[0] if call.inputs else None
        options = call.options
        if call.step_type == "image-gen":
            if source is None:
                if not call.prompt:
                    raise InvalidStepInput("an image-gen step needs a prompt or an input image")
                width, height = _size(str(options.get("size", "512x512")))
                prompt = _seeded(call.prompt, options.get("seed"))
                return lambda: (
                    [OutputFile("image", "generated.png", "image/png",
                                local_compute.generate_image(prompt, width=width, height=height))],
                    {"width": width, "height": height},
                )  # fmt: skip
            style = str(options.get("style", "vintage"))
            references = call.references

            def restyled() -> tuple[list[OutputFile], dict]:
                image = local_compute.stylize(source.data, style=style)
                for reference in references:
                    image = local_compute.tint_towards(image, reference.data)
                metadata: dict = {"style": style}
                if references:
                    metadata["referenceAssetIds"] = [r.asset_id for r in references]
                return [OutputFile("image", f"{style}.png", "image/png", image)], metadata

            return restyled
        needed = _needs_input(call, source)
        if call.step_type == "remove-bg":
            return lambda: (
                [OutputFile("image", "background_removed.png", "image/png",
                            local_compute.remove_plain_background(needed.data))],
                {},
            )  # fmt: skip
        if call.step_type == "3d-gen":
            grid = int(options.get("grid", 64))

            def model() -> tuple[list[OutputFile], dict]:
                glb = local_compute.heightfield_glb(needed.data, grid=grid)
                return (
                    [OutputFile("model", "model.glb", "model/gltf-binary", glb),
                     OutputFile("preview", "preview.png", needed.content_type, needed.data)],
                    {"grid": grid},
                )  # fmt: skip

            return model
        if call.step_type == "point-cloud":
            max_points = int(options.get("maxPoints", 20_000))

            def cloud() -> tuple[list[OutputFile], dict]:
                ply, count = local_compute.point_cloud_ply(needed.data, max_points=max_points)
                return [OutputFile("point_cloud", "point_cloud.ply", "application/x-ply", ply)], {
                    "pointCount": count
                }

            return cloud
        raise UnsupportedStep(f"the local provider cannot run a {call.step_type} step")

    async def _pace(self, call: StepCall, progress: ProgressReporter) -> None:
        duration = min(max(float(call.options.get("durationMs", 0) or 0) / 1000, 0.0), _MAX_DURATION_SECONDS)
        await progress(10, "Working on this machine")
        if duration <= 0:
            return
        ticks = 8
        for tick in range(1, ticks + 1):
            await asyncio.sleep(duration / ticks)
            await progress(10 + int(80 * tick / ticks), "Working on this machine")


def _needs_input(call: StepCall, source: InputFile | None) -> InputFile:
    if source is None:
        raise InvalidStepInput(f"a {call.step_type} step needs an input image")
    return source


def _seeded(prompt: str, seed: object) -> str:
    """The prompt the picture is drawn from: with a seed other than 0, another picture for the same words."""
    return f"{prompt}\n#{seed}" if isinstance(seed, int) and not isinstance(seed, bool) and seed else prompt


def _size(value: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in value.lower().split("x", 1))
    except ValueError:
        raise InvalidStepInput(f"size must look like 512x512, not {value[:20]!r}") from None
    return width, height


def studio_answer(prompt: str, *, images: int, drawing: bool) -> str:
    """The local provider's studio answer: deterministic, and it repeats the prompt so a reader (and a
    test) sees which prompt it answers."""
    parts = [f"You asked: “{' '.join(prompt.split())}”."]
    if images:
        parts.append(f"I can see {images} image{'s' if images != 1 else ''} with it.")
    if drawing:
        parts.append("Here is a picture made on this machine from your words.")
    else:
        parts.append("I am the local model: I run offline and answer every prompt the same way.")
    return " ".join(parts)


def _blurred(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        buffer = io.BytesIO()
        image.filter(ImageFilter.GaussianBlur(12)).save(buffer, format="PNG")
    return buffer.getvalue()
