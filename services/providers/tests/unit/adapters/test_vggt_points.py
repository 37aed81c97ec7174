"""VGGT's point map as our PLY (`adapters/vggt_points.py`): rotation, centring, scaling, colours, the
confidence carried over, the point count, and refusals of answers that are not a point map."""

from __future__ import annotations

import base64
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from funmagic_providers.adapters.vggt_points import (
    COLOUR_SIZE,
    SCALE,
    VggtOutputError,
    confidence_of,
    vggt_point_cloud,
)

PLY_VERTEX = np.dtype(
    [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"),
     ("confidence", "<f4")]
)  # fmt: skip


def tensor(array: np.ndarray) -> dict:
    return {"data": base64.b64encode(array.astype("<f4").tobytes()).decode(), "shape": list(array.shape),
            "dtype": "float32"}  # fmt: skip


def answer(points: np.ndarray, conf: np.ndarray) -> dict:
    return {"world_points": tensor(points), "world_points_conf": tensor(conf)}


def quadrants_png() -> bytes:
    """518 x 518: red top-left, green top-right, blue bottom-left, white bottom-right."""
    image = Image.new("RGB", (COLOUR_SIZE, COLOUR_SIZE), (255, 255, 255))
    half = COLOUR_SIZE // 2
    image.paste((255, 0, 0), (0, 0, half, half))
    image.paste((0, 255, 0), (half, 0, COLOUR_SIZE, half))
    image.paste((0, 0, 255), (0, half, half, COLOUR_SIZE))
    buffer = BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def read_ply(data: bytes) -> tuple[str, np.ndarray]:
    header, _, body = data.partition(b"end_header\n")
    return header.decode(), np.frombuffer(body, dtype=PLY_VERTEX)


def grid_points() -> tuple[np.ndarray, np.ndarray]:
    """A 2 x 2 map: x = column (0, 4), y = row (0, 2), z = 1 + column; confidence 1, 2, 4, 5."""
    points = np.array(
        [[[0, 0, 1], [4, 0, 2]],
         [[0, 2, 1], [4, 2, 2]]], dtype=np.float32,
    )  # fmt: skip
    conf = np.array([[1, 2], [4, 5]], dtype=np.float32)
    return points, conf


def test_points_are_rotated_about_z_centred_and_scaled_to_ten() -> None:
    points, conf = grid_points()
    cloud = vggt_point_cloud(answer(points, conf), quadrants_png())
    header, vertices = read_ply(cloud.ply)
    assert cloud.point_count == 4 == len(vertices)
    assert (cloud.height, cloud.width) == (2, 2)
    assert "element vertex 4" in header
    assert "property float confidence" in header
    # Rotated: (-x, -y, z) → x in {0, -4}, y in {0, -2}; centred on the box (-2, -1, 1.5); the longest
    # extent (x, 4) becomes 20, so the scale is 5.
    xyz = np.stack([vertices["x"], vertices["y"], vertices["z"]], axis=1)
    expected = np.array([[2, 1, -0.5], [-2, 1, 0.5], [2, -1, -0.5], [-2, -1, 0.5]], dtype=np.float32) * 5
    np.testing.assert_allclose(xyz, expected, atol=1e-5)
    assert np.abs(xyz).max() == pytest.approx(SCALE)


def test_colours_come_from_the_image_resized_to_518_nearest_pixel() -> None:
    points, conf = grid_points()
    cloud = vggt_point_cloud(answer(points, conf), quadrants_png())
    _, vertices = read_ply(cloud.ply)
    colours = list(zip(vertices["red"], vertices["green"], vertices["blue"], strict=True))
    assert colours == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]


def test_a_small_image_is_resized_first() -> None:
    buffer = BytesIO()
    Image.new("RGB", (10, 5), (12, 34, 56)).save(buffer, "PNG")
    points, conf = grid_points()
    cloud = vggt_point_cloud(answer(points, conf), buffer.getvalue())
    _, vertices = read_ply(cloud.ply)
    assert set(zip(vertices["red"], vertices["green"], vertices["blue"], strict=True)) == {(12, 34, 56)}


def test_the_confidence_is_vggts_carried_over_as_sigmoid() -> None:
    points, conf = grid_points()
    cloud = vggt_point_cloud(answer(points, conf), quadrants_png())
    _, vertices = read_ply(cloud.ply)
    np.testing.assert_allclose(vertices["confidence"], [0, 0.5, 0.75, 0.8], atol=1e-6)
    # 1 + exp(x) → sigmoid(x): the order kept, in [0, 1].
    x = np.array([-3.0, 0.0, 2.5])
    np.testing.assert_allclose(confidence_of(1 + np.exp(x)), 1 / (1 + np.exp(-x)), atol=1e-6)


def test_nested_lists_and_a_leading_frame_axis_are_read_too() -> None:
    points, conf = grid_points()
    cloud = vggt_point_cloud(
        {"world_points": [points.tolist()], "world_points_conf": [conf.tolist()]}, quadrants_png()
    )
    assert cloud.point_count == 4


def test_non_finite_points_are_left_out() -> None:
    points, conf = grid_points()
    points[0, 1, 2] = np.nan
    cloud = vggt_point_cloud(answer(points, conf), quadrants_png())
    assert cloud.point_count == 3
    assert b"element vertex 3" in cloud.ply


@pytest.mark.parametrize(
    "output",
    [
        {},
        {"world_points": "bm90"},
        {"world_points": {"data": "!!", "shape": [2, 2, 3], "dtype": "float32"}},
        {"world_points": {"data": base64.b64encode(b"\0" * 8).decode(), "shape": [2, 2, 3]}},
        {"world_points": tensor(np.zeros((2, 2, 2)))},
        {"world_points": tensor(np.zeros((2, 2, 3))), "world_points_conf": tensor(np.zeros((3, 2)))},
        {"world_points": tensor(np.full((2, 2, 3), np.inf))},
    ],
)
def test_an_answer_that_is_not_a_point_map_is_refused(output: dict) -> None:
    with pytest.raises(VggtOutputError):
        vggt_point_cloud(output, quadrants_png())
