"""The admin studio's Google Gemini image models end to end, through the gateway: a `gemini` studio
provider pointed at the fake Gemini API (tests/fakes/gemini_api.py, real HTTP). Two prompts to
gemini-2.5-flash-image in one chat: the second request carries the first turn as history (the fake records
what it got), and the reply's image has the 16:9 proportions asked for.
"""

from __future__ import annotations

import base64
import io
import uuid

from faults import Fault
from gemini_api import FakeGemini
from PIL import Image
from test_admin_studio import api, download_admin_asset, finished, new_chat, post

GEMINI_KEY = "AIza-e2e-studio-" + uuid.uuid4().hex
MODEL = "gemini-2.5-flash-image"
STUDIO = "/api/admin/studio"


async def gemini_provider(token: str, fake: FakeGemini) -> str:
    name = f"gemini-{uuid.uuid4().hex[:10]}"
    body = {"name": name, "type": "gemini", "base_url": fake.origin, "api_key": GEMINI_KEY, "config": {}}
    status, created = await api(token, "POST", "/api/admin/admin-providers", json=body)
    assert status == 201, created
    return name


async def test_two_gemini_prompts_the_second_with_the_first_as_history(platform, admin_token) -> None:
    async with FakeGemini(api_key=GEMINI_KEY) as fake:
        provider = await gemini_provider(admin_token, fake)
        status, offered = await api(admin_token, "GET", f"{STUDIO}/providers")
        assert status == 200, offered
        (gemini,) = [p for p in offered["items"] if p["name"] == provider]
        models = {m["id"]: m for m in gemini["models"]}
        assert set(models) == {MODEL, "gemini-3-pro-image-preview"}
        assert models[MODEL]["kind"] == "image"
        assert "16:9" in models[MODEL]["options"]["aspectRatio"]
        assert models[MODEL]["options"]["imageSize"] == ["1K", "2K", "4K"]
        chat = await new_chat(admin_token, provider="local", model="local-chat")

        first = await post(admin_token, chat["id"], "a fox", kind="image", provider=provider, model=MODEL)
        done = await finished(admin_token, chat["id"], first["replies"][0]["id"])
        assert done["status"] == "completed", done
        assert done["content"] == "Here is a fox"

        second = await post(
            admin_token, chat["id"], "the fox in snow", kind="image", provider=provider, model=MODEL,
            options={"aspectRatio": "16:9", "imageSize": "2K"},
        )  # fmt: skip
        done = await finished(admin_token, chat["id"], second["replies"][0]["id"])

        assert done["status"] == "completed", done
        _, data = await download_admin_asset(admin_token, done["images"][0]["asset_id"])
        width, height = Image.open(io.BytesIO(data)).size
        assert (width, height) == (128, 72)  # the fake's 2K (2048 px / 16) at 16:9
        assert len(fake.generated) == 2
        sent = fake.generated[1]
        assert [(c["role"], c["parts"][0]["text"]) for c in sent["contents"]] == [
            ("user", "a fox"),
            ("model", "Here is a fox"),
            ("user", "the fox in snow"),
        ]
        assert sent["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
        assert fake.generated[0]["contents"] == [{"role": "user", "parts": [{"text": "a fox"}]}]
        assert all(r.headers.get("x-goog-api-key") == GEMINI_KEY for r in fake.requests)


async def test_a_rate_limited_gemini_reply_is_retried_and_an_unknown_ratio_refused(
    platform, admin_token
) -> None:
    async with FakeGemini(api_key=GEMINI_KEY) as fake:
        provider = await gemini_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider="local", model="local-chat")
        fake.faults.queue("generate", Fault.rate_limited(retry_after=0))
        posted = await post(admin_token, chat["id"], "a fox", kind="image", provider=provider, model=MODEL)
        done = await finished(admin_token, chat["id"], posted["replies"][0]["id"])

        assert done["status"] == "completed", done
        assert fake.faults.pending("generate") == 0
        assert len([r for r in fake.requests if r.endpoint == "generate"]) == 2

        posted = await post(admin_token, chat["id"], "a fox", kind="image", provider=provider, model=MODEL,
                            options={"aspectRatio": "5:3"})  # fmt: skip
        done = await finished(admin_token, chat["id"], posted["replies"][0]["id"])
        assert done["status"] == "failed", done
        assert done["error_code"] == "invalid_input"
        assert len([r for r in fake.requests if r.endpoint == "generate"]) == 2


async def test_an_earlier_prompts_quoted_image_goes_back_with_the_history(platform, admin_token) -> None:
    async with FakeGemini(api_key=GEMINI_KEY) as fake:
        provider = await gemini_provider(admin_token, fake)
        chat = await new_chat(admin_token, provider="local", model="local-chat")
        drawn = await post(admin_token, chat["id"], "a fox", kind="image", provider=provider, model=MODEL)
        fox = (await finished(admin_token, chat["id"], drawn["replies"][0]["id"]))["images"][0]["asset_id"]
        _, fox_bytes = await download_admin_asset(admin_token, fox)
        quoted = await post(
            admin_token, chat["id"], "this fox in snow", kind="image", provider=provider, model=MODEL,
            quoted_image_ids=[fox],
        )  # fmt: skip
        assert (await finished(admin_token, chat["id"], quoted["replies"][0]["id"]))["status"] == "completed"

        later = await post(
            admin_token, chat["id"], "now at night", kind="image", provider=provider, model=MODEL
        )
        done = await finished(admin_token, chat["id"], later["replies"][0]["id"])

        assert done["status"] == "completed", done
        contents = fake.generated[-1]["contents"]
        turn = next(
            c for c in contents if c["role"] == "user" and c["parts"][0]["text"] == "this fox in snow"
        )
        (image,) = [part["inlineData"] for part in turn["parts"][1:]]
        assert base64.b64decode(image["data"]) == fox_bytes
        assert contents[-1]["parts"] == [{"text": "now at night"}]
