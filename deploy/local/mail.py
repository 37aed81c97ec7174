"""The mail the local platform "sent": identity keeps it in its dev sink (MAIL_MODE=sink) instead of
delivering it, so a person can follow the verification and password-reset links.

    python deploy/local/mail.py [--to someone@example.com] [--limit 10]     # `make mail [TO=…]`

Reads identity's dev route with the internal credential from the stack's environment; newest first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

from run_services import PORT_OFFSETS

_LINK = re.compile(r"https?://\S+")


def fetch_mail(identity_url: str, internal_token: str, to: str | None, limit: int) -> list[dict]:
    query = {"limit": str(limit), **({"to": to} if to else {})}
    request = urllib.request.Request(
        f"{identity_url}/v1/dev/mail?{urllib.parse.urlencode(query)}",
        headers={"X-Internal-Token": internal_token},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["items"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--to", help="only the mail to this address")
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("FUNMAGIC_PORT_BASE", "8000")))
    args = parser.parse_args(argv)
    token = os.environ.get("INTERNAL_API_TOKEN")
    if not token:
        print("INTERNAL_API_TOKEN is unset: run through `make mail` (it loads the stack's environment)")
        return 2
    identity_url = f"http://127.0.0.1:{args.port_base + PORT_OFFSETS['identity']}"
    try:
        messages = fetch_mail(identity_url, token, args.to, args.limit)
    except urllib.error.HTTPError as error:
        print(f"identity refused ({error.code}): {error.read().decode(errors='replace')[:300]}")
        return 1
    except OSError as error:
        print(f"identity does not answer at {identity_url} ({error}); is the platform running (`make run`)?")
        return 1
    if not messages:
        print("no mail yet" + (f" to {args.to}" if args.to else ""))
        return 0
    for message in messages:
        print(f"── {message['created_at'][:19].replace('T', ' ')}  to {message['to']}")
        print(f"   {message['subject']}")
        for link in _LINK.findall(message.get("body") or ""):
            print(f"   → {link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
