"""VGGT's point map (Replicate's `vufinder/vggt-1b` answer) as the point-cloud step's PLY.

Pure: the model's JSON answer and the input image in, PLY bytes out, no I/O. What it does follows the
original (ORIGINAL.md, crystal-memory `vggt` row): decode the `world_points` tensor `[H, W, 3]` float32
(base64) and its `world_points_conf` `[H, W]`, rotate 180° about Z (VGGT's camera frame has y down; the
viewer's has y up), centre the cloud on its bounding box and scale it so the largest coordinate is ±10,
and colour each point from the input image resized to 518 x 518 (VGGT's input size), nearest pixel.

A tensor travels as nested lists (the model's plain answer, as the original read it) or, with `to_base64`,
as `{"data": <base64 of little-endian float32>, "shape": [...], "dtype": "float32"}` — the base64 framing
is not documented by the model, so this is our reading of it; the decoder is strict about shapes and says
plainly what it got when they disagree. Colours follow the original's lookup: point (row i, column j) of an
H x W map takes pixel (floor(j / W * 518), floor(i / H * 518)) of the resized image.

VGGT's confidence is `1 + exp(x)` (its `expp1` activation), so it is >= 1 and unbounded, while our PLY's
`confidence` (what `local` writes and the web viewer's threshold reads) is in [0, 1]. The point keeps
`1 - 1/conf`, which is exactly `sigmoid(x)`: the same order, and a value the viewer's slider understands.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from funmagic_providers.adapters import local_compute

__all__ = [
    "COLOUR_SIZE",
    "SCALE",
    "VggtCloud",
    "VggtOutputError",
    "confidence_of",
    "decode_tensor",
    "vggt_point_cloud",
]

# VGGT's input size: the original coloured the points from the image resized to this square.
COLOUR_SIZE = 518
# The cloud's half extent after scaling: every coordinate within [-SCALE, SCALE].
SCALE = 10.0


class VggtOutputError(ValueError):
    """VGGT's answer is not the point map this expects."""


@dataclass(frozen=True)
class VggtCloud:
    ply: bytes
    point_count: int
    height: int
    width: int


def decode_tensor(value: Any, name: str) -> np.ndarray:
    """One tensor of the answer (nested lists, or `{data, shape, dtype}` base64) as a float32 array."""
    if isinstance(value, list):
        try:
            return np.asarray(value, dtype=np.float32)
        except (TypeError, ValueError):
            raise VggtOutputError(f"{name} is not a regular array of numbers") from None
    if not isinstance(value, Mapping):
        raise VggtOutputError(f"{name} is not a tensor object")
    dtype, shape, data = value.get("dtype", "float32"), value.get("shape"), value.get("data")
    if dtype != "float32":
        raise VggtOutputError(f"{name} is {dtype!r}, expected float32")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n > 0 for n in shape):
        raise VggtOutputError(f"{name} has no valid shape")
    if not isinstance(data, str):
        raise VggtOutputError(f"{name} has no base64 data")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise VggtOutputError(f"{name} is not valid base64") from None
    expected = int(np.prod(shape)) * 4
    if len(raw) != expected:
        raise VggtOutputError(f"{name} has {len(raw)} bytes, its shape {shape} needs {expected}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def confidence_of(vggt_conf: np.ndarray) -> np.ndarray:
    """VGGT's `1 + exp(x)` confidence as `sigmoid(x)` = `1 - 1/conf`, in [0, 1] (see the module's note)."""
    safe = np.maximum(vggt_conf.astype(np.float64), 1.0)
    return np.clip(1.0 - 1.0 / safe, 0.0, 1.0).astype(np.float32)


def vggt_point_cloud(output: Mapping[str, Any], image: bytes) -> VggtCloud:
    """The PLY of VGGT's point map: one vertex per finite point, rotated, centred, scaled and coloured."""
    points = _squeeze(decode_tensor(output.get("world_points"), "world_points"), 3, "world_points")
    if points.shape[-1] != 3:
        raise VggtOutputError(f"world_points has shape {list(points.shape)}, expected [H, W, 3]")
    height, width = points.shape[:2]
    if "world_points_conf" in output:
        name = "world_points_conf"
        conf = _squeeze(decode_tensor(output[name], name), 2, name)
        if conf.shape != (height, width):
            raise VggtOutputError(
                f"world_points_conf has shape {list(conf.shape)}, world_points [{height}, {width}, 3]"
            )
    else:
        conf = np.full((height, width), np.inf, dtype=np.float32)  # no confidence: every point certain
    colours = _colours(image, height, width)
    keep = np.isfinite(points).all(axis=-1) & ~np.isnan(conf)
    if not keep.any():
        raise VggtOutputError("VGGT's point map has no finite point")
    xyz = points[keep].astype(np.float64)
    xyz[:, :2] *= -1  # 180° about Z
    low, high = xyz.min(axis=0), xyz.max(axis=0)
    xyz -= (low + high) / 2
    extent = float(np.abs(xyz).max())
    if extent > 0:
        xyz *= SCALE / extent
    vertices = np.empty(int(keep.sum()), dtype=local_compute.PLY_VERTEX)
    vertices["x"], vertices["y"], vertices["z"] = xyz.astype(np.float32).T
    vertices["red"], vertices["green"], vertices["blue"] = colours[keep].T
    vertices["confidence"] = confidence_of(conf[keep])
    ply = local_compute.point_cloud_file(vertices, comment="FunMagic VGGT point cloud (Replicate)")
    return VggtCloud(ply, int(vertices.size), height, width)


def _squeeze(tensor: np.ndarray, dims: int, name: str) -> np.ndarray:
    """Drop leading batch/frame axes of size 1 (VGGT answers [S, H, W, …] for S images; we send one)."""
    while tensor.ndim > dims and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != dims:
        raise VggtOutputError(f"{name} has shape {list(tensor.shape)}, expected {dims} dimensions")
    return tensor


def _colours(image: bytes, height: int, width: int) -> np.ndarray:
    """(H, W, 3) uint8: for each point of the map, its pixel of the image resized to 518² (nearest)."""
    try:
        decoded = local_compute.decode_image(image)
    except local_compute.LocalComputeError as error:
        raise VggtOutputError(f"the input image cannot colour the points: {error}") from None
    square = decoded.convert("RGB").resize((COLOUR_SIZE, COLOUR_SIZE), Image.Resampling.NEAREST)
    pixels = np.asarray(square)
    rows = np.minimum(np.arange(height) * COLOUR_SIZE // height, COLOUR_SIZE - 1)
    cols = np.minimum(np.arange(width) * COLOUR_SIZE // width, COLOUR_SIZE - 1)
    return pixels[rows[:, None], cols[None, :]]
