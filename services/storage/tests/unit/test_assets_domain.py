"""The storage rules: safe file names, what a user may upload, which bytes prove an image, keys and limits,
what kind of thing an asset is, and which outputs go with a deleted task."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from funmagic_kit.settings import load_settings
from funmagic_storage.application.assets import StoragePolicy
from funmagic_storage.config import StorageSettings
from funmagic_storage.domain.assets import (
    MAX_FILENAME_BYTES,
    USER_UPLOAD_TYPES,
    AssetRecord,
    UploadRefused,
    asset_kind,
    check_module,
    check_upload,
    outputs_deleted_with_their_tasks,
    public_key,
    published_assets_outlive_their_task,
    sanitize_filename,
    sniff_image_type,
    storage_key,
)

MB = 1024 * 1024


def refused(**overrides: object) -> UploadRefused:
    """The refusal check_upload raises for a valid upload changed by `overrides`."""
    arguments: dict[str, object] = {
        "content_type": "image/png",
        "size": 1000,
        "module": "uploads",
        "max_bytes": 5 * MB,
        "allowed_types": USER_UPLOAD_TYPES,
        **overrides,
    }
    with pytest.raises(UploadRefused) as caught:
        check_upload(**arguments)  # type: ignore[arg-type]
    return caught.value


def assert_safe(name: str) -> None:
    assert "/" not in name
    assert "\\" not in name
    assert ".." not in name
    assert not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in name)
    assert 0 < len(name.encode()) <= MAX_FILENAME_BYTES
    assert name == unicodedata.normalize("NFC", name)


# --- sanitize_filename: paths ---------------------------------------------------------------------


def test_a_path_traversal_keeps_only_a_harmless_name() -> None:
    name = sanitize_filename("../../etc/passwd")
    assert name == "etc_passwd"
    assert_safe(name)


def test_a_forward_slash_becomes_an_underscore() -> None:
    assert sanitize_filename("a/b.png") == "a_b.png"


def test_a_backslash_becomes_an_underscore() -> None:
    assert sanitize_filename("a\\b.png") == "a_b.png"


def test_a_windows_traversal_keeps_only_a_harmless_name() -> None:
    name = sanitize_filename("..\\..\\windows\\system32\\cmd.exe")
    assert name == "windows_system32_cmd.exe"
    assert_safe(name)


def test_repeated_dots_inside_a_name_collapse_to_one() -> None:
    assert sanitize_filename("holiday..photo...png") == "holiday.photo.png"


@pytest.mark.parametrize("name", ["..", ".", "...", ". . .", "", "   ", "_", "._.", "/", "\\", "../"])
def test_a_name_with_nothing_left_becomes_file(name: str) -> None:
    assert sanitize_filename(name) == "file"


def test_leading_dots_are_dropped_so_no_hidden_file_is_made() -> None:
    assert sanitize_filename(".bashrc") == "bashrc"
    assert sanitize_filename(".htaccess") == "htaccess"


# --- sanitize_filename: length --------------------------------------------------------------------


def test_a_300_character_name_is_cut_to_120_bytes_keeping_its_extension() -> None:
    name = sanitize_filename("x" * 296 + ".png")
    assert len(name.encode()) == MAX_FILENAME_BYTES
    assert name.endswith(".png")
    assert name == "x" * (MAX_FILENAME_BYTES - 4) + ".png"


def test_a_long_multibyte_name_is_cut_on_a_character_boundary_keeping_its_extension() -> None:
    name = sanitize_filename("é" * 300 + ".jpeg")
    encoded = name.encode()
    assert len(encoded) <= MAX_FILENAME_BYTES
    assert len(encoded) > MAX_FILENAME_BYTES - 2  # as much of the name as fits (é is two bytes)
    assert name.endswith(".jpeg")
    assert set(name.removesuffix(".jpeg")) == {"é"}
    encoded.decode()  # never a half character


def test_a_long_emoji_name_is_cut_on_a_character_boundary() -> None:
    name = sanitize_filename("😀" * 100 + ".png")
    assert len(name.encode()) <= MAX_FILENAME_BYTES
    assert name.endswith(".png")
    assert set(name.removesuffix(".png")) == {"😀"}


def test_a_cut_that_ends_in_spaces_or_dots_trims_them() -> None:
    name = sanitize_filename("x" * 115 + " . . .  more.png")
    assert name.endswith(".png")
    stem = name.removesuffix(".png")
    assert not stem.endswith((" ", ".", "_"))
    assert len(name.encode()) <= MAX_FILENAME_BYTES


def test_a_very_long_extension_is_not_treated_as_an_extension() -> None:
    # More than 16 bytes after the last dot: that is part of the name, cut like the rest.
    name = sanitize_filename("a." + "x" * 300)
    assert len(name.encode()) == MAX_FILENAME_BYTES
    assert name.startswith("a.x")
    assert_safe(name)


def test_an_extension_of_sixteen_bytes_is_kept_and_seventeen_is_not() -> None:
    kept = sanitize_filename("y" * 200 + "." + "e" * 16)
    assert kept.endswith("." + "e" * 16)
    assert len(kept.encode()) == MAX_FILENAME_BYTES
    not_kept = sanitize_filename("y" * 200 + "." + "e" * 17)
    assert not_kept == "y" * MAX_FILENAME_BYTES


def test_a_name_under_the_limit_is_left_alone() -> None:
    assert sanitize_filename("Report 2026 (final).png") == "Report 2026 (final).png"


# --- sanitize_filename: characters ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["😀.png", "photo 🐱 cat.webp", "日本語のファイル.jpg", "Ünïcødé.gif"])
def test_emoji_and_non_latin_names_are_kept(name: str) -> None:
    assert sanitize_filename(name) == name


def test_accented_names_are_normalised_to_nfc() -> None:
    decomposed = "cafe\u0301 cre\u0300me.png"
    name = sanitize_filename(decomposed)
    assert name == "café crème.png"
    assert name == unicodedata.normalize("NFC", decomposed)
    assert len(name) == len("café crème.png")


def test_control_characters_are_removed() -> None:
    assert sanitize_filename("a\x00b\x1fc\x7fd\x9b.png") == "abcd.png"


def test_newlines_and_tabs_are_removed() -> None:
    name = sanitize_filename("line\r\nbreak\ttab.png")
    assert name == "linebreaktab.png"


def test_a_right_to_left_override_cannot_disguise_the_extension() -> None:
    # "photo\u202egnp.exe" shows as "photoexe.png" in a right-to-left aware viewer.
    name = sanitize_filename("photo\u202egnp.exe")
    assert name == "photognp.exe"
    assert "\u202e" not in name


def test_zero_width_and_byte_order_marks_are_removed() -> None:
    assert sanitize_filename("\ufefffile\u200b.png") == "file.png"


def test_runs_of_whitespace_become_one_space_and_ends_are_trimmed() -> None:
    assert sanitize_filename("  my \u00a0\u2003  photo.png  ") == "my photo.png"
    assert sanitize_filename("my photo  .png") == "my photo.png"


def test_every_sanitized_name_is_safe() -> None:
    nasty = [
        "../../etc/passwd",
        "..\\..\\boot.ini",
        "a" * 1000,
        "😀" * 500,
        "\x00" * 10 + ".png",
        "..." + "/" * 50 + "...",
        "e\u0301" * 200 + ".png",
        "name." + "ext" * 100,
        "\u202e\u200f\u200e.png",
    ]
    for raw in nasty:
        assert_safe(sanitize_filename(raw))


# --- check_upload ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", sorted(USER_UPLOAD_TYPES))
def test_every_raster_image_type_is_accepted(content_type: str) -> None:
    check_upload(
        content_type=content_type, size=1, module="uploads", max_bytes=5 * MB, allowed_types=USER_UPLOAD_TYPES
    )


def test_a_type_with_parameters_and_capitals_is_accepted() -> None:
    check_upload(
        content_type=" IMAGE/PNG ; charset=binary",
        size=1,
        module="uploads",
        max_bytes=5 * MB,
        allowed_types=USER_UPLOAD_TYPES,
    )


@pytest.mark.parametrize(
    "content_type",
    [
        "image/svg+xml",
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/HTML",
        "application/xhtml+xml",
        "application/javascript",
        "text/javascript",
        "application/xml",
        "text/xml",
    ],
)
def test_svg_html_and_scripts_are_refused_as_active_content(content_type: str) -> None:
    assert refused(content_type=content_type).code == "active_content"


def test_active_content_is_refused_even_when_a_policy_lists_it() -> None:
    allowed = USER_UPLOAD_TYPES | {"image/svg+xml"}
    assert refused(content_type="image/svg+xml", allowed_types=allowed).code == "active_content"


@pytest.mark.parametrize(
    "content_type",
    ["application/pdf", "image/bmp", "image/tiff", "video/mp4", "application/octet-stream", ""],
)
def test_unsupported_types_are_refused(content_type: str) -> None:
    assert refused(content_type=content_type).code == "unsupported_type"


@pytest.mark.parametrize("size", [0, -1])
def test_an_empty_file_is_refused(size: int) -> None:
    assert refused(size=size).code == "empty_file"


def test_a_file_over_the_limit_is_refused_and_one_at_the_limit_is_not() -> None:
    assert refused(size=5 * MB + 1).code == "too_large"
    check_upload(
        content_type="image/png",
        size=5 * MB,
        module="uploads",
        max_bytes=5 * MB,
        allowed_types=USER_UPLOAD_TYPES,
    )


def test_the_size_limit_of_a_module_comes_from_the_policy() -> None:
    policy = StoragePolicy(
        bucket_public="pub",
        bucket_private="priv",
        bucket_admin="adm",
        cdn_url="http://cdn",
        max_bytes=20 * MB,
        module_max_bytes={"avatar": 2 * MB},
    )
    assert policy.limit_for("avatar") == 2 * MB
    assert policy.limit_for("uploads") == 20 * MB
    error = refused(module="avatar", size=3 * MB, max_bytes=policy.limit_for("avatar"))
    assert error.code == "too_large"
    assert "avatar" in str(error)
    check_upload(
        content_type="image/png",
        size=3 * MB,
        module="uploads",
        max_bytes=policy.limit_for("uploads"),
        allowed_types=USER_UPLOAD_TYPES,
    )


def test_module_limits_are_read_from_the_settings() -> None:
    settings = load_settings(
        StorageSettings,
        env={
            "DATABASE_URL": "postgresql://u:p@localhost/db",
            "KAFKA_BOOTSTRAP_SERVERS": "localhost:9092",
            "REDIS_URL": "redis://localhost:6379/0",
            "INTERNAL_API_TOKEN": "t" * 32,
            "AUTH_JWKS_URL": "http://identity/.well-known/jwks.json",
            "S3_ENDPOINT": "http://s3",
            "S3_ACCESS_KEY": "a",
            "S3_SECRET_KEY": "s",
            "CDN_URL": "http://cdn",
            "UPLOAD_MODULE_MAX_BYTES": "avatar=2097152, image-gen=31457280,",
        },
    )
    assert settings.module_limits() == {"avatar": 2097152, "image-gen": 31457280}


@pytest.mark.parametrize(
    "module",
    [
        "",
        "Avatar",
        "image_gen",
        "-leading",
        "a" * 41,
        "a/b",
        "../x",
        "a b",
        "ava.tar",
        "avatar\n",
        "avatar\r\n",
        "\navatar",
        "avatär",
    ],
)
def test_bad_module_names_are_refused(module: str) -> None:
    assert refused(module=module).code == "invalid_module"
    with pytest.raises(UploadRefused):
        check_module(module)


@pytest.mark.parametrize("module", ["a", "uploads", "image-gen", "3d-models", "a" * 40])
def test_good_module_names_are_accepted(module: str) -> None:
    assert check_module(module) == module


def test_a_trailing_newline_cannot_dodge_a_module_limit() -> None:
    # "avatar\n" is not "avatar": were it accepted, its limit would be the default one, not avatar's.
    policy = StoragePolicy(
        bucket_public="pub",
        bucket_private="priv",
        bucket_admin="adm",
        cdn_url="http://cdn",
        max_bytes=20 * MB,
        module_max_bytes={"avatar": 2 * MB},
    )
    assert policy.limit_for("avatar\n") == 20 * MB
    assert refused(module="avatar\n", size=3 * MB, max_bytes=policy.limit_for("avatar\n")).code == (
        "invalid_module"
    )


def test_the_module_is_checked_before_the_type() -> None:
    assert refused(module="BAD", content_type="text/html").code == "invalid_module"


# --- sniff_image_type -----------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 "
GIF87 = b"GIF87a\x01\x00\x01\x00"
GIF89 = b"GIF89a\x01\x00\x01\x00"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (b"\xff\xd8\xff\xdb", "image/jpeg"),
        (WEBP, "image/webp"),
        (GIF87, "image/gif"),
        (GIF89, "image/gif"),
    ],
)
def test_image_headers_are_recognised(head: bytes, expected: str) -> None:
    assert sniff_image_type(head) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, world",
        b"<svg xmlns='http://www.w3.org/2000/svg'>",
        b"<!DOCTYPE html><html>",
        b"\x89PNG\r\n",  # cut short
        b"\x89PNX\r\n\x1a\n",
        b"\xff\xd8",
        b"RIFF\x24\x00\x00\x00WAVEfmt ",  # a RIFF that is not WEBP
        b"RIFF",
        b"GIF88a",
        b"%PDF-1.7",
        b"\x00" * 32,
    ],
)
def test_garbage_is_not_an_image(head: bytes) -> None:
    assert sniff_image_type(head) is None


def test_an_image_signature_not_at_the_start_does_not_count() -> None:
    assert sniff_image_type(b"junk" + PNG) is None


# --- keys -----------------------------------------------------------------------------------------


def test_a_storage_key_is_owner_module_time_and_name() -> None:
    assert storage_key("u1", "avatar", 1700000000123, "me.png") == "u1/avatar/1700000000123_me.png"


def test_a_public_key_lives_under_shared() -> None:
    assert public_key("u1", "a1", "me.png") == "shared/u1/a1/me.png"


def test_buckets_follow_visibility() -> None:
    policy = StoragePolicy(
        bucket_public="pub", bucket_private="priv", bucket_admin="adm", cdn_url="http://cdn"
    )
    assert policy.bucket_for("public") == "pub"
    assert policy.bucket_for("private") == "priv"
    assert policy.bucket_for("admin-private") == "adm"

    assert policy.visibility_of("adm") == "admin-private"
    assert policy.visibility_of("priv") == "private"


# --- kinds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mime_type", "kind"),
    [
        ("image/png", "image"),
        ("image/jpeg", "image"),
        ("IMAGE/WEBP; q=1", "image"),
        ("image/svg+xml", "image"),
        ("model/gltf-binary", "model"),
        ("model/gltf+json", "model"),
        ("model/obj", "model"),
        ("application/x-ply", "pointcloud"),
        ("model/ply", "pointcloud"),
        ("model/stl", "other"),
        ("application/json", "other"),
        ("application/octet-stream", "other"),
        ("video/mp4", "other"),
        ("", "other"),
    ],
)
def test_the_kind_of_an_asset_follows_its_mime_type(mime_type: str, kind: str) -> None:
    assert asset_kind(mime_type) == kind


# --- outputs of deleted tasks ---------------------------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OUTPUT = AssetRecord(
    id="a-1",
    user_id="u-1",
    bucket="priv",
    storage_key="u-1/image-gen/1_out.png",
    visibility="private",
    module="image-gen",
    filename="out.png",
    mime_type="image/png",
    kind="image",
    size=10,
    task_id="t-1",
    public_key=None,
    created_at=NOW,
    updated_at=NOW,
)


def test_given_a_deleted_tasks_private_and_admin_only_outputs_when_deleted_then_they_go() -> None:
    private = OUTPUT
    admin_only = replace(OUTPUT, id="a-2", visibility="admin-private", bucket="adm", task_id="t-2")

    doomed = outputs_deleted_with_their_tasks([private, admin_only], user_id="u-1", task_ids=["t-1", "t-2"])

    assert doomed == [private, admin_only]


def test_given_a_published_output_when_its_task_is_deleted_then_it_stays() -> None:
    published = replace(OUTPUT, visibility="public", public_key="shared/u-1/a-1/out.png")

    assert published_assets_outlive_their_task(published)
    assert not published_assets_outlive_their_task(OUTPUT)
    assert outputs_deleted_with_their_tasks([published], user_id="u-1", task_ids=["t-1"]) == []


def test_outputs_of_other_tasks_other_users_or_no_task_stay() -> None:
    others = [
        replace(OUTPUT, id="a-2", task_id="t-9"),
        replace(OUTPUT, id="a-3", user_id="u-2"),
        replace(OUTPUT, id="a-4", task_id=None),
    ]

    assert outputs_deleted_with_their_tasks(others, user_id="u-1", task_ids=["t-1"]) == []
