"""Provider API keys at rest: AES-256-GCM under a master key from the environment, with its id stored.

`PROVIDER_MASTER_KEYS=k2:<base64>,k1:<base64>` lists the master keys, the current one first; the others
stay readable so rows can be re-encrypted (`rotate-provider-keys`) without downtime. Unset, the service's
`SECRET_KEY` is the one key, id `default`. Each ciphertext is bound to its row id (the associated data),
so a value copied onto another row does not decrypt.
"""

from __future__ import annotations

from collections.abc import Mapping

from funmagic_kit.crypto import SecretBox
from funmagic_kit.errors import ConfigError
from funmagic_providers.domain.providers import CredentialPart

__all__ = ["ProviderKeyring"]


class ProviderKeyring:
    def __init__(self, boxes: Mapping[str, SecretBox], current: str) -> None:
        if current not in boxes:
            raise ConfigError(f"the current provider master key {current!r} is not among the keys")
        self._boxes = dict(boxes)
        self.current = current

    @classmethod
    def from_settings(cls, master_keys: str, secret_key: str) -> ProviderKeyring:
        if not master_keys.strip():
            return cls({"default": SecretBox.from_base64(secret_key)}, "default")
        boxes: dict[str, SecretBox] = {}
        order: list[str] = []
        for item in master_keys.split(","):
            key_id, sep, value = item.strip().partition(":")
            if not sep or not key_id or not value:
                raise ConfigError("PROVIDER_MASTER_KEYS must be a comma-separated list of <id>:<base64 key>")
            if key_id in boxes:
                raise ConfigError(f"PROVIDER_MASTER_KEYS names the key id {key_id!r} twice")
            boxes[key_id] = SecretBox.from_base64(value)
            order.append(key_id)
        return cls(boxes, order[0])

    def knows(self, key_id: str) -> bool:
        return key_id in self._boxes

    def encrypt(self, api_key: str, *, row_id: str, part: CredentialPart = "key") -> tuple[str, bytes]:
        box = self._boxes[self.current]
        return self.current, box.encrypt(api_key.encode(), purpose=_purpose(row_id, part))

    def decrypt(self, key_id: str, ciphertext: bytes, *, row_id: str, part: CredentialPart = "key") -> str:
        """The key in clear, for one call; raises DecryptionFailed or ConfigError (unknown key id)."""
        box = self._boxes.get(key_id)
        if box is None:
            raise ConfigError(
                f"provider key of row {row_id} was encrypted with unknown master key {key_id!r}"
            )
        return box.decrypt(ciphertext, purpose=_purpose(row_id, part)).decode()


def _purpose(row_id: str, part: CredentialPart) -> str:
    # Bound to the row and to the part: a key's ciphertext copied into the secret's column (or another
    # row's) does not open.
    return f"provider-api-{part}:{row_id}"
