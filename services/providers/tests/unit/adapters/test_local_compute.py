"""The local provider's computations: procedural images, background removal, styles, point clouds, meshes."""

from __future__ import annotations

import json
import struct
import zlib
from collections import deque
from io import BytesIO

import numpy as np
import pytest
from PIL import Image, ImageDraw

from funmagic_providers.adapters.local_compute import (
    LocalComputeError,
    generate_image,
    heightfield_glb,
    point_cloud_ply,
    remove_plain_background,
    stylize,
)

WHITE = (255, 255, 255)
DARK_GREEN = (0, 90, 30)
RED = (255, 0, 0)

PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1"), ("confidence", "<f4")]
)


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode_png(data: bytes) -> Image.Image:
    """`data` opened as an image, checking that it is a PNG."""
    image = Image.open(BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(decode_png(data))


def circle_scene(
    background: tuple[int, int, int], size: tuple[int, int] = (200, 160)
) -> tuple[Image.Image, np.ndarray]:
    """A red circle on a plain background, and the mask of the circle as drawn."""
    width, height = size
    box = (width * 0.3, height * 0.25, width * 0.7, height * 0.75)
    image = Image.new("RGB", size, background)
    ImageDraw.Draw(image).ellipse(box, fill=RED)
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    return image, np.asarray(mask) > 0


def gradient_with_square(size: tuple[int, int] = (120, 90)) -> Image.Image:
    """A colourful test picture: a diagonal gradient with a dark square in it."""
    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1), (xs + ys) % 256], axis=-1)
    rgb[height // 4 : height // 2, width // 4 : width // 2] = (20, 30, 40)
    return Image.fromarray(rgb.astype(np.uint8), "RGB")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG claiming width x height RGB pixels, with a few bytes of pixel data instead of the real amount."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    chunks = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


# --- generate_image --------------------------------------------------------------------------------


def test_a_generated_image_is_an_rgb_png_of_the_requested_size() -> None:
    image = decode_png(generate_image("a red fox in the snow", width=320, height=200))
    assert image.mode == "RGB"
    assert image.size == (320, 200)


def test_the_same_prompt_gives_identical_bytes() -> None:
    assert generate_image("a lighthouse at dusk") == generate_image("a lighthouse at dusk")


def test_different_prompts_give_visibly_different_pictures() -> None:
    first = pixels(generate_image("a lighthouse at dusk", width=128, height=128)).astype(int)
    second = pixels(generate_image("a lighthouse at dawn", width=128, height=128)).astype(int)
    assert np.abs(first - second).mean() > 20


def test_a_generated_image_is_not_a_flat_colour() -> None:
    rgb = pixels(generate_image("anything", width=128, height=128))
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50


@pytest.mark.parametrize("prompt", ["", "🦊 emoji", "x" * 10_000])
def test_any_prompt_text_gives_an_image(prompt: str) -> None:
    assert decode_png(generate_image(prompt, width=64, height=64)).size == (64, 64)


def test_the_size_limits_themselves_are_accepted() -> None:
    assert decode_png(generate_image("edges", width=64, height=2048)).size == (64, 2048)


@pytest.mark.parametrize(("width", "height"), [(63, 512), (512, 63), (2049, 512), (512, 2049), (0, 0)])
def test_a_size_out_of_range_is_refused(width: int, height: int) -> None:
    with pytest.raises(LocalComputeError, match=r"64\.\.2048"):
        generate_image("prompt", width=width, height=height)


# --- remove_plain_background -----------------------------------------------------------------------


@pytest.mark.parametrize("background", [WHITE, DARK_GREEN])
def test_the_plain_background_becomes_transparent_and_the_object_stays(background: tuple[int, ...]) -> None:
    scene, circle = circle_scene(background)
    result = decode_png(remove_plain_background(encode(scene)))
    assert result.mode == "RGBA"
    assert result.size == scene.size
    rgba = np.asarray(result)
    for corner in (rgba[0, 0], rgba[0, -1], rgba[-1, 0], rgba[-1, -1]):
        assert corner[3] == 0
    assert tuple(rgba[80, 100]) == (*RED, 255)
    transparent = rgba[..., 3] == 0
    assert transparent.mean() == pytest.approx(1 - circle.mean(), abs=0.002)
    # Lossless input: exactly the pixels outside the drawn circle are removed.
    assert np.array_equal(transparent, ~circle)
    assert np.array_equal(rgba[..., :3], np.asarray(scene))


def test_a_hole_of_background_colour_enclosed_by_the_object_stays_opaque() -> None:
    scene = Image.new("RGB", (120, 120), WHITE)
    ImageDraw.Draw(scene).ellipse((20, 20, 100, 100), fill=RED)
    ImageDraw.Draw(scene).ellipse((45, 45, 75, 75), fill=WHITE)
    alpha = pixels(remove_plain_background(encode(scene)))[..., 3]
    assert alpha[60, 60] == 255
    assert alpha[5, 5] == 0


def test_an_object_touching_the_border_is_kept_and_the_background_on_both_sides_removed() -> None:
    scene = Image.new("RGB", (100, 60), WHITE)
    ImageDraw.Draw(scene).rectangle((40, 0, 59, 59), fill=RED)  # a bar from top to bottom
    alpha = pixels(remove_plain_background(encode(scene)))[..., 3]
    assert (alpha[:, 40:60] == 255).all()
    assert (alpha[:, :40] == 0).all()
    assert (alpha[:, 60:] == 0).all()


def flood_from_border(mask: np.ndarray) -> np.ndarray:
    """Reference flood fill: the `mask` pixels 4-connected through `mask` to the border, by plain BFS."""
    height, width = mask.shape
    reached = np.zeros_like(mask)
    queue = deque(
        (y, x) for y in range(height) for x in range(width) if mask[y, x] and not 0 < y < height - 1
    )
    queue.extend((y, x) for y in range(1, height - 1) for x in (0, width - 1) if mask[y, x])
    for y, x in queue:
        reached[y, x] = True
    while queue:
        y, x = queue.popleft()
        for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
            if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not reached[ny, nx]:
                reached[ny, nx] = True
                queue.append((ny, nx))
    return reached


def test_a_winding_one_pixel_corridor_from_the_border_is_removed_all_along() -> None:
    # A maze of red walls with one white corridor, rows joined at alternating ends by one-pixel links,
    # inside a red wall with a single opening, inside a white frame (the background).
    corridor = np.zeros((41, 41), dtype=bool)
    for row in range(1, 40, 2):
        corridor[row, 1:40] = True
    for row in range(1, 38, 2):
        corridor[row : row + 3, 39 if row % 4 == 1 else 1] = True
    corridor[1, 0] = True
    scene = np.full((45, 45, 3), WHITE, dtype=np.uint8)
    scene[1:44, 1:44] = RED
    scene[2:43, 2:43][corridor] = WHITE
    scene[3, 1] = WHITE  # the opening
    alpha = pixels(remove_plain_background(encode(Image.fromarray(scene, "RGB"))))[..., 3]
    transparent = np.zeros((45, 45), dtype=bool)
    transparent[[0, -1], :] = transparent[:, [0, -1]] = True
    transparent[2:43, 2:43] = corridor
    transparent[3, 1] = True
    assert np.array_equal(alpha == 0, transparent)
    assert np.array_equal(transparent, flood_from_border((scene == WHITE).all(axis=-1)))


@pytest.mark.parametrize("seed", range(5))
def test_removal_matches_a_reference_flood_fill_on_random_patterns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    white = rng.random((30, 40)) < 0.58  # near the percolation threshold: many separate white regions
    white[0, :] = white[-1, :] = white[:, 0] = white[:, -1] = True
    white[1:-1, 1:-1] &= rng.random((28, 38)) < 0.95
    scene = np.where(white[..., None], WHITE, RED).astype(np.uint8)
    alpha = pixels(remove_plain_background(encode(Image.fromarray(scene, "RGB"))))[..., 3]
    expected = flood_from_border(white)
    assert not expected[white].all()  # some white regions are enclosed
    assert np.array_equal(alpha == 0, expected)


def test_a_jpeg_with_compression_noise_still_loses_its_background() -> None:
    scene, circle = circle_scene(WHITE)
    noisy = encode(scene, "JPEG", quality=70)
    assert not (np.asarray(Image.open(BytesIO(noisy)))[~circle] == WHITE).all()  # the noise is real
    rgba = pixels(remove_plain_background(noisy))
    assert rgba.shape == (160, 200, 4)
    for corner in (rgba[0, 0], rgba[0, -1], rgba[-1, 0], rgba[-1, -1]):
        assert corner[3] == 0
    assert rgba[80, 100, 3] == 255
    assert (rgba[..., 3] == 0).mean() == pytest.approx(1 - circle.mean(), abs=0.03)


def test_the_tolerance_decides_how_close_to_the_background_a_colour_is_removed() -> None:
    scene = Image.new("RGB", (60, 60), WHITE)
    ImageDraw.Draw(scene).rectangle((20, 20, 39, 39), fill=(245, 245, 245))  # near-white, distance ~17
    strict = pixels(remove_plain_background(encode(scene), tolerance=10))[..., 3]
    assert (strict[20:40, 20:40] == 255).all()
    assert (strict == 0).sum() == 60 * 60 - 20 * 20
    loose = pixels(remove_plain_background(encode(scene), tolerance=18))[..., 3]
    assert (loose == 0).all()


def test_an_already_transparent_area_stays_transparent_and_others_keep_their_alpha() -> None:
    rgba = np.zeros((50, 50, 4), dtype=np.uint8)  # transparent black all round
    rgba[10:40, 10:40] = (*RED, 128)  # a half-transparent red square
    alpha = pixels(remove_plain_background(encode(Image.fromarray(rgba, "RGBA"))))[..., 3]
    assert (alpha[10:40, 10:40] == 128).all()
    assert (alpha[:10] == 0).all()


def test_a_1024_square_image_is_processed() -> None:
    scene, circle = circle_scene(WHITE, size=(1024, 1024))
    rgba = pixels(remove_plain_background(encode(scene)))
    assert rgba.shape == (1024, 1024, 4)
    assert np.array_equal(rgba[..., 3] == 0, ~circle)


def test_a_negative_tolerance_is_refused() -> None:
    scene, _ = circle_scene(WHITE)
    with pytest.raises(LocalComputeError, match="tolerance"):
        remove_plain_background(encode(scene), tolerance=-1)


# --- input decoding (shared by every image function) -----------------------------------------------


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
def test_bytes_that_are_not_an_image_are_refused(data: bytes) -> None:
    with pytest.raises(LocalComputeError, match="not a decodable image"):
        remove_plain_background(data)


def test_a_truncated_image_is_refused() -> None:
    whole = encode(gradient_with_square())
    with pytest.raises(LocalComputeError):
        stylize(whole[: len(whole) // 2], style="posterize")


def test_an_image_format_outside_the_allowed_ones_is_refused() -> None:
    with pytest.raises(LocalComputeError):
        stylize(encode(gradient_with_square(), "BMP"), style="posterize")


def test_a_huge_image_is_refused_from_its_header_before_decoding() -> None:
    # 7000 x 7000 is over MAX_INPUT_PIXELS (and under Pillow's own bomb limit). The pixel data is missing,
    # so only a check made before decoding can refuse it as "too large": decoding would fail as corrupt.
    with pytest.raises(LocalComputeError, match="too large"):
        point_cloud_ply(png_header_only(7000, 7000))


def test_an_image_claiming_billions_of_pixels_is_refused_as_too_large() -> None:
    with pytest.raises(LocalComputeError, match="too large"):
        heightfield_glb(png_header_only(100_000, 100_000))


def test_a_gif_is_read_from_its_first_frame() -> None:
    frames = [Image.new("RGB", (20, 20), RED), Image.new("RGB", (20, 20), (0, 0, 255))]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    body = parse_ply(point_cloud_ply(gif)[0])[1]
    assert set(zip(body["r"], body["g"], body["b"], strict=True)) == {RED}


def test_a_webp_input_is_accepted() -> None:
    styled = decode_png(stylize(encode(gradient_with_square(), "WEBP", lossless=True), style="sketch"))
    assert styled.size == (120, 90)


# --- stylize -------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["vintage", "sketch", "posterize"])
def test_every_style_gives_a_png_of_the_same_size_that_differs_from_the_input(style: str) -> None:
    source = gradient_with_square()
    styled = decode_png(stylize(encode(source), style=style))
    assert styled.mode == "RGB"
    assert styled.size == source.size
    difference = np.abs(np.asarray(styled).astype(int) - np.asarray(source).astype(int))
    assert difference.mean() > 2


@pytest.mark.parametrize("style", ["vintage", "sketch", "posterize"])
def test_every_style_keeps_the_alpha_channel(style: str) -> None:
    rgba = np.dstack([np.asarray(gradient_with_square()), np.full((90, 120), 255, np.uint8)])
    rgba[:, :30, 3] = 0
    rgba[:, 30:60, 3] = 77
    styled = decode_png(stylize(encode(Image.fromarray(rgba, "RGBA")), style=style))
    assert styled.mode == "RGBA"
    assert np.array_equal(np.asarray(styled)[..., 3], rgba[..., 3])


@pytest.mark.parametrize("style", ["vintage", "sketch", "posterize"])
def test_a_style_is_deterministic(style: str) -> None:
    source = encode(gradient_with_square())
    assert stylize(source, style=style) == stylize(source, style=style)


def test_vintage_is_sepia_toned() -> None:
    rgb = pixels(stylize(encode(gradient_with_square()), style="vintage")).astype(int)
    assert (rgb[..., 0] >= rgb[..., 1]).all()
    assert (rgb[..., 1] >= rgb[..., 2]).all()
    assert (rgb[..., 0] - rgb[..., 2]).mean() > 20


def test_vintage_darkens_the_corners() -> None:
    grey = encode(Image.new("RGB", (200, 200), (180, 180, 180)))
    rgb = pixels(stylize(grey, style="vintage")).astype(float)
    centre = rgb[90:110, 90:110].mean()
    assert rgb[:20, :20].mean() < centre - 20
    assert rgb[-20:, -20:].mean() < centre - 20


def test_vintage_adds_grain() -> None:
    rgb = pixels(stylize(encode(Image.new("RGB", (200, 200), (128, 128, 128))), style="vintage"))
    assert rgb[90:110, 90:110, 0].std() > 3


def test_sketch_draws_dark_lines_on_edges_and_leaves_flat_areas_white() -> None:
    scene = Image.new("RGB", (100, 100), WHITE)
    ImageDraw.Draw(scene).rectangle((30, 30, 69, 69), fill=(0, 0, 0))
    grey = pixels(stylize(encode(scene), style="sketch"))
    assert (grey[..., 0] == grey[..., 1]).all()
    assert (grey[..., 1] == grey[..., 2]).all()
    assert grey[10, 10, 0] == 255  # flat white
    assert grey[50, 50, 0] == 255  # flat black inside the square is flat too
    assert grey[50, 30, 0] < 100  # the square's left edge


def test_posterize_leaves_at_most_four_levels_per_channel() -> None:
    rgb = pixels(stylize(encode(gradient_with_square()), style="posterize"))
    for channel in range(3):
        assert len(np.unique(rgb[..., channel])) <= 4


def test_an_unknown_style_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(LocalComputeError, match="vintage, sketch, posterize"):
        stylize(encode(gradient_with_square()), style="cubism")


# --- point_cloud_ply -------------------------------------------------------------------------------


def parse_ply(data: bytes) -> tuple[list[str], np.ndarray]:
    """The header lines and the vertex records of a binary little-endian PLY, checking its structure."""
    header, separator, body = data.partition(b"end_header\n")
    assert separator
    lines = header.decode("ascii").splitlines()
    assert lines[0] == "ply"
    assert lines[1] == "format binary_little_endian 1.0"
    elements = [line for line in lines if line.startswith("element ")]
    assert len(elements) == 1
    _, name, count = elements[0].split()
    assert name == "vertex"
    properties = [line for line in lines if line.startswith("property ")]
    assert properties == [
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "property float confidence",
    ]
    assert len(body) == int(count) * PLY_VERTEX.itemsize
    return lines, np.frombuffer(body, dtype=PLY_VERTEX)


def expected_stride(width: int, height: int, max_points: int) -> int:
    """The smallest stride whose sampling grid has at most max_points pixels, by trying them in turn."""
    stride = 1
    while len(range(0, width, stride)) * len(range(0, height, stride)) > max_points:
        stride += 1
    return stride


def speckled_rgba(width: int = 97, height: int = 61) -> np.ndarray:
    """Random colours, with a transparent left third and scattered transparent pixels."""
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    rgba[..., 3] = np.where(rng.random((height, width)) < 0.2, 0, 255)
    rgba[:, : width // 3, 3] = 0
    return rgba


@pytest.mark.parametrize("max_points", [1, 7, 100, 500, 1000, 20_000])
def test_the_vertex_count_is_the_non_transparent_pixels_on_the_sampling_grid(max_points: int) -> None:
    rgba = speckled_rgba()
    data, count = point_cloud_ply(encode(Image.fromarray(rgba, "RGBA")), max_points=max_points)
    _, vertices = parse_ply(data)
    stride = expected_stride(97, 61, max_points)
    assert count == len(vertices)
    assert count == int((rgba[::stride, ::stride, 3] != 0).sum())
    assert count <= max_points


def test_every_vertex_sits_on_a_visible_grid_pixel_and_has_its_colour() -> None:
    rgba = speckled_rgba()
    width, height, max_points = 97, 61, 800
    _, vertices = parse_ply(point_cloud_ply(encode(Image.fromarray(rgba, "RGBA")), max_points=max_points)[0])
    stride = expected_stride(width, height, max_points)
    # Undo the documented mapping: long side (width) spans [-1, 1], y points up.
    half = (width - 1) / 2
    cols = np.rint(vertices["x"] * half + (width - 1) / 2).astype(int)
    rows = np.rint((height - 1) / 2 - vertices["y"] * half).astype(int)
    assert (cols % stride == 0).all()
    assert (rows % stride == 0).all()
    assert (rgba[rows, cols, 3] != 0).all()
    assert np.array_equal(np.stack([vertices["r"], vertices["g"], vertices["b"]], -1), rgba[rows, cols, :3])
    assert len(set(zip(rows, cols, strict=True))) == len(vertices)


def test_coordinates_keep_the_aspect_ratio_with_y_up_and_z_from_luminance() -> None:
    rgb = np.full((21, 41, 3), 0, dtype=np.uint8)
    rgb[0] = WHITE  # top row white, everything else black
    _, vertices = parse_ply(point_cloud_ply(encode(Image.fromarray(rgb, "RGB")))[0])
    assert len(vertices) == 21 * 41
    assert vertices["x"].min() == -1.0
    assert vertices["x"].max() == 1.0
    assert vertices["y"].min() == pytest.approx(-0.5)
    assert vertices["y"].max() == pytest.approx(0.5)
    top = vertices["y"] == vertices["y"].max()
    assert np.allclose(vertices["z"][top], 0.5)
    assert (vertices["z"][~top] == 0).all()


def test_z_grows_with_luminance_up_to_half() -> None:
    rgba = speckled_rgba()
    _, vertices = parse_ply(point_cloud_ply(encode(Image.fromarray(rgba, "RGBA")))[0])
    luma = 0.299 * vertices["r"] + 0.587 * vertices["g"] + 0.114 * vertices["b"]
    assert np.allclose(vertices["z"], luma / 255 * 0.5, atol=1e-4)
    assert vertices["z"].min() >= 0
    assert vertices["z"].max() <= 0.5


def confidence_at(vertices: np.ndarray, width: int, height: int) -> np.ndarray:
    """The vertices' confidences laid back on the (height, width) pixel grid (stride 1), NaN where none."""
    half = (max(width, height) - 1) / 2
    cols = np.rint(vertices["x"] * half + (width - 1) / 2).astype(int)
    rows = np.rint((height - 1) / 2 - vertices["y"] * half).astype(int)
    grid = np.full((height, width), np.nan, dtype=np.float32)
    grid[rows, cols] = vertices["confidence"]
    return grid


def test_confidence_is_higher_where_the_picture_has_texture() -> None:
    # Left half flat grey, right half a fine checkerboard: same mean luma, very different contrast.
    rgb = np.full((40, 80, 3), 128, dtype=np.uint8)
    ys, xs = np.mgrid[0:40, 40:80]
    rgb[:, 40:] = np.where(((xs + ys) % 2 == 0)[..., None], 200, 56)
    _, vertices = parse_ply(point_cloud_ply(encode(Image.fromarray(rgb, "RGB")))[0])
    grid = confidence_at(vertices, 80, 40)
    assert np.allclose(grid[:, :35], 0.2)  # flat: the floor
    assert (grid[:, 45:] > 0.99).all()  # strong texture: nearly certain
    assert ((vertices["confidence"] >= 0) & (vertices["confidence"] <= 1)).all()


def test_confidence_drops_towards_the_silhouette() -> None:
    # A flat opaque square in a transparent frame: confidence grows with the distance from the edge.
    rgba = np.zeros((30, 30, 4), dtype=np.uint8)
    rgba[5:25, 5:25] = (90, 120, 200, 255)
    _, vertices = parse_ply(point_cloud_ply(encode(Image.fromarray(rgba, "RGBA")))[0])
    grid = confidence_at(vertices, 30, 30)
    row = grid[15, 5:16]  # from the left edge of the square to its middle
    assert row[0] < row[1] < row[2] < row[3]
    assert row[3] == pytest.approx(0.2, abs=1e-5)  # three steps in: only the (flat) texture counts
    assert np.allclose(row[3:], 0.2, atol=1e-5)
    assert row[0] == pytest.approx(0.2 / 4, abs=1e-5)  # next to transparency: a quarter


def test_the_point_cloud_is_the_same_on_every_run() -> None:
    data = encode(Image.fromarray(speckled_rgba(), "RGBA"))
    assert point_cloud_ply(data)[0] == point_cloud_ply(data)[0]


def test_a_fully_transparent_image_gives_an_empty_point_cloud() -> None:
    data, count = point_cloud_ply(encode(Image.new("RGBA", (30, 30), (0, 0, 0, 0))))
    assert count == 0
    assert len(parse_ply(data)[1]) == 0


def test_a_non_positive_max_points_is_refused() -> None:
    with pytest.raises(LocalComputeError, match="max_points"):
        point_cloud_ply(encode(gradient_with_square()), max_points=0)


# --- heightfield_glb -------------------------------------------------------------------------------

COMPONENTS = {"SCALAR": 1, "VEC3": 3, "VEC4": 4}
DTYPES = {5121: np.dtype("u1"), 5125: np.dtype("<u4"), 5126: np.dtype("<f4")}


def parse_glb(data: bytes) -> tuple[dict, bytes]:
    """The JSON document and the BIN chunk of a GLB, checking its framing."""
    magic, version, total = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF"
    assert version == 2
    assert total == len(data)
    json_length, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A
    assert json_length % 4 == 0
    document = json.loads(data[20 : 20 + json_length])
    bin_length, bin_type = struct.unpack_from("<II", data, 20 + json_length)
    assert bin_type == 0x004E4942
    assert bin_length % 4 == 0
    assert 28 + json_length + bin_length == total
    return document, data[28 + json_length :]


def read_accessor(document: dict, binary: bytes, index: int) -> np.ndarray:
    """The values of accessor `index` as a (count, components) array, checking it fits its view."""
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    dtype = DTYPES[accessor["componentType"]]
    width = COMPONENTS[accessor["type"]]
    offset = view.get("byteOffset", 0) + accessor.get("byteOffset", 0)
    assert offset % 4 == 0
    assert accessor["count"] * width * dtype.itemsize <= view["byteLength"]
    assert view["byteOffset"] + view["byteLength"] <= document["buffers"][0]["byteLength"] <= len(binary)
    values = np.frombuffer(binary, dtype=dtype, count=accessor["count"] * width, offset=offset)
    return values.reshape(accessor["count"], width)


def mesh_arrays(data: bytes) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
    """The document, positions (n, 3), colours (n, 4) and indices (m,) of a heightfield GLB."""
    document, binary = parse_glb(data)
    (primitive,) = document["meshes"][0]["primitives"]
    positions = read_accessor(document, binary, primitive["attributes"]["POSITION"])
    colours = read_accessor(document, binary, primitive["attributes"]["COLOR_0"])
    indices = read_accessor(document, binary, primitive["indices"]).ravel()
    return document, positions, colours, indices


@pytest.mark.parametrize("grid", [2, 17, 64])
def test_a_heightfield_is_a_grid_of_vertices_with_two_triangles_per_cell(grid: int) -> None:
    glb = heightfield_glb(encode(gradient_with_square()), grid=grid)
    document, positions, colours, indices = mesh_arrays(glb)
    (primitive,) = document["meshes"][0]["primitives"]
    accessors = document["accessors"]
    assert accessors[primitive["attributes"]["POSITION"]]["count"] == grid * grid
    assert accessors[primitive["attributes"]["COLOR_0"]]["count"] == grid * grid
    assert accessors[primitive["indices"]]["count"] == 6 * (grid - 1) ** 2
    assert len(positions) == len(colours) == grid * grid
    assert indices.max() < grid * grid
    assert primitive.get("mode", 4) == 4


def test_the_glb_describes_one_scene_with_one_node_and_one_mesh() -> None:
    document, _ = parse_glb(heightfield_glb(encode(gradient_with_square()), grid=8))
    assert document["asset"]["version"] == "2.0"
    assert len(document["meshes"]) == 1
    assert len(document["nodes"]) == 1
    assert document["nodes"][0]["mesh"] == 0
    assert document["scenes"][document.get("scene", 0)]["nodes"] == [0]
    (primitive,) = document["meshes"][0]["primitives"]
    position = document["accessors"][primitive["attributes"]["POSITION"]]
    assert (position["componentType"], position["type"]) == (5126, "VEC3")
    index = document["accessors"][primitive["indices"]]
    assert (index["componentType"], index["type"]) == (5125, "SCALAR")
    colour = document["accessors"][primitive["attributes"]["COLOR_0"]]
    assert colour["type"] == "VEC4"
    assert colour["componentType"] == 5126 or (colour["componentType"] == 5121 and colour["normalized"])


def test_position_min_and_max_are_the_bounds_of_the_stored_positions() -> None:
    document, positions, _, _ = mesh_arrays(heightfield_glb(encode(gradient_with_square()), grid=33))
    (primitive,) = document["meshes"][0]["primitives"]
    accessor = document["accessors"][primitive["attributes"]["POSITION"]]
    low, high = np.array(accessor["min"]), np.array(accessor["max"])
    assert (positions >= low).all()
    assert (positions <= high).all()
    assert np.array_equal(positions.min(axis=0), low)  # tight, as glTF validators demand
    assert np.array_equal(positions.max(axis=0), high)


def test_the_xy_extent_keeps_the_aspect_ratio_and_heights_follow_luminance() -> None:
    scene = Image.new("RGB", (200, 100), (0, 0, 0))
    ImageDraw.Draw(scene).rectangle((100, 0, 199, 99), fill=WHITE)  # right half white
    _, positions, _, _ = mesh_arrays(heightfield_glb(encode(scene), grid=16))
    assert positions[:, 0].min() == pytest.approx(-1)
    assert positions[:, 0].max() == pytest.approx(1)
    assert positions[:, 1].min() == pytest.approx(-0.5)
    assert positions[:, 1].max() == pytest.approx(0.5)
    left, right = positions[positions[:, 0] < -0.5], positions[positions[:, 0] > 0.5]
    assert np.allclose(left[:, 2], 0)
    assert np.allclose(right[:, 2], 0.5)


def test_vertex_colours_come_from_the_pixels() -> None:
    _, _, colours, _ = mesh_arrays(heightfield_glb(encode(Image.new("RGB", (50, 40), (10, 200, 30))), grid=9))
    assert (colours == (10, 200, 30, 255)).all()


def test_triangles_whose_corners_are_all_transparent_are_left_out() -> None:
    rgba = np.full((64, 64, 4), 255, dtype=np.uint8)
    rgba[:, :32, 3] = 0  # left half transparent
    _, _, colours, indices = mesh_arrays(heightfield_glb(encode(Image.fromarray(rgba, "RGBA")), grid=32))
    triangles = indices.reshape(-1, 3)
    assert 0 < len(triangles) < 2 * 31 * 31
    assert (colours[triangles, 3] != 0).any(axis=1).all()


def test_a_fully_transparent_image_is_refused_for_a_mesh() -> None:
    with pytest.raises(LocalComputeError, match="transparent"):
        heightfield_glb(encode(Image.new("RGBA", (30, 30), (0, 0, 0, 0))))


@pytest.mark.parametrize("grid", [1, 0, 513])
def test_a_grid_out_of_range_is_refused(grid: int) -> None:
    with pytest.raises(LocalComputeError, match=r"2\.\.512"):
        heightfield_glb(encode(gradient_with_square()), grid=grid)
