"""The "local" provider's computations: real image work with Pillow and numpy, no API key, no network.

Every function is pure: bytes in, bytes out, no I/O, no global state, and the same input always gives the
same output. Inputs are decoded defensively (known formats only, pixel budget checked before decoding), and
anything that can't be processed raises LocalComputeError.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
import struct
from io import BytesIO

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MAX_INPUT_PIXELS = 40_000_000

ALLOWED_INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
GENERATED_SIZE_RANGE = (64, 2048)
GRID_RANGE = (2, 512)
STYLES = ("vintage", "sketch", "posterize")

# The relief height of point clouds and heightfields, for white; the xy extent is [-1, 1] on the long side.
RELIEF_HEIGHT = 0.5

# Rec. 601 luma, the weights Pillow itself uses for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# A fixed seed so vintage grain is the same on every run (the output must be deterministic).
_GRAIN_SEED = 0x5EED_F11B

_SEPIA = np.array(
    [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
    dtype=np.float32,
)

_GLB_MAGIC = b"glTF"
_GLB_JSON = 0x4E4F534A
_GLB_BIN = 0x004E4942
_GL_FLOAT = 5126
_GL_UNSIGNED_BYTE = 5121
_GL_UNSIGNED_INT = 5125
_GL_ARRAY_BUFFER = 34962
_GL_ELEMENT_ARRAY_BUFFER = 34963
_GL_TRIANGLES = 4


class LocalComputeError(ValueError):
    """The input can't be processed (not an image, too large, ...)."""


# --- decoding and encoding -------------------------------------------------------------------------


def decode_image(data: bytes) -> Image.Image:
    """The first frame of `data` as an RGB image, or RGBA if it carries transparency.

    Only PNG, JPEG, WEBP and GIF are accepted, and the pixel count is checked from the header before any
    pixel is decoded, so a decompression bomb is refused without being expanded.
    """
    try:
        # `formats` keeps Pillow from trying its other (rarer, less hardened) decoders on untrusted bytes.
        image = Image.open(BytesIO(data), formats=list(ALLOWED_INPUT_FORMATS))
    except Image.DecompressionBombError as exc:
        raise LocalComputeError(f"image too large: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for garbage input; all mean "not an image".
        raise LocalComputeError(f"not a decodable image ({', '.join(ALLOWED_INPUT_FORMATS)})") from exc
    if image.format not in ALLOWED_INPUT_FORMATS:
        raise LocalComputeError(f"unsupported image format {image.format!r}")
    width, height = image.size
    if width * height > MAX_INPUT_PIXELS:
        raise LocalComputeError(f"image too large: {width}x{height} is over {MAX_INPUT_PIXELS} pixels")
    if width == 0 or height == 0:
        raise LocalComputeError("image has no pixels")
    try:
        image.load()  # for GIFs this is the first frame: Image.open stays on frame 0
        return _to_rgb_or_rgba(image)
    except Exception as exc:  # truncated or corrupt pixel data surfaces only when decoding
        raise LocalComputeError(f"corrupt {image.format} image: {exc}") from exc


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """`image` in RGB, or RGBA when it has an alpha channel or a transparent palette entry."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        # 16-bit greyscale PNG: a plain convert would clip everything above 255 to white.
        grey = (np.asarray(image, dtype=np.uint32) // 257).astype(np.uint8)
        image = Image.fromarray(grey)
    if image.has_transparency_data:
        return image.convert("RGBA")
    return image.convert("RGB")


def _png(image: Image.Image) -> bytes:
    """`image` encoded as PNG."""
    buffer = BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _check_range(name: str, value: int, bounds: tuple[int, int]) -> None:
    """Raise LocalComputeError unless `value` is an int within `bounds` (inclusive)."""
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LocalComputeError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def _split_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """The RGB pixels of `image` as (h, w, 3) uint8, and its alpha as (h, w) uint8 or None."""
    pixels = np.asarray(image)
    if image.mode == "RGBA":
        return pixels[..., :3], pixels[..., 3]
    return pixels, None


def _join_alpha(rgb: np.ndarray, alpha: np.ndarray | None) -> Image.Image:
    """An RGB image from (h, w, 3) uint8 pixels, RGBA when `alpha` is given."""
    if alpha is None:
        return Image.fromarray(rgb, "RGB")
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """Luma of (..., 3) uint8 pixels in 0..255 as float32."""
    return rgb.astype(np.float32) @ _LUMA


# --- generate_image --------------------------------------------------------------------------------


class _HashStream:
    """Deterministic numbers in [0, 1) drawn from a seed by hashing a counter.

    Hash-based rather than numpy's or Python's RNGs because their streams may change between versions,
    and the same prompt must give the same picture on every install.
    """

    def __init__(self, seed: bytes) -> None:
        self._seed = seed
        self._counter = 0

    def unit(self) -> float:
        """The next number in [0, 1)."""
        block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
        self._counter += 1
        return int.from_bytes(block[:8], "big") / 2**64

    def between(self, low: float, high: float) -> float:
        """The next number in [low, high)."""
        return low + (high - low) * self.unit()

    def colour(self, saturation: tuple[float, float], value: tuple[float, float]) -> tuple[int, int, int]:
        """The next colour: any hue, saturation and value within the given ranges."""
        r, g, b = colorsys.hsv_to_rgb(self.unit(), self.between(*saturation), self.between(*value))
        return round(r * 255), round(g * 255), round(b * 255)


def generate_image(prompt: str, *, width: int = 512, height: int = 512) -> bytes:
    """A procedural RGB PNG derived from `prompt`: a gradient background with a few translucent shapes.

    Deterministic (seeded from the SHA-256 of the prompt) and visibly different for different prompts.
    `width` and `height` must be in 64..2048.
    """
    _check_range("width", width, GENERATED_SIZE_RANGE)
    _check_range("height", height, GENERATED_SIZE_RANGE)
    stream = _HashStream(hashlib.sha256(prompt.encode("utf-8")).digest())
    image = _gradient(stream, width, height)
    _draw_shapes(stream, image)
    return _png(image)


def _gradient(stream: _HashStream, width: int, height: int) -> Image.Image:
    """A linear gradient between two colours from `stream`, at an angle from `stream`."""
    start = np.array(stream.colour((0.35, 0.9), (0.25, 0.95)), dtype=np.float32)
    end = np.array(stream.colour((0.35, 0.9), (0.25, 0.95)), dtype=np.float32)
    angle = stream.between(0.0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    along = xs * math.cos(angle) + ys * math.sin(angle)
    t = (along - along.min()) / max(float(along.max() - along.min()), 1.0)
    pixels = start + t[..., None] * (end - start)
    return Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), "RGB")


def _draw_shapes(stream: _HashStream, image: Image.Image) -> None:
    """Draw 3 to 6 translucent ellipses, rectangles and triangles from `stream` onto `image`."""
    width, height = image.size
    short_side = min(width, height)
    # "RGBA" mode blends each fill's alpha into the RGB image instead of overwriting pixels.
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(3 + int(stream.unit() * 4)):
        kind = int(stream.unit() * 3)
        cx, cy = stream.between(0, width), stream.between(0, height)
        radius = stream.between(0.1, 0.45) * short_side
        fill = (*stream.colour((0.5, 1.0), (0.5, 1.0)), int(stream.between(140, 230)))
        box = (cx - radius, cy - radius, cx + radius, cy + radius)
        if kind == 0:
            draw.ellipse(box, fill=fill)
        elif kind == 1:
            draw.rectangle(box, fill=fill)
        else:
            turn = stream.between(0, 2 * math.pi)
            corners = [
                (
                    cx + radius * math.cos(turn + k * 2 * math.pi / 3),
                    cy + radius * math.sin(turn + k * 2 * math.pi / 3),
                )
                for k in range(3)
            ]
            draw.polygon(corners, fill=fill)


# --- remove_plain_background -----------------------------------------------------------------------


def remove_plain_background(image: bytes, *, tolerance: int = 32) -> bytes:
    """Make a plain background transparent: an RGBA PNG of the same size.

    The background colour is the median of the border pixels. Every pixel connected to the border through
    pixels within `tolerance` (Euclidean RGB distance) of that colour becomes alpha 0; every other pixel
    keeps its alpha (255 for an opaque input). Enclosed regions of background colour stay opaque.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or tolerance < 0:
        raise LocalComputeError(f"tolerance must be a non-negative integer, got {tolerance!r}")
    rgb, alpha = _split_alpha(decode_image(image))
    if alpha is None:
        alpha = np.full(rgb.shape[:2], 255, dtype=np.uint8)
    background = _border_median(rgb, alpha)
    candidates = _within_tolerance(rgb, background, tolerance) | (alpha == 0)
    reached = _border_connected(candidates)
    return _png(_join_alpha(rgb, np.where(reached, 0, alpha).astype(np.uint8)))


def _border_pixels(array: np.ndarray) -> np.ndarray:
    """The pixels on the border of a (h, w, ...) array, as (n, ...)."""
    return np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])


def _border_median(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The median colour of the visible border pixels (of all border pixels if none is visible)."""
    border = _border_pixels(rgb)
    visible = _border_pixels(alpha) > 0
    # Transparent pixels often hold arbitrary colour (commonly black); they'd skew the estimate.
    if visible.any():
        border = border[visible]
    return np.median(border, axis=0)


def _within_tolerance(rgb: np.ndarray, colour: np.ndarray, tolerance: int) -> np.ndarray:
    """Which pixels are within `tolerance` (Euclidean RGB distance) of `colour`, as a (h, w) bool mask."""
    squared = np.zeros(rgb.shape[:2], dtype=np.float32)
    # Channel by channel keeps the temporaries at one float32 plane, not (h, w, 3) floats.
    for channel in range(3):
        squared += (rgb[..., channel].astype(np.float32) - np.float32(colour[channel])) ** 2
    return squared <= np.float32(tolerance) ** 2


def _border_connected(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` 4-connected, through `mask`, to a `mask` pixel on the image border.

    A flood fill from every border pixel at once, done as connected-component labelling over horizontal
    runs: runs are few even for large images, and the union-find over them is vectorised numpy.
    """
    height, width = mask.shape
    if not mask.any():
        return mask.copy()
    starts = mask.copy()
    starts[:, 1:] &= ~mask[:, :-1]
    # starts[:, 0] == mask[:, 0], so a run never continues into the next row of the flattened array.
    run_of = (np.cumsum(starts.ravel(), dtype=np.int32) - 1).reshape(height, width)
    run_count = int(starts.sum())
    upper, lower = _vertical_run_links(mask, run_of)
    root = _union_roots(run_count, upper, lower)
    border_runs = np.concatenate([run_of[0][mask[0]], run_of[-1][mask[-1]], run_of[:, 0][mask[:, 0]]])
    border_runs = np.concatenate([border_runs, run_of[:, -1][mask[:, -1]]])
    border_root = np.zeros(run_count, dtype=bool)
    border_root[root[border_runs]] = True
    run_reached = border_root[root]
    # Outside `mask`, run_of holds a neighbouring run (or -1, the last run): harmless, masked off here.
    return mask & run_reached[run_of]


def _vertical_run_links(mask: np.ndarray, run_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (upper run, lower run) of runs in adjacent rows that share at least one column."""
    overlap = mask[:-1] & mask[1:]
    # Along an overlap segment both runs stay the same, so one link per segment is enough; this keeps
    # the link count at the order of the run count instead of the pixel count.
    first = overlap.copy()
    first[:, 1:] &= ~overlap[:, :-1]
    return run_of[:-1][first].astype(np.int64), run_of[1:][first].astype(np.int64)


def _union_roots(count: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The root of every node 0..count-1 once the edges (left[i], right[i]) are merged.

    Each round hooks every root to the smallest root it is linked to, then compresses paths fully.
    parent[x] <= x always holds, so there are no cycles, and every round merges at least one pair.
    """
    parent = np.arange(count, dtype=np.int64)
    while left.size:
        left_root, right_root = parent[left], parent[right]
        open_links = left_root != right_root
        # A link whose ends share a root stays settled forever: drop it to shrink later rounds.
        left, right = left[open_links], right[open_links]
        low = np.minimum(left_root[open_links], right_root[open_links])
        high = np.maximum(left_root[open_links], right_root[open_links])
        np.minimum.at(parent, high, low)
        parent = _compress(parent)
    return parent


def _compress(parent: np.ndarray) -> np.ndarray:
    """`parent` with every entry pointing straight at its root (pointer jumping)."""
    while True:
        grandparent = parent[parent]
        if np.array_equal(grandparent, parent):
            return parent
        parent = grandparent


# --- stylize ---------------------------------------------------------------------------------------


def stylize(image: bytes, *, style: str) -> bytes:
    """`image` restyled as "vintage" (sepia, vignette, grain), "sketch" (inverted edges) or "posterize".

    Returns a PNG of the same size: RGB, or RGBA with the input's alpha kept.
    """
    styles = {"vintage": _vintage, "sketch": _sketch, "posterize": _posterize}
    if style not in styles:
        raise LocalComputeError(f"unknown style {style!r}; known styles: {', '.join(STYLES)}")
    decoded = decode_image(image)
    rgb, alpha = _split_alpha(decoded)
    return _png(_join_alpha(styles[style](rgb), alpha))


def tint_towards(image: bytes, reference: bytes, *, strength: float = 0.3) -> bytes:
    """`image` (a PNG) moved `strength` of the way towards the average colour of `reference`: the local
    stand-in for a style image guiding an edit. Same size, alpha kept."""
    rgb, alpha = _split_alpha(decode_image(image))
    reference_rgb, _ = _split_alpha(decode_image(reference))
    colour = reference_rgb.reshape(-1, 3).astype(np.float32).mean(axis=0)
    tinted = rgb.astype(np.float32) * (1 - strength) + colour * strength
    return _png(_join_alpha(np.clip(np.rint(tinted), 0, 255).astype(np.uint8), alpha))


def _vintage(rgb: np.ndarray) -> np.ndarray:
    """Sepia tone with lifted blacks, a darkened border and fixed-seed film grain."""
    height, width = rgb.shape[:2]
    toned = rgb.astype(np.float32) @ _SEPIA.T
    toned = np.minimum(toned, 255) * 0.88 + 18  # faded print: blacks lifted, whites dulled
    toned *= _vignette(height, width)[..., None]
    grain = np.random.default_rng(_GRAIN_SEED).standard_normal((height, width), dtype=np.float32)
    toned += 9 * grain[..., None]
    return np.clip(np.rint(toned), 0, 255).astype(np.uint8)


def _vignette(height: int, width: int) -> np.ndarray:
    """A (h, w) brightness factor: 1 in the centre falling to 0.55 in the corners."""
    ys = np.linspace(-1, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, width, dtype=np.float32)[None, :]
    return 1 - 0.45 * ((xs**2 + ys**2) / 2) ** 1.2


def _sketch(rgb: np.ndarray) -> np.ndarray:
    """Dark lines on white: the Sobel edge strength of the slightly blurred greyscale image, inverted."""
    grey = Image.fromarray(rgb, "RGB").convert("L").filter(ImageFilter.GaussianBlur(1))
    padded = np.pad(np.asarray(grey, dtype=np.float32), 1, mode="edge")
    left, centre_x, right = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
    gx = (right[:-2] + 2 * right[1:-1] + right[2:]) - (left[:-2] + 2 * left[1:-1] + left[2:])
    gy = (padded[2:, :-2] + 2 * centre_x[2:] + padded[2:, 2:]) - (
        padded[:-2, :-2] + 2 * centre_x[:-2] + padded[:-2, 2:]
    )
    # The raw edge strength, not one rescaled to the image's strongest edge: a faint image must not turn
    # its noise into lines, and the result then depends on each pixel's neighbourhood only.
    lines = 255 - np.clip(np.hypot(gx, gy), 0, 255)
    return np.repeat(np.rint(lines).astype(np.uint8)[..., None], 3, axis=2)


def _posterize(rgb: np.ndarray, levels: int = 4) -> np.ndarray:
    """Each channel rounded to `levels` evenly spaced values from 0 to 255."""
    step = 255 / (levels - 1)
    return (np.rint(rgb.astype(np.float32) / step) * step).round().astype(np.uint8)


# --- point_cloud_ply -------------------------------------------------------------------------------

# One PLY vertex, packed (19 bytes), in the order the header declares the properties.
_PLY_VERTEX = np.dtype(
    [
        ("x", "<f4"),
        ("y", "<f4"),
        ("z", "<f4"),
        ("red", "u1"),
        ("green", "u1"),
        ("blue", "u1"),
        ("confidence", "<f4"),
    ]
)

PLY_VERTEX = _PLY_VERTEX

# Confidence of a point in a flat patch: seen, but with nothing there to place it by.
_FLAT_CONFIDENCE = 0.2
# The local contrast (std of 3x3 luma, 0..255 scale) at which a patch counts as ~63 % textured.
_CONTRAST_SCALE = 12.0
# Grid steps from a transparent pixel after which the silhouette no longer lowers confidence.
_SILHOUETTE_DEPTH = 3


def point_cloud_ply(image: bytes, *, max_points: int = 20_000) -> tuple[bytes, int]:
    """`image` as a coloured point cloud: a binary little-endian PLY and its vertex count.

    Pixels are sampled on a regular grid with the smallest stride that gives at most `max_points` grid
    pixels; transparent ones (alpha 0) are skipped. x and y come from the pixel position, the long side
    spanning [-1, 1] and y pointing up; z is the luminance scaled to 0..RELIEF_HEIGHT. Each vertex also
    carries a `confidence` in [0, 1], like a depth model's per-point confidence (see `_confidence`), so a
    viewer can hide the least certain points.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < 1:
        raise LocalComputeError(f"max_points must be a positive integer, got {max_points!r}")
    rgb, alpha = _split_alpha(decode_image(image))
    height, width = rgb.shape[:2]
    stride = sampling_stride(width, height, max_points)
    rows, cols = np.mgrid[0:height:stride, 0:width:stride]
    colours = rgb[::stride, ::stride]
    keep = np.ones(rows.shape, dtype=bool) if alpha is None else alpha[::stride, ::stride] != 0
    x, y = _plane_coordinates(rows[keep], cols[keep], width, height)
    vertices = np.empty(int(keep.sum()), dtype=_PLY_VERTEX)
    vertices["x"], vertices["y"] = x, y
    vertices["z"] = _luminance(colours[keep]) / 255 * RELIEF_HEIGHT
    vertices["red"], vertices["green"], vertices["blue"] = colours[keep].T
    vertices["confidence"] = _confidence(colours, keep)[keep]
    return _ply_header(vertices.size) + vertices.tobytes(), int(vertices.size)


def point_cloud_file(vertices: np.ndarray, *, comment: str) -> bytes:
    """A PLY of `vertices` (structured, `PLY_VERTEX`) in the layout `point_cloud_ply` writes, for another
    provider's points (Replicate's VGGT) to reach the viewer in the same file shape."""
    if vertices.dtype != _PLY_VERTEX:
        raise LocalComputeError("point cloud vertices must have the PLY_VERTEX layout")
    return _ply_header(vertices.size, comment) + vertices.tobytes()


def _confidence(grid: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """Per grid pixel, how well its depth is pinned down, in [0, 1] (float32).

    What makes a depth model sure of a point, measured on the sampling grid (so the result does not depend
    on the image's resolution): texture, and distance from the silhouette. Texture is the local contrast
    (standard deviation of luma over the visible part of the 3x3 neighbourhood): a flat patch gets
    _FLAT_CONFIDENCE, a contrasted one up to 1. Points within _SILHOUETTE_DEPTH steps of a transparent
    pixel, where depth jumps to the background, get 1/4 to 3/4 of that (the fewer steps, the less).
    """
    # Contrast among visible neighbours only: the step to a transparent pixel's colour is not texture.
    windows, seen = _neighbourhood(_luminance(grid)), _neighbourhood(visible)
    counted = np.maximum(seen.sum(axis=0), 1)
    mean = (windows * seen).sum(axis=0) / counted
    contrast = np.sqrt(((windows - mean) ** 2 * seen).sum(axis=0) / counted)
    texture = 1 - np.exp(-contrast / _CONTRAST_SCALE)
    confidence = _FLAT_CONFIDENCE + (1 - _FLAT_CONFIDENCE) * texture
    # How many 3x3 erosions of the visible mask each pixel survives, capped: its distance to transparency.
    depth = np.zeros(visible.shape, dtype=np.float32)
    inside = visible
    for _ in range(_SILHOUETTE_DEPTH):
        inside = _neighbourhood(inside).all(axis=0)
        depth += inside
    confidence *= (1 + depth) / (1 + _SILHOUETTE_DEPTH)
    return np.clip(confidence, 0, 1).astype(np.float32)


def _neighbourhood(values: np.ndarray) -> np.ndarray:
    """The 3x3 neighbourhood of every element of a 2-D array, stacked: shape (9, h, w); edges repeat."""
    padded = np.pad(values, 1, mode="edge")
    height, width = values.shape
    return np.stack([padded[r : r + height, c : c + width] for r in range(3) for c in range(3)])


def sampling_stride(width: int, height: int, max_points: int) -> int:
    """The smallest stride s >= 1 whose sampling grid (every s-th row and column) has <= max_points pixels."""
    stride = max(1, math.isqrt(width * height // max_points))
    # The square-root guess is never too big (ceil(w/s) * ceil(h/s) >= w*h/s^2); walk up from it.
    while -(-width // stride) * -(-height // stride) > max_points:
        stride += 1
    return stride


def _plane_coordinates(
    rows: np.ndarray, cols: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """x, y for pixel positions: centred, the long side spanning [-1, 1], y up."""
    scale = 2 / max(width - 1, height - 1, 1)
    x = (cols - (width - 1) / 2) * scale
    y = ((height - 1) / 2 - rows) * scale
    return x.astype(np.float32), y.astype(np.float32)


def _ply_header(vertex_count: int, comment: str = "FunMagic local provider point cloud") -> bytes:
    """The ASCII header of a binary little-endian PLY of `vertex_count` coloured vertices with confidence."""
    lines = [
        "ply",
        "format binary_little_endian 1.0",
        f"comment {comment}",
        f"element vertex {vertex_count}",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "property float confidence",
        "end_header",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


# --- heightfield_glb -------------------------------------------------------------------------------


def heightfield_glb(image: bytes, *, grid: int = 64) -> bytes:
    """`image` as a coloured heightfield mesh in a glTF 2.0 binary (GLB).

    The image is resampled to grid x grid vertices laid out in the xy plane (long side spanning [-1, 1],
    y up, so it faces a default glTF camera), with z the luminance scaled to 0..RELIEF_HEIGHT and COLOR_0
    the pixel colour. Triangles whose three corners are all transparent are left out; an image with no
    triangle left is refused. `grid` must be in 2..512.
    """
    _check_range("grid", grid, GRID_RANGE)
    decoded = decode_image(image)
    width, height = decoded.size
    # Pillow resamples RGBA premultiplied, so transparent pixels don't bleed their colour into edges.
    rgb, alpha = _split_alpha(decoded.resize((grid, grid), Image.Resampling.BILINEAR))
    positions = _heightfield_positions(rgb, width, height)
    indices = _heightfield_indices(grid, alpha)
    if indices.size == 0:
        raise LocalComputeError("the image is fully transparent: no triangle to build")
    colours = np.dstack([rgb, alpha if alpha is not None else np.full((grid, grid), 255, np.uint8)])
    normals = _heightfield_normals(positions.reshape(grid, grid, 3))
    return _glb(positions, normals, colours.reshape(-1, 4), indices)


def _heightfield_positions(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """(grid*grid, 3) float32 vertex positions: xy spanning the image's aspect ratio, z from luminance."""
    grid = rgb.shape[0]
    long_side = max(width, height)
    half_x, half_y = width / long_side, height / long_side
    ys, xs = np.mgrid[0:grid, 0:grid].astype(np.float32) / (grid - 1)
    x = (xs * 2 - 1) * half_x
    y = (1 - ys * 2) * half_y
    z = _luminance(rgb) / 255 * RELIEF_HEIGHT
    return np.stack([x, y, z], axis=-1).reshape(-1, 3).astype(np.float32)


def _heightfield_indices(grid: int, alpha: np.ndarray | None) -> np.ndarray:
    """uint32 triangle indices, two per grid cell, counter-clockwise seen from +z.

    Triangles whose corners are all transparent are dropped when `alpha` is given.
    """
    index = np.arange(grid * grid, dtype=np.uint32).reshape(grid, grid)
    top_left, top_right = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    bottom_left, bottom_right = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    triangles = np.concatenate(
        [
            np.stack([top_left, bottom_left, top_right], axis=1),
            np.stack([top_right, bottom_left, bottom_right], axis=1),
        ]
    )
    if alpha is not None:
        triangles = triangles[(alpha.ravel()[triangles] != 0).any(axis=1)]
    return triangles.ravel()


def _heightfield_normals(positions: np.ndarray) -> np.ndarray:
    """(grid*grid, 3) unit vertex normals of a (grid, grid, 3) heightfield, from central differences."""
    along_x = np.gradient(positions, axis=1)
    along_y = np.gradient(positions, axis=0)
    # Rows run towards -y, so x-step cross row-step points to -z; flip it so normals face +z like the
    # triangles' winding.
    normals = -np.cross(along_x, along_y)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    return (normals / np.maximum(length, 1e-12)).reshape(-1, 3).astype(np.float32)


def _glb(positions: np.ndarray, normals: np.ndarray, colours: np.ndarray, indices: np.ndarray) -> bytes:
    """A GLB holding one mesh, in one node, in one scene, from the given vertex and index arrays."""
    blobs = [
        positions.astype("<f4").tobytes(),
        normals.astype("<f4").tobytes(),
        colours.astype(np.uint8).tobytes(),
        indices.astype("<u4").tobytes(),
    ]
    document = {
        "asset": {"version": "2.0", "generator": "FunMagic local provider"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "heightfield"}],
        "meshes": [{"name": "heightfield", "primitives": [_GLB_PRIMITIVE]}],
        "materials": [_GLB_MATERIAL],
        "buffers": [{"byteLength": sum(len(blob) for blob in blobs)}],
        "bufferViews": _glb_buffer_views(blobs),
        "accessors": _glb_accessors(positions, int(indices.size)),
    }
    return _glb_container(json.dumps(document, separators=(",", ":")).encode("utf-8"), b"".join(blobs))


# Accessors 0..3 are POSITION, NORMAL, COLOR_0 and the indices, in the order _glb lays out the blobs.
_GLB_PRIMITIVE = {
    "attributes": {"POSITION": 0, "NORMAL": 1, "COLOR_0": 2},
    "indices": 3,
    "material": 0,
    "mode": _GL_TRIANGLES,
}

# The default material is fully metallic, which renders vertex colours nearly black without an
# environment map; a rough dielectric shows them as they are. Double-sided: the relief has no back.
_GLB_MATERIAL = {
    "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0},
    "doubleSided": True,
}


def _glb_buffer_views(blobs: list[bytes]) -> list[dict[str, int]]:
    """One buffer view per blob, back to back in buffer 0: vertex attributes, then the indices."""
    views, offset = [], 0
    targets = [_GL_ARRAY_BUFFER] * (len(blobs) - 1) + [_GL_ELEMENT_ARRAY_BUFFER]
    for blob, target in zip(blobs, targets, strict=True):
        # Every blob's length is a multiple of 4, so every view starts aligned as glTF requires.
        views.append({"buffer": 0, "byteOffset": offset, "byteLength": len(blob), "target": target})
        offset += len(blob)
    return views


def _glb_accessors(positions: np.ndarray, index_count: int) -> list[dict[str, object]]:
    """The accessors of POSITION, NORMAL, COLOR_0 (normalised RGBA bytes) and the uint32 indices."""
    vertex_count = len(positions)
    return [
        {
            "bufferView": 0,
            "componentType": _GL_FLOAT,
            "count": vertex_count,
            "type": "VEC3",
            # float() of a float32 is exact, so these equal the stored values bit for bit.
            "min": [float(v) for v in positions.min(axis=0)],
            "max": [float(v) for v in positions.max(axis=0)],
        },
        {"bufferView": 1, "componentType": _GL_FLOAT, "count": vertex_count, "type": "VEC3"},
        {
            "bufferView": 2,
            "componentType": _GL_UNSIGNED_BYTE,
            "normalized": True,
            "count": vertex_count,
            "type": "VEC4",
        },
        {"bufferView": 3, "componentType": _GL_UNSIGNED_INT, "count": index_count, "type": "SCALAR"},
    ]


def _glb_container(json_chunk: bytes, bin_chunk: bytes) -> bytes:
    """The GLB framing: 12-byte header, JSON chunk padded with spaces, BIN chunk padded with zeros."""
    json_chunk += b" " * (-len(json_chunk) % 4)
    bin_chunk += b"\x00" * (-len(bin_chunk) % 4)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    return b"".join(
        [
            struct.pack("<4sII", _GLB_MAGIC, 2, total),
            struct.pack("<II", len(json_chunk), _GLB_JSON),
            json_chunk,
            struct.pack("<II", len(bin_chunk), _GLB_BIN),
            bin_chunk,
        ]
    )
