"""Separate mask files (``--mask`` / the ``mask`` form part / ``decensor(mask=...)``) and the
one mask-color parser shared by the CLI, the library and the server."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from deepcream import decensor
from deepcream.cli import main
from deepcream.colors import parse_color
from deepcream.errors import InputError
from deepcream.masks import load_mask_file, mask_from_pixels

GREEN = (0, 255, 0)


def picture(width: int = 300, height: int = 280, seed: int = 0) -> np.ndarray:
    """A textured picture that also holds genuinely green pixels (art, not a mask)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.dstack([xx * 255 // width, yy * 255 // height, (xx * yy) % 200]).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(0, 8, rgb.shape), 0, 250).astype(np.uint8)
    rgb[5:15, 5:40] = GREEN  # green art outside the mask: must survive
    return rgb


def box_mask(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[50:70, 60:150] = True
    mask[90:130, 20:35] = True
    return mask


def png_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", **kw)
    return buf.getvalue()


def mask_image(mask: np.ndarray, value: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    out = np.zeros(mask.shape + (3,), np.uint8)
    out[mask] = value
    return out


# --- the color parser ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["#00ff00", "00ff00", "#0f0", "0,255,0", " 0, 255 , 0 ",
                                  "lime", "Lime", "rgb(0,255,0)", "hsl(120,100%,50%)"])
def test_color_spellings(text: str) -> None:
    assert parse_color(text) == GREEN


@pytest.mark.parametrize("text", ["", "1,2", "300,0,0", "0,255,0,0", "-1,0,0", "greenish",
                                  "#00ff0080", "#12345"])
def test_bad_colors_are_one_line_errors(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_color(text)
    assert "\n" not in str(exc.value) and str(exc.value)


# --- reading a mask -----------------------------------------------------------------------
def test_non_black_is_fill_transparent_is_not() -> None:
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[0, 0] = (255, 255, 255)
    rgb[1, 1] = (1, 0, 0)  # any non-black pixel of a lossless mask
    rgb[2, 2] = (0, 0, 200)
    rgb[3, 3] = (255, 255, 255)
    alpha = np.full((4, 5), 255, np.uint8)
    alpha[3, 3] = 0  # painted, but on a transparent part of the layer
    fill = mask_from_pixels(rgb, alpha)
    assert fill.sum() == 3 and fill[0, 0] and fill[1, 1] and fill[2, 2] and not fill[3, 3]


def test_jpeg_mask_ignores_ringing() -> None:
    mask = box_mask((150, 200))
    buf = io.BytesIO()
    Image.fromarray(mask_image(mask)).save(buf, "JPEG", quality=75)
    fill = load_mask_file(buf.getvalue(), (200, 150))
    # ringing next to the edges is not fill; the box is, up to the JPEG-blurred edge pixels
    assert (fill ^ mask).sum() <= 0.02 * mask.sum()


def test_grey_and_palette_masks(tmp_path: Path) -> None:
    mask = box_mask((150, 200))
    grey = tmp_path / "grey.png"
    Image.fromarray((mask * 255).astype(np.uint8)).save(grey)
    pal = tmp_path / "pal.png"
    Image.fromarray(mask_image(mask, (255, 0, 0))).convert("P", palette=Image.ADAPTIVE).save(pal)
    for path in (grey, pal):
        assert np.array_equal(load_mask_file(path, (200, 150)), mask)


def test_mask_errors(tmp_path: Path) -> None:
    mask = box_mask((150, 200))
    with pytest.raises(InputError, match="is 200x150 but the image is 100x150"):
        load_mask_file(png_bytes(mask_image(mask)), (100, 150))
    with pytest.raises(InputError, match="marks nothing to fill"):
        load_mask_file(png_bytes(np.zeros((150, 200, 3), np.uint8)), (200, 150))
    text = tmp_path / "mask.png"
    text.write_text("not an image")
    with pytest.raises(InputError, match="mask"):
        load_mask_file(text, (200, 150))


# --- the library --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["bar", "mosaic"])
def test_decensor_with_a_mask_fills_only_the_mask(mode: str) -> None:
    rgb = picture()
    mask = box_mask(rgb.shape[:2])
    if mode == "bar":
        rgb[mask] = 0  # black censor bars: no mask color anywhere, the mask file says where
    else:  # 8 px mosaic blocks over the masked boxes
        blocks = rgb[::8, ::8].repeat(8, axis=0).repeat(8, axis=1)[:rgb.shape[0], :rgb.shape[1]]
        rgb[mask] = blocks[mask]
    result = decensor(Image.fromarray(rgb), mode=mode, engine="classical",
                      mask=png_bytes(mask_image(mask)))
    out = result.pixels[0].rgb
    assert result.regions == 2 and result.notice is None and result.warning is None
    assert np.array_equal(out[~mask], rgb[~mask])  # green art included: untouched
    changed = np.abs(out.astype(int) - rgb.astype(int)).max(axis=2) > 0
    assert changed[mask].mean() > 0.5


# --- the CLI ------------------------------------------------------------------------------
def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["decensor", "-q", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_cli_mask_file(tmp_path: Path, capsys) -> None:
    rgb = picture()
    mask = box_mask(rgb.shape[:2])
    rgb[mask] = 0
    Image.fromarray(rgb).save(tmp_path / "page.png")
    Image.fromarray(mask_image(mask)).save(tmp_path / "m.png")
    code, out, err = run([str(tmp_path / "page.png"), "--mask", str(tmp_path / "m.png"),
                          "-o", str(tmp_path / "out"), "--engine", "classical"], capsys)
    assert code == 0, err
    result = np.asarray(Image.open(tmp_path / "out" / "page.png").convert("RGB"))
    assert np.array_equal(result[~mask], rgb[~mask])
    assert not np.array_equal(result[mask], rgb[mask])


def test_cli_mask_folder_by_base_name(tmp_path: Path, capsys) -> None:
    images, masks = tmp_path / "in", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    expected = {}
    for seed, name in enumerate(["a", "b"]):
        rgb = picture(seed=seed)
        mask = box_mask(rgb.shape[:2])
        if seed:
            mask = mask[:, ::-1].copy()
        rgb[mask] = 0
        Image.fromarray(rgb).save(images / f"{name}.png")
        expected[name] = (rgb, mask)
    Image.fromarray(mask_image(expected["a"][1])).save(masks / "a.png")
    Image.fromarray(mask_image(expected["b"][1])).save(masks / "b.mask.png")
    Image.fromarray(picture(seed=5)).save(images / "c.png")  # no mask: its own error
    code, _, err = run([str(images), "--mask", str(masks), "-o", str(tmp_path / "out"),
                        "--engine", "classical"], capsys)
    assert code == 1 and "c.png: no mask named c.mask.png" in err
    for name, (rgb, mask) in expected.items():
        result = np.asarray(Image.open(tmp_path / "out" / f"{name}.png").convert("RGB"))
        assert np.array_equal(result[~mask], rgb[~mask])
        assert not np.array_equal(result[mask], rgb[mask])
    assert not (tmp_path / "out" / "c.png").exists()


def test_cli_masks_beside_the_images_are_not_inputs(tmp_path: Path, capsys) -> None:
    rgb = picture()
    mask = box_mask(rgb.shape[:2])
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(mask_image(mask)).save(tmp_path / "a.mask.png")
    code, out, err = run([str(tmp_path), "--mask", str(tmp_path), "-o", str(tmp_path / "out"),
                          "--engine", "classical"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png"]


@pytest.mark.parametrize("problem", ["size", "empty", "not-an-image"])
def test_cli_bad_mask_is_exit_2_and_writes_nothing(tmp_path: Path, capsys, problem: str) -> None:
    rgb = picture()
    Image.fromarray(rgb).save(tmp_path / "page.png")
    bad = tmp_path / "mask.png"
    if problem == "size":
        Image.fromarray(mask_image(box_mask((280, 299)))).save(bad)
    elif problem == "empty":
        Image.fromarray(np.zeros((280, 300, 3), np.uint8)).save(bad)
    else:
        bad.write_bytes(b"GIF89a not really")
    code, _, err = run([str(tmp_path / "page.png"), "--mask", str(bad),
                        "-o", str(tmp_path / "out"), "--engine", "classical"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "--mask" in err and str(bad) in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("color", ["#ff00ff", "ff00ff", "255,0,255", "magenta"])
def test_cli_mask_color_spellings(tmp_path: Path, capsys, color: str) -> None:
    rgb = picture()
    mask = box_mask(rgb.shape[:2])
    rgb[mask] = (255, 0, 255)
    Image.fromarray(rgb).save(tmp_path / "page.png")
    code, out, err = run([str(tmp_path / "page.png"), "--mask-color", color,
                          "-o", str(tmp_path / "out"), "--engine", "classical"], capsys)
    assert code == 0, err
    result = np.asarray(Image.open(tmp_path / "out" / "page.png").convert("RGB"))
    assert np.array_equal(result[~mask], rgb[~mask])


def test_cli_bad_mask_color(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["decensor", "x.png", "--mask-color", "greenish"])
    assert exc.value.code == 2
    assert "cannot read 'greenish' as a color" in capsys.readouterr().err


# --- the server ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_url() -> str:
    from deepcream.server import Settings
    from deepcream.server.runner import serve_in_thread

    with serve_in_thread(Settings(engine="classical", batch_window_ms=2)) as url:
        yield url


def post(url: str, files: dict, data: dict | None = None) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=120, trust_env=False) as client:
        return client.post("/v1/decensor", files=files, data=data or {})


@pytest.mark.parametrize("mode", ["bar", "mosaic"])
def test_server_mask_part(server_url: str, mode: str) -> None:
    rgb = picture()
    mask = box_mask(rgb.shape[:2])
    resp = post(server_url, {"image": ("p.png", png_bytes(rgb)),
                             "mask": ("m.png", png_bytes(mask_image(mask)))}, {"mode": mode})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-deepcream-regions"] == "2"
    out = np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGB"))
    assert np.array_equal(out[~mask], rgb[~mask])


@pytest.mark.parametrize(("mask", "status", "words"), [
    (png_bytes(mask_image(box_mask((280, 299)))), 422, "is 299x280 but the image is 300x280"),
    (png_bytes(np.zeros((280, 300, 3), np.uint8)), 422, "marks nothing to fill"),
    (b"plain text, not an image", 415, "'mask': not a supported image"),
])
def test_server_bad_mask(server_url: str, mask: bytes, status: int, words: str) -> None:
    resp = post(server_url, {"image": ("p.png", png_bytes(picture())), "mask": ("m.png", mask)})
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["status"] == status and words in body["message"]


def test_server_bad_mask_color_names_the_field(server_url: str) -> None:
    resp = post(server_url, {"image": ("p.png", png_bytes(picture()))}, {"mask_color": "1,2"})
    assert resp.status_code == 422 and "form field 'mask_color'" in resp.json()["message"]


# --- messages where the user looks ---------------------------------------------------------
def jpeg_strokes() -> bytes:
    rgb = picture()
    rgb[60:84, 30:260] = GREEN
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_server_messages_name_api_fields(server_url: str) -> None:
    found = post(server_url, {"image": ("j.jpg", jpeg_strokes())})
    assert found.status_code == 200 and int(found.headers["x-deepcream-regions"]) >= 1
    assert "mask_tolerance=0" in found.headers["x-deepcream-mask-note"]
    nothing = post(server_url, {"image": ("p.png", png_bytes(picture()[..., ::-1]))},
                   {"mask_color": "#ff00ff"})
    assert nothing.headers["x-deepcream-regions"] == "0"
    assert nothing.headers["x-deepcream-warning"].startswith("no regions found")
    exact = post(server_url, {"image": ("j.jpg", jpeg_strokes())}, {"mask_tolerance": "0"})
    assert "mask_tolerance=" in exact.headers["x-deepcream-warning"]
    assert "--" not in exact.headers["x-deepcream-warning"]


def test_cli_no_regions_is_a_warning_counted_apart(tmp_path: Path, capsys) -> None:
    Image.fromarray(picture()).save(tmp_path / "a.png")
    (tmp_path / "b.jpg").write_bytes(jpeg_strokes())
    code, out, err = run([str(tmp_path / "a.png"), str(tmp_path / "b.jpg"),
                          "--mask-color", "#ff00ff", "-o", str(tmp_path / "out"),
                          "--engine", "classical"], capsys)
    assert code == 1
    lines = err.splitlines()
    assert sum("a.png" in line for line in lines) == 1  # once per file
    assert any(line.startswith("deepcream: warning: ") and "no regions found" in line
               for line in lines)
    assert "2 with no regions found (no output written)" in lines[-1]
    code, out, err = run([str(tmp_path / "b.jpg"), "--mask-tolerance", "0",
                          "-o", str(tmp_path / "out2"), "--engine", "classical"], capsys)
    assert code == 0 and "--mask-tolerance" in err and "mask_tolerance=" not in err
