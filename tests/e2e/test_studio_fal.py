"""The admin studio's fal utility models and batches end to end, through the gateway: a `fal` studio
provider pointed at the fake fal.ai queue API (tests/fakes/fal_api.py, real HTTP), images drawn by the
built-in `local` provider and quoted back. One message quoting N images is a batch: N replies, each its own
job with its one image (the original's batch route); a utility model without an image, or more than 8
images, is refused.
"""

from __future__ import annotations

import io
import uuid

from fal_api import FakeFal
from PIL import Image
from test_admin_studio import api, download_admin_asset, finished, new_chat, post

FAL_KEY = "fal-e2e-studio-" + uuid.uuid4().hex
UPSCALER = "fal-ai/clarity-upscaler"
BRIA = "fal-ai/bria/background/remove"
STUDIO = "/api/admin/studio"


async def fal_provider(token: str, fake: FakeFal) -> str:
    name = f"fal-{uuid.uuid4().hex[:10]}"
    body = {"name": name, "type": "fal", "base_url": fake.url, "api_key": FAL_KEY, "config": {}}
    status, created = await api(token, "POST", "/api/admin/admin-providers", json=body)
    assert status == 201, created
    return name


async def local_images(token: str, chat_id: str, count: int) -> list[str]:
    """`count` 256×256 images drawn by the local provider in this chat (its outputs, to quote)."""
    posted = await post(token, chat_id, "a lighthouse", kind="image", provider="local", model="local-image",
                        variants=count, options={"size": "256x256"})  # fmt: skip
    images = []
    for reply in posted["replies"]:
        done = await finished(token, chat_id, reply["id"])
        assert done["status"] == "completed", done
        images.append(done["images"][0]["asset_id"])
    return images


async def test_a_batch_upscales_each_quoted_image_in_its_own_job(platform, admin_token) -> None:
    async with FakeFal(api_key=FAL_KEY, polls_until_done=1) as fake:
        provider = await fal_provider(admin_token, fake)
        status, offered = await api(admin_token, "GET", f"{STUDIO}/providers")
        assert status == 200, offered
        (fal,) = [p for p in offered["items"] if p["name"] == provider]
        assert {m["id"]: m["kind"] for m in fal["models"]} == {UPSCALER: "utility", BRIA: "utility"}
        chat = await new_chat(admin_token, provider="local", model="local-chat")
        images = await local_images(admin_token, chat["id"], 3)

        posted = await post(
            admin_token, chat["id"], "crisp details", kind="image", provider=provider, model=UPSCALER,
            quoted_image_ids=images, options={"upscale_factor": "2"},
        )  # fmt: skip

        assert posted["message"]["quoted_image_ids"] == images
        replies = posted["replies"]
        assert [r["quoted_image_ids"] for r in replies] == [[image] for image in images]
        for reply in replies:
            done = await finished(admin_token, chat["id"], reply["id"])
            assert done["status"] == "completed", done
            _, data = await download_admin_asset(admin_token, done["images"][0]["asset_id"])
            assert Image.open(io.BytesIO(data)).size == (512, 512)
        submits = [r.json for r in fake.requests if r.endpoint == "submit"]
        assert len(submits) == 3  # one job per image, each with its one image
        assert {s["upscale_factor"] for s in submits} == {2.0}
        assert {s["prompt"] for s in submits} == {"crisp details"}
        assert len({s["image_url"] for s in submits}) == 3


async def test_bria_cuts_a_quoted_image_out_as_a_transparent_png(platform, admin_token) -> None:
    async with FakeFal(api_key=FAL_KEY, polls_until_done=1) as fake:
        provider = await fal_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider="local", model="local-chat")
        (image,) = await local_images(admin_token, chat["id"], 1)

        posted = await post(
            admin_token, chat["id"], "cut it out", kind="image", provider=provider, model=BRIA,
            quoted_image_ids=[image],
        )  # fmt: skip
        done = await finished(admin_token, chat["id"], posted["replies"][0]["id"])

        assert done["status"] == "completed", done
        _, data = await download_admin_asset(admin_token, done["images"][0]["asset_id"])
        cut_out = Image.open(io.BytesIO(data))
        assert (cut_out.format, cut_out.mode, cut_out.size) == ("PNG", "RGBA", (256, 256))
        assert cut_out.getpixel((0, 0))[3] == 0
        assert next(r.json for r in fake.requests if r.endpoint == "submit").keys() == {"image_url"}


async def test_a_utility_without_an_image_and_a_batch_of_nine_are_refused(platform, admin_token) -> None:
    async with FakeFal(api_key=FAL_KEY) as fake:
        provider = await fal_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider="local", model="local-chat")
        path = f"{STUDIO}/chats/{chat['id']}/messages"

        status, refused = await api(admin_token, "POST", path, json={
            "content": "sharper", "kind": "image", "provider": provider, "model": UPSCALER,
        })  # fmt: skip
        assert (status, refused["code"]) == (422, "image_required"), refused

        nine = [str(uuid.uuid4()) for _ in range(9)]
        status, refused = await api(admin_token, "POST", path, json={
            "content": "sharper", "kind": "image", "provider": provider, "model": UPSCALER,
            "quoted_image_ids": nine,
        })  # fmt: skip
        assert status == 422, refused
        images = await local_images(admin_token, chat["id"], 2)
        status, refused = await api(admin_token, "POST", path, json={
            "content": "two foxes", "kind": "image", "provider": "local", "model": "local-image",
            "quoted_image_ids": images, "variants": 2,
        })  # fmt: skip
        assert (status, refused["code"]) == (422, "batch_variants"), refused
        assert [r for r in fake.requests if r.endpoint == "submit"] == []
