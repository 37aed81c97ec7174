"""Write a compose env file from .env.example with every secret generated (`make compose-env`).

    python deploy/compose/generate_env.py deploy/compose/.env [KEY=VALUE …]

An existing file is left as it is (its secrets are the ones the volumes were made with); KEY=VALUE pairs
set values of a new file beyond the example's. The file is written with mode 600.
"""

from __future__ import annotations

import base64
import secrets
import sys
from pathlib import Path

EXAMPLE = Path(__file__).with_name(".env.example")

# Hex keeps a secret safe inside the postgresql:// and redis:// URLs the compose files build.
HEX_SECRETS = (
    "POSTGRES_PASSWORD",
    "IDENTITY_DB_PASSWORD",
    "TASKS_DB_PASSWORD",
    "CREDITS_DB_PASSWORD",
    "STORAGE_DB_PASSWORD",
    "PROVIDERS_DB_PASSWORD",
    "REDIS_PASSWORD",
    "INTERNAL_API_TOKEN",
    "S3_SECRET_KEY",
    "MINIO_ROOT_PASSWORD",
)


def generated_values() -> dict[str, str]:
    values = {name: secrets.token_hex(32) for name in HEX_SECRETS}
    # The master key: base64 of 32 bytes (AES-256-GCM).
    values["SECRET_KEY"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    values["S3_ACCESS_KEY"] = "funmagic-storage-" + secrets.token_hex(6)
    values["MINIO_ROOT_USER"] = "funmagic-root-" + secrets.token_hex(6)
    return values


def render(example: str, values: dict[str, str]) -> str:
    lines = []
    seen: set[str] = set()
    for line in example.splitlines():
        name, sep, _ = line.partition("=")
        if sep and not line.startswith("#") and name in values:
            line = f"{name}={values[name]}"
            seen.add(name)
        lines.append(line)
    extra = [f"{name}={value}" for name, value in values.items() if name not in seen]
    if extra:
        lines += ["", "# set by generate_env.py", *extra]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    target = Path(argv[0])
    if target.exists():
        print(f"{target} exists; left as it is")
        return 0
    overrides = dict(pair.split("=", 1) for pair in argv[1:])
    text = render(EXAMPLE.read_text(), generated_values() | overrides)
    target.touch(mode=0o600)
    target.write_text(text)
    print(f"{target} written with new secrets")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
