"""Provider keys at rest: encrypted under the current master key, readable under any listed one."""

import pytest

from funmagic_kit.crypto import DecryptionFailed, generate_secret_key
from funmagic_kit.errors import ConfigError
from funmagic_providers.adapters.keyring import ProviderKeyring

OLD, NEW = generate_secret_key(), generate_secret_key()


def test_without_master_keys_the_secret_key_is_the_default_key() -> None:
    keyring = ProviderKeyring.from_settings("", OLD)
    key_id, ciphertext = keyring.encrypt("sk-live-123456789", row_id="row-1")
    assert key_id == "default"
    assert b"sk-live" not in ciphertext
    assert keyring.decrypt(key_id, ciphertext, row_id="row-1") == "sk-live-123456789"


def test_the_first_master_key_encrypts_and_the_others_still_decrypt() -> None:
    before = ProviderKeyring.from_settings(f"k1:{OLD}", "unused")
    _, old_ciphertext = before.encrypt("sk-old", row_id="r")
    after = ProviderKeyring.from_settings(f"k2:{NEW},k1:{OLD}", "unused")
    assert after.current == "k2"
    assert after.decrypt("k1", old_ciphertext, row_id="r") == "sk-old"
    assert after.encrypt("sk-new", row_id="r")[0] == "k2"


def test_a_ciphertext_is_bound_to_its_row() -> None:
    keyring = ProviderKeyring.from_settings("", OLD)
    key_id, ciphertext = keyring.encrypt("sk-secret", row_id="row-a")
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, ciphertext, row_id="row-b")


def test_a_wrong_master_key_fails_loudly() -> None:
    key_id, ciphertext = ProviderKeyring.from_settings("", OLD).encrypt("sk-secret", row_id="r")
    with pytest.raises(DecryptionFailed):
        ProviderKeyring.from_settings("", NEW).decrypt(key_id, ciphertext, row_id="r")
    with pytest.raises(ConfigError, match="unknown master key"):
        ProviderKeyring.from_settings(f"k9:{NEW}", "unused").decrypt("k1", ciphertext, row_id="r")


@pytest.mark.parametrize("value", ["nocolon", "k1:", ":abc", f"k1:{OLD},k1:{NEW}"])
def test_malformed_master_key_lists_are_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="PROVIDER_MASTER_KEYS"):
        ProviderKeyring.from_settings(value, OLD)


def test_a_secret_opens_only_as_a_secret_so_key_and_secret_cannot_be_swapped() -> None:
    keyring = ProviderKeyring.from_settings("", OLD)
    key_id, secret = keyring.encrypt("tencent-secret-key", row_id="row-1", part="secret")
    _, key = keyring.encrypt("AKIDsecretid", row_id="row-1")

    assert keyring.decrypt(key_id, secret, row_id="row-1", part="secret") == "tencent-secret-key"
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, secret, row_id="row-1")  # the secret's ciphertext put in the key's column
    with pytest.raises(DecryptionFailed):
        keyring.decrypt(key_id, key, row_id="row-1", part="secret")  # and the other way round
