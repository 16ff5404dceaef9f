"""Mask-color detection: exact (DeepCreamPy), tolerant, anti-aliased growth and the hint."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from deepcream.masks import (
    color_distance,
    find_mask,
    fringe_hint,
    grow_antialiased,
    near_mask_hint,
    suggest_tolerance,
)

GREEN = (0, 255, 0)


def _background(size: int = 192, seed: int = 0) -> Image.Image:
    """A smooth, colorful background far from pure green (gradients + a few flat shapes)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    rgb = np.stack([150 + 90 * xx, 60 + 60 * yy, 140 + 80 * (1 - xx) * yy], axis=2)
    img = Image.fromarray(rgb.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(4):
        x, y = rng.integers(0, size - 40, 2)
        color = tuple(int(v) for v in rng.integers(0, 120, 3))
        draw.ellipse([int(x), int(y), int(x) + 40, int(y) + 30], fill=color)
    return img


def _strokes(width_at_4x: int, size: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """Green strokes drawn with Pillow at 4x and downsampled (anti-aliased edges); returns
    (image, the strokes' coverage at output size in [0, 1])."""
    big = _background(size).resize((4 * size, 4 * size), Image.NEAREST)
    cover = Image.new("L", big.size, 0)
    lines = [[(40, 60), (700, 300)], [(100, 700), (650, 80)], [(300, 380), (720, 720)]]
    for line in lines:
        ImageDraw.Draw(big).line(line, fill=GREEN, width=width_at_4x)
        ImageDraw.Draw(cover).line(line, fill=255, width=width_at_4x)
    img = np.asarray(big.resize((size, size), Image.BOX))
    coverage = np.asarray(cover.resize((size, size), Image.BOX)).astype(np.float32) / 255
    return img.copy(), coverage


def _near(mask: np.ndarray, radius: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=radius)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()


def test_exact_matches_only_the_mask_color() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = GREEN
    rgb[1, 1] = (1, 254, 2)
    rgb[2, 2] = (0, 255, 1)
    rgb[3, 4] = (255, 0, 255)
    mask = find_mask(rgb)
    assert mask.dtype == bool and mask.shape == (4, 5)
    assert np.argwhere(mask).tolist() == [[0, 0]]
    tolerant = find_mask(rgb, tolerance=2)
    assert np.argwhere(tolerant).tolist() == [[0, 0], [1, 1], [2, 2]]
    # Per-channel distance: (1, 254, 2) is 2 away, not 1.
    assert np.argwhere(find_mask(rgb, tolerance=1)).tolist() == [[0, 0], [2, 2]]
    assert color_distance(rgb)[1, 1] == 2


def test_other_mask_color_and_clipping_at_255() -> None:
    rgb = np.full((3, 3, 3), 10, np.uint8)
    rgb[1, 1] = (255, 255, 255)
    rgb[0, 2] = (250, 251, 255)
    assert np.argwhere(find_mask(rgb, (255, 255, 255))).tolist() == [[1, 1]]
    assert np.argwhere(find_mask(rgb, (255, 255, 255), tolerance=5)).tolist() == [[0, 2], [1, 1]]


def test_bad_arguments_are_value_errors() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError):
        find_mask(rgb, tolerance=-1)
    with pytest.raises(ValueError):
        find_mask(rgb, color=(0, 256, 0))
    with pytest.raises(ValueError):
        find_mask(rgb.astype(np.float32))
    with pytest.raises(ValueError):
        find_mask(rgb[:, :, :2])


def test_input_is_not_modified() -> None:
    rgb, _ = _strokes(24)
    before = rgb.copy()
    find_mask(rgb, tolerance=32, grow_antialias=True)
    near_mask_hint(rgb)
    assert np.array_equal(rgb, before)


def test_antialias_growth_covers_the_blended_edge() -> None:
    rgb, coverage = _strokes(24)  # 6 px strokes at output size, 1 px blended edges
    exact = find_mask(rgb)
    assert exact.sum() > 1000  # stroke interiors stay exact
    edge = (coverage > 0.15) & ~exact  # visibly green-tinted edge pixels
    assert edge.sum() > 300
    grown = find_mask(rgb, grow_antialias=True)
    # Nearly every visibly blended pixel joins; pixels the strokes never touched do not.
    assert (grown & edge).sum() >= 0.95 * edge.sum()
    untouched = coverage == 0
    assert (grown & untouched).sum() <= 0.01 * grown.sum()
    # Growth only adds pixels next to the mask.
    assert not (exact & ~grown).any()
    assert grow_antialiased(rgb, np.zeros_like(exact)).sum() == 0


def test_fringe_hint_names_the_option() -> None:
    rgb, _ = _strokes(24)
    hint = fringe_hint(rgb, find_mask(rgb))
    assert hint is not None and "antialias=True" in hint
    assert fringe_hint(rgb, find_mask(rgb, grow_antialias=True)) is None


def test_hint_for_thin_antialiased_strokes_without_exact_pixels() -> None:
    rgb, coverage = _strokes(3)  # sub-pixel strokes: no pixel keeps the exact color
    assert not find_mask(rgb).any()
    hint = near_mask_hint(rgb)
    assert hint is not None
    tol, count = suggest_tolerance(rgb)
    assert f"mask_tolerance={tol}, antialias=True" in hint
    # only the near pixels next to stroke pixels are counted: here nearly all of them
    counted = int(hint.split(" but ")[1].split(" pixels")[0].replace(",", ""))
    assert 0.9 * count <= counted <= count and f"pixels of the strokes are within {tol}" in hint
    assert hint.startswith("no pixel has the exact mask color (0,255,0)")
    assert "\n" not in hint
    # Following the advice finds most of the strokes (sub-pixel segments whose pixels are
    # all under ~60% green have no pixel within the tolerance to grow from).
    mask = find_mask(rgb, tolerance=tol, grow_antialias=True)
    assert (mask & (coverage > 0.5)).sum() >= 0.75 * (coverage > 0.5).sum()


@pytest.mark.parametrize("quality", [95, 85, 75])
def test_hint_for_jpeg_saved_strokes(quality: int) -> None:
    rgb, coverage = _strokes(24)
    jpeg = _jpeg(rgb, quality)
    exact = find_mask(jpeg)
    hint = near_mask_hint(jpeg)
    assert hint is not None, f"exact finds {exact.sum()} px of {(coverage > 0.5).sum()}"
    assert "mask_tolerance=" in hint and "antialias=True" in hint
    tol, _ = suggest_tolerance(jpeg)
    mask = find_mask(jpeg, tolerance=tol, grow_antialias=True)
    strokes = coverage > 0.5
    assert (mask & strokes).sum() >= 0.97 * strokes.sum()
    # No pixel within the tolerance stays outside the mask (that would be a green fringe).
    assert not (color_distance(jpeg) <= tol)[~mask].any()
    # JPEG bleeds the green a pixel or two beyond the stroke (chroma subsampling); growth
    # takes that fringe but stops within a few pixels of the stroke.
    assert not (mask & ~_near(coverage > 0, 4)).any()


def test_no_hint_for_clean_images_or_when_the_mask_is_found() -> None:
    clean = np.asarray(_background()).copy()
    assert near_mask_hint(clean) is None
    rgb, _ = _strokes(24)
    assert near_mask_hint(rgb) is None  # plenty of exact pixels
    assert near_mask_hint(rgb, tolerance=40) is None


def test_speed_sized_input_runs() -> None:
    """A large image goes through the vectorised path (no per-pixel Python loop)."""
    rgb = np.zeros((1200, 1300, 3), np.uint8)
    rgb[100:300, 200:900] = GREEN
    mask = find_mask(rgb, tolerance=8, grow_antialias=True)
    assert mask.sum() == 200 * 700


def _pipeline():
    return pytest.importorskip("deepcream.decensorer")


@pytest.mark.parametrize("kind", ["antialiased", "jpeg85"])
def test_tolerant_decensor_leaves_no_green_fringe(kind: str) -> None:
    api = _pipeline()
    rgb, coverage = _strokes(24)
    if kind == "jpeg85":
        rgb = _jpeg(rgb, 85)
    tol = 48
    result = api.decensor(Image.fromarray(rgb), engine="classical", mask_tolerance=tol,
                               antialias=True)
    out = np.asarray(result.images[0].convert("RGB"))
    # No pixel within the tolerance of the mask color remains anywhere.
    assert not (color_distance(out) <= tol).any()
    # Visibly green-tinted edge pixels were all replaced.
    changed = np.abs(out.astype(int) - rgb.astype(int)).max(axis=2) > 0
    edge = (coverage > 0.25) & (coverage < 1)
    assert (changed & edge).sum() >= 0.95 * edge.sum()
    # Far from the strokes nothing changed.
    assert not changed[~_near(coverage > 0, 4)].any()


def test_exact_decensor_of_thin_strokes_reports_the_hint() -> None:
    api = _pipeline()
    rgb, _ = _strokes(3)
    result = api.decensor(Image.fromarray(rgb), engine="classical", mask_tolerance=0)
    assert result.regions == 0
    assert result.notice is not None and "mask_tolerance=" in result.notice
    assert np.array_equal(np.asarray(result.images[0].convert("RGB")), rgb)


def test_exact_decensor_of_jpeg_strokes_warns_although_specks_are_filled() -> None:
    # JPEG keeps a few exact-green pixels inside wide strokes: exact mode fills those specks
    # and must still say the mask is incomplete, with the options to rerun with.
    api = _pipeline()
    rgb, _ = _strokes(24)
    jpeg = _jpeg(rgb, 85)
    result = api.decensor(Image.fromarray(jpeg), engine="classical", mask_tolerance=0)
    assert result.regions > 0
    assert result.warning is not None and "mask_tolerance=" in result.warning
    tolerant = api.decensor(Image.fromarray(jpeg), engine="classical", mask_tolerance=48,
                                 antialias=True)
    assert tolerant.warning is None


def test_clean_flat_strokes_give_no_warning() -> None:
    api = _pipeline()
    rgb = np.asarray(_background()).copy()
    rgb[40:60, 20:150] = GREEN
    result = api.decensor(Image.fromarray(rgb), engine="classical")
    assert result.regions == 1 and result.warning is None


def test_antialiased_fringe_without_option_warns() -> None:
    api = _pipeline()
    rgb, _ = _strokes(24)
    result = api.decensor(Image.fromarray(rgb), engine="classical", mask_tolerance=0)
    assert result.regions > 0
    assert result.warning is not None and "antialias=True" in result.warning
