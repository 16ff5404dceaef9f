"""The classical engine's structure-guided bar fill (``deepcream.classical.structure_fill``):
lines continue through bars, nothing outside the holes changes, and on a small drawn-art set
it keeps a floor of PSNR and outline continuity over Telea (issue 17)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import deepcream
from deepcream import classical, engines
from deepcream.examples.drawn_art import STYLES
from deepcream.imageio import Pixels

GREEN = (0, 255, 0)


def _line_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = np.full((96, 128, 3), (230, 200, 170), np.uint8)
    cv2.line(img, (0, 30), (127, 66), (20, 20, 30), 3, cv2.LINE_AA)  # oblique outline
    holes = np.zeros((96, 128), bool)
    holes[:, 52:76] = True
    damaged = img.copy()
    damaged[holes] = GREEN
    return img, damaged, holes


def test_an_oblique_outline_continues_through_a_bar_and_only_holes_change() -> None:
    img, damaged, holes = _line_case()
    out = engines.ClassicalEngine("bar", method="structure").inpaint([damaged], [holes])[0]
    telea = engines.ClassicalEngine("bar", method="telea").inpaint([damaged], [holes])[0]
    assert np.array_equal(out[~holes], damaged[~holes])
    gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(int)
    truth = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(int)
    line = holes & (truth < 100)
    assert line.sum() > 40
    assert gray[line].mean() < 90  # drawn through dark, not a smudge
    err = np.abs(out[holes].astype(int) - img[holes]).mean()
    err_telea = np.abs(telea[holes].astype(int) - img[holes]).mean()
    assert err < 0.5 * err_telea


def test_banded_processing_gives_the_same_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large holes are processed in bands of rows (memory); the bands overlap by the cost
    smoothing's reach, so the result is the same as in one piece."""
    _, damaged, holes = _line_case()
    whole = classical.structure_fill(damaged, holes)
    monkeypatch.setattr(classical, "STRUCTURE_CHUNK", 300)
    assert np.array_equal(classical.structure_fill(damaged, holes), whole)


def test_a_hole_deeper_than_the_longest_ray_is_filled_everywhere(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(classical, "STRUCTURE_MAX_STEPS", 6)
    img = np.full((80, 80, 3), (200, 180, 160), np.uint8)
    img[:, 40:] = (40, 60, 200)
    holes = np.zeros((80, 80), bool)
    holes[10:70, 10:70] = True
    damaged = img.copy()
    damaged[holes] = GREEN
    out = classical.structure_fill(damaged, holes)
    assert np.array_equal(out[~holes], damaged[~holes])
    assert not np.any(np.all(out[holes] == GREEN, axis=1))
    # the middle (beyond 6 px of any known pixel) came from Telea: near the two colors
    assert np.abs(out[40, 20].astype(int) - (200, 180, 160)).max() < 40


def test_auto_picks_structure_within_its_budgets_and_telea_beyond() -> None:
    auto = engines.ClassicalEngine("bar")
    assert auto.bar_method_for(100) == "structure"
    assert auto.bar_method_for(engines.STRUCTURE_MAX_PIXELS + 1) == "telea"
    assert auto.bar_method_for(100, crops=engines.STRUCTURE_MAX_CROPS + 1) == "telea"
    assert auto.bar_method_for(100, window=engines.STRUCTURE_MAX_WINDOW + 1) == "telea"
    fixed = engines.ClassicalEngine("bar", method="structure")
    assert fixed.bar_method_for(engines.STRUCTURE_MAX_PIXELS + 1) == "structure"


def test_the_pipeline_changes_no_pixel_outside_the_bars() -> None:
    """Through ``deepcream.decensor`` (mask detection, crops, paste-back) with the default
    classical engine: every pixel that was not green is bit-identical."""
    clean = STYLES["cel"](320, 240, 11)
    clean[np.all(clean == GREEN, axis=2)] = (0, 254, 0)
    damaged = clean.copy()
    cv2.line(damaged, (40, 60), (260, 180), GREEN, 14)
    cv2.line(damaged, (60, 200), (250, 40), GREEN, 6)
    holes = np.all(damaged == GREEN, axis=2)
    out = deepcream.decensor(Pixels(damaged, None), engine="classical").pixels[0].rgb
    assert np.array_equal(out[~holes], damaged[~holes])
    assert not np.any(np.all(out[holes] == GREEN, axis=1))


def _scores(result: np.ndarray, truth: np.ndarray, holes: np.ndarray) -> tuple[float, float]:
    from classical_quality import hole_scores

    psnr, _, cont = hole_scores(result, truth, holes)
    return psnr, cont


def test_drawn_art_floor_over_telea() -> None:
    """A small fixed set (four styles, 8 and 24 px bars crossing outlines, seeds not in the
    tune or held-out sets): mean PSNR in the holes and outline continuity stay above floors
    set a margin below what the method measured (+1.39 dB, 2.4x when written); a regression
    of the structure fill breaks them."""
    from classical_quality import bar_holes

    gains, cont, cont_telea = [], [], []
    for draw in STYLES.values():
        truth = draw(256, 192, 50)
        truth[np.all(truth == GREEN, axis=2)] = (0, 254, 0)
        for width in (8, 24):
            holes = bar_holes(truth, width, 50, count=2)
            damaged = truth.copy()
            damaged[holes] = GREEN
            ours = classical.structure_fill(damaged, holes)
            telea = cv2.inpaint(damaged, holes.view(np.uint8), 9, cv2.INPAINT_TELEA)
            p, c = _scores(ours, truth, holes)
            pt, ct = _scores(telea, truth, holes)
            gains.append(p - pt)
            if not np.isnan(c):
                cont.append(c)
                cont_telea.append(ct)
    assert np.mean(gains) >= FLOOR_DB
    assert min(gains) > -0.5  # no case much worse than Telea
    assert np.mean(cont) >= FLOOR_CONTINUITY * np.mean(cont_telea)


FLOOR_DB = 1.0
FLOOR_CONTINUITY = 1.8


def test_a_jpeg_saved_stroke_leaves_no_more_paint_than_telea(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A JPEG-saved stroke leaves a fringe of paint next to the mask; rays would carry it
    into the hole as green streaks. With the fringe check the fill is about as free of paint
    as Telea's (which blurs it), and far freer than without the check."""
    import skimage.data

    clean = np.ascontiguousarray(skimage.data.chelsea()[100:292, 100:356])
    painted = clean.copy()
    cv2.line(painted, (30, 40), (220, 150), GREEN, 10, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(painted, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 90])
    painted = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    region = np.zeros(clean.shape[:2], np.uint8)
    cv2.line(region, (30, 40), (220, 150), 1, 14)
    region = region.astype(bool)

    def paint_left(method: str) -> float:
        out = deepcream.decensor(Pixels(painted, None),
                                 engine=engines.ClassicalEngine("bar", method=method))
        rgb = out.pixels[0].rgb.astype(int)
        excess = rgb[..., 1] - np.maximum(rgb[..., 0], rgb[..., 2])
        return float(excess[region].mean())

    telea, ours = paint_left("telea"), paint_left("structure")
    monkeypatch.setattr(classical, "STRUCTURE_FRINGE_SHARE", np.inf)
    unchecked = paint_left("structure")
    assert ours <= telea + 2.0  # 20.5 vs 21.0 levels of green excess when written
    assert unchecked > ours + 10.0  # 42.9 without the check
