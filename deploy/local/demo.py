"""`funmagic demo`: run one tool end to end against the running platform, from the command line.

    python deploy/local/demo.py [--tool background-remove] [--image path.png] [--out-dir DIR]

It signs in the demo user (creating it on first use and topping its credits up through the demo
admin), uploads the image (the bundled sample by default) through a presigned URL, starts the task,
follows its progress on the SSE stream with a progress bar, prints where the output is and saves it.
Everything goes through the gateway's public API, as a browser would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "demo" / "sample.png"
DEMO_EMAIL = os.environ.get("FUNMAGIC_DEMO_EMAIL", "demo@funmagic.local")
ADMIN_EMAIL = os.environ.get("FUNMAGIC_DEMO_ADMIN_EMAIL", "demo-admin@funmagic.local")
PASSWORD = os.environ.get("FUNMAGIC_DEMO_PASSWORD", "sunny lighthouse passphrase 42")
TOP_UP_BELOW = 100


class DemoError(Exception):
    pass


class Api:
    def __init__(self, session: aiohttp.ClientSession, token: str | None = None) -> None:
        self.session, self.token = session, token

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = kwargs.pop("headers", {}) | (
            {"Authorization": f"Bearer {self.token}"} if self.token else {}
        )
        async with self.session.request(method, path, headers=headers, **kwargs) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def expect(self, status: int | tuple[int, ...], method: str, path: str, **kwargs: Any) -> Any:
        got, body = await self.call(method, path, **kwargs)
        if got not in (status if isinstance(status, tuple) else (status,)):
            detail = body.get("detail") if isinstance(body, dict) else body
            raise DemoError(f"{method} {path} answered {got}: {detail}")
        return body


async def sign_in(session: aiohttp.ClientSession, email: str, *, create: bool) -> Api:
    api = Api(session)
    body = {"email": email, "password": PASSWORD, "mode": "token"}
    status, answer = await api.call("POST", "/api/auth/sign-in/email", json=body)
    if status not in (200, 201) and create:
        await api.expect(201, "POST", "/api/auth/sign-up/email", json=body)
        status, answer = await api.call("POST", "/api/auth/sign-in/email", json=body)
    if status not in (200, 201):
        raise DemoError(f"cannot sign in {email} ({status}); run `make run` (it creates the demo admin)")
    api.token = answer["access_token"]
    api.user_id = answer["user"]["id"]  # type: ignore[attr-defined]
    return api


async def ensure_credits(session: aiohttp.ClientSession, user: Api) -> int:
    deadline = time.monotonic() + 20
    while True:  # the sign-up bonus arrives through Kafka a moment after the first sign-up
        balance = await user.expect(200, "GET", "/api/credits/balance")
        if balance["lifetime_earned"] > 0 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    if balance["balance"] < TOP_UP_BELOW:
        admin = await sign_in(session, ADMIN_EMAIL, create=False)
        amount = TOP_UP_BELOW * 2 - balance["balance"]
        reason = {"amount": amount, "reason": "demo top-up"}
        await admin.expect(201, "POST", f"/api/admin/users/{user.user_id}/credits", json=reason)  # type: ignore[attr-defined]
        print(f"  topped up {amount} credits")
    return (await user.expect(200, "GET", "/api/credits/balance"))["balance"]


async def upload(user: Api, image: Path) -> str:
    data = await asyncio.to_thread(image.read_bytes)
    content_type = "image/png" if image.suffix.lower() == ".png" else "image/jpeg"
    ticket = await user.expect(
        201, "POST", "/api/assets/uploads",
        json={"filename": image.name, "content_type": content_type, "size": len(data), "module": "uploads"},
    )  # fmt: skip
    async with (
        aiohttp.ClientSession() as s3,
        s3.put(ticket["url"], data=data, headers=ticket["headers"]) as put,
    ):
        if put.status != 200:
            raise DemoError(f"S3 refused the upload ({put.status})")
    asset = await user.expect(201, "POST", f"/api/assets/uploads/{ticket['upload_id']}/complete")
    return asset["id"]


def bar(percent: int, message: str, width: int = 30) -> str:
    filled = int(width * percent / 100)
    return f"\r  [{'#' * filled}{'.' * (width - filled)}] {percent:3d}%  {message[:50]:<50}"


async def follow(user: Api, task_id: str, steps: list[str]) -> dict:
    """Print the task's live progress from its SSE stream; return the terminal event."""
    path = f"/api/tasks/{task_id}/stream"
    headers = {"Authorization": f"Bearer {user.token}", "Accept": "text/event-stream"}
    event, data_lines, step_index = "", [], 0
    async with user.session.get(path, headers=headers, timeout=aiohttp.ClientTimeout(total=900)) as response:
        if response.status != 200:
            raise DemoError(f"the task's stream answered {response.status}")
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data_lines.append(line[5:].strip())
            elif line == "" and event:
                data = json.loads("\n".join(data_lines)) if data_lines else {}
                data_lines = []
                if event == "step_started":
                    step_index = steps.index(data["stepId"]) if data.get("stepId") in steps else step_index
                    print(
                        f"\n  step {step_index + 1}/{len(steps)}: {data.get('stepName', data.get('stepId'))}"
                    )
                elif event == "progress":
                    sys.stdout.write(bar(int(data["progress"]), data.get("message", "")))
                    sys.stdout.flush()
                elif event == "delayed":
                    sys.stdout.write(bar(0, f"waiting ({data.get('reason')})"))
                elif event == "step_completed":
                    sys.stdout.write(bar(100, "done") + "\n")
                elif event in ("completed", "failed", "cancelled"):
                    return {"type": event, **data}
                event = ""
    raise DemoError("the stream ended without a result")


async def run(args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession(base_url=args.gateway) as session:
        print(f"FunMagic demo against {args.gateway}")
        user = await sign_in(session, DEMO_EMAIL, create=True)
        print(f"  signed in as {DEMO_EMAIL}; balance {await ensure_credits(session, user)} credits")
        tool = await user.expect(200, "GET", f"/api/tools/{args.tool}")
        print(f"  tool: {tool.get('title', args.tool)}")
        asset_id = await upload(user, args.image)
        print(f"  uploaded {args.image.name} as asset {asset_id}")
        task = await user.expect(
            (200, 202), "POST", "/api/tasks", headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"toolSlug": args.tool, "input": {"imageAssetId": asset_id}},
        )  # fmt: skip
        print(f"  task {task['id']} started ({task['price']} credits held)")
        result = await follow(user, task["id"], task["step_ids"])
        if result["type"] != "completed":
            print(f"\n  task {result['type']}: {result.get('error', '')}")
            return 1
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for output in result["output"]["assets"]:
            asset = await user.expect(200, "GET", f"/api/assets/{output['assetId']}")
            async with aiohttp.ClientSession() as s3, s3.get(asset["url"]) as response:
                path = args.out_dir / f"{task['id'][:8]}_{asset['filename']}"
                await asyncio.to_thread(path.write_bytes, await response.read())
            print(f"  {output['role']}: {asset['filename']} ({asset['size']} bytes)")
            print(f"    stored at {asset['url'].split('?')[0]}")
            print(f"    saved to  {path}")
        balance = await user.expect(200, "GET", "/api/credits/balance")
        print(f"  charged {result.get('chargedCredits')} credits; balance now {balance['balance']}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gateway", default=os.environ.get("FUNMAGIC_GATEWAY_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--tool", default="background-remove")
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--out-dir", type=Path, default=Path.cwd() / "demo-output")
    args = parser.parse_args()
    try:
        return asyncio.run(run(args))
    except DemoError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
