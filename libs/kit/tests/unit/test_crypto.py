"""Secrets at rest: AES-256-GCM bound to a purpose."""

import base64
import os

import pytest

from funmagic_kit.crypto import DecryptionFailed, SecretBox, generate_secret_key
from funmagic_kit.errors import ConfigError

PLAINTEXT = b"-----BEGIN PRIVATE KEY----- not really"


@pytest.fixture
def box() -> SecretBox:
    return SecretBox.from_base64(generate_secret_key())


def test_a_value_decrypts_to_what_was_encrypted(box: SecretBox) -> None:
    ciphertext = box.encrypt(PLAINTEXT, purpose="signing-key")

    assert PLAINTEXT not in ciphertext
    assert box.decrypt(ciphertext, purpose="signing-key") == PLAINTEXT


def test_an_empty_value_round_trips(box: SecretBox) -> None:
    assert box.decrypt(box.encrypt(b"", purpose="p"), purpose="p") == b""


def test_a_value_encrypted_for_one_purpose_does_not_decrypt_for_another(box: SecretBox) -> None:
    ciphertext = box.encrypt(PLAINTEXT, purpose="signing-key")

    with pytest.raises(DecryptionFailed, match="oauth-token"):
        box.decrypt(ciphertext, purpose="oauth-token")


def test_changing_any_byte_of_the_encrypted_value_makes_it_fail(box: SecretBox) -> None:
    ciphertext = box.encrypt(PLAINTEXT, purpose="signing-key")

    for index in range(len(ciphertext)):
        tampered = bytearray(ciphertext)
        tampered[index] ^= 0x01
        with pytest.raises(DecryptionFailed):
            box.decrypt(bytes(tampered), purpose="signing-key")


@pytest.mark.parametrize("cut", [0, 1, 13, 28], ids=["empty", "version only", "no tag", "tag cut short"])
def test_a_truncated_value_fails(box: SecretBox, cut: int) -> None:
    ciphertext = box.encrypt(b"", purpose="p")  # version + nonce + 16-byte tag = 29 bytes

    with pytest.raises(DecryptionFailed):
        box.decrypt(ciphertext[:cut], purpose="p")


def test_a_value_encrypted_with_another_key_fails(box: SecretBox) -> None:
    other = SecretBox(os.urandom(32))

    with pytest.raises(DecryptionFailed):
        box.decrypt(other.encrypt(PLAINTEXT, purpose="signing-key"), purpose="signing-key")


def test_every_encryption_of_the_same_value_differs(box: SecretBox) -> None:
    ciphertexts = {box.encrypt(PLAINTEXT, purpose="signing-key") for _ in range(50)}
    nonces = {c[1:13] for c in ciphertexts}

    assert len(ciphertexts) == 50
    assert len(nonces) == 50


def test_the_same_key_in_another_process_decrypts_it() -> None:
    key = generate_secret_key()

    ciphertext = SecretBox.from_base64(key).encrypt(PLAINTEXT, purpose="p")

    assert SecretBox.from_base64(f"  {key}\n").decrypt(ciphertext, purpose="p") == PLAINTEXT


def test_a_key_without_padding_is_accepted() -> None:
    key = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")

    box = SecretBox.from_base64(key)

    assert box.decrypt(box.encrypt(b"x", purpose="p"), purpose="p") == b"x"


@pytest.mark.parametrize(
    "value",
    ["not base64 at all!", "a", base64.urlsafe_b64encode(b"\0" * 16).decode(), ""],
    ids=["not base64", "one character", "16 bytes", "empty"],
)
def test_a_key_that_is_not_32_bytes_of_base64_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        SecretBox.from_base64(value)


@pytest.mark.parametrize("length", [0, 16, 24, 31, 33, 64])
def test_a_raw_key_of_the_wrong_length_is_a_config_error(length: int) -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        SecretBox(os.urandom(length))
