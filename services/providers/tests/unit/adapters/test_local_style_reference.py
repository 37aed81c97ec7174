"""The local provider with a style reference's image (offline): the restyled photo is tinted towards the
style image's colour, keeps the photo's size, and names the reference in its metadata."""

from __future__ import annotations

import io

from PIL import Image

from funmagic_providers.adapters.apis.local import LocalProvider
from funmagic_providers.domain.steps import InputFile, ProviderAccess, StepCall


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


async def no_progress(percent: int, message: str) -> None:
    return None


PHOTO = InputFile("photo", "photo.png", "image/png", png((128, 128, 128), (40, 30)))
BLUE_STYLE = InputFile("style", "style.png", "image/png", png((0, 0, 255), (8, 8)))


def restyle(references: tuple[InputFile, ...]) -> StepCall:
    return StepCall(
        task_id="task-1", user_id="user-1", step_id="gen", step_type="image-gen", model="default",
        prompt="Transform into anime style", options={"style": "posterize"}, inputs=(PHOTO,),
        provider=ProviderAccess("local", "local", None, None), references=references,
    )  # fmt: skip


async def test_a_style_image_tints_the_result_and_is_named_in_the_metadata() -> None:
    plain = await LocalProvider().run(restyle(()), no_progress)
    styled = await LocalProvider().run(restyle((BLUE_STYLE,)), no_progress)

    assert plain.metadata == {"style": "posterize"}
    assert styled.metadata == {"style": "posterize", "referenceAssetIds": ["style"]}
    plain_image = Image.open(io.BytesIO(plain.files[0].data)).convert("RGB")
    styled_image = Image.open(io.BytesIO(styled.files[0].data)).convert("RGB")
    assert styled_image.size == plain_image.size == (40, 30)
    red, _, blue = plain_image.getpixel((20, 15))
    styled_red, _, styled_blue = styled_image.getpixel((20, 15))
    assert styled_blue > blue, "moved towards the style's blue"
    assert styled_red < red
