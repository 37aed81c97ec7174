"""Secrets at rest: AES-256-GCM with a key from the environment (`SECRET_KEY`, 32 bytes, base64).

Every encrypted value carries a version byte and its own random nonce, and is bound to a purpose (the
associated data), so a value copied from one column into another does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from funmagic_kit.errors import ConfigError, PlatformError

__all__ = ["DecryptionFailed", "SecretBox", "generate_secret_key"]

_VERSION = b"\x01"
_NONCE_BYTES = 12


class DecryptionFailed(PlatformError):
    """The value was not encrypted with this key for this purpose, or it was altered."""


def generate_secret_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ConfigError("SECRET_KEY must decode to exactly 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def from_base64(cls, value: str) -> SecretBox:
        try:
            key = base64.urlsafe_b64decode(value.strip() + "=" * (-len(value.strip()) % 4))
        except (binascii.Error, ValueError):
            raise ConfigError("SECRET_KEY is not valid base64") from None
        return cls(key)

    def encrypt(self, plaintext: bytes, *, purpose: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def decrypt(self, ciphertext: bytes, *, purpose: str) -> bytes:
        if ciphertext[:1] != _VERSION or len(ciphertext) < 1 + _NONCE_BYTES + 16:
            raise DecryptionFailed("unknown secret format")
        nonce, body = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, purpose.encode())
        except InvalidTag:
            raise DecryptionFailed(f"cannot decrypt the {purpose}") from None
