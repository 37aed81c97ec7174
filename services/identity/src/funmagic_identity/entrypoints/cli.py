"""Operator commands of identity:

python -m funmagic_identity create-admin --email … [--name …]   a new super_admin, or a user promoted
python -m funmagic_identity rotate-signing-key                  sign new access tokens with a new key

The password of a new admin is read from FUNMAGIC_ADMIN_PASSWORD or asked for on the terminal, never
taken as an argument (arguments show up in process lists and shell history). Each command takes the
objects the composition root built, its arguments and where to print (default: the standard output of
the moment), and returns the exit code.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Sequence
from typing import TextIO

from funmagic_identity.adapters.signing_keys import SigningKeyRing
from funmagic_identity.application.handlers import IdentityHandlers
from funmagic_kit.clock import Clock
from funmagic_kit.errors import Refused

__all__ = ["create_admin", "rotate_signing_key"]

PASSWORD_VARIABLE = "FUNMAGIC_ADMIN_PASSWORD"


async def create_admin(handlers: IdentityHandlers, argv: Sequence[str], out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m funmagic_identity create-admin")
    parser.add_argument("--email", required=True)
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_VARIABLE)
    try:
        try:
            user, created = await handlers.create_super_admin(args.email, password, args.name)
        except Refused as error:
            # Promoting an existing user needs no password; only a new account makes us ask for one.
            if password is not None or "needs a password" not in str(error):
                raise
            password = getpass.getpass("Password for the new super_admin: ")
            user, created = await handlers.create_super_admin(args.email, password, args.name)
    except Refused as error:
        print(f"refused: {error}", file=out)
        return 1
    print(f"{'created' if created else 'promoted'} super_admin {user.email} ({user.id})", file=out)
    return 0


async def rotate_signing_key(
    keys: SigningKeyRing, clock: Clock, argv: Sequence[str], out: TextIO | None = None
) -> int:
    del argv  # takes no arguments
    kid = await keys.rotate(clock.now())
    print(
        f"new signing key {kid}; services pick it up within a minute, old tokens stay valid until expiry",
        file=out,
    )
    return 0
