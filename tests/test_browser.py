"""The web page in a real browser: Debian's chromium, headless, driven by Playwright.

Covers the page as a user drives it: open images (file input, drag-and-drop), paint strokes
with the mouse, erase, undo/redo, decensor, download the mask; mosaic detect -> edit ->
decensor; a queue of three; a server error; the no-region notice; a 375 px touch screen.
Screenshots go to the pytest tmp dir, or to $DEEPCREAM_PAGE_SHOTS (docs/page/ is made so:
`DEEPCREAM_PAGE_SHOTS=docs/page pytest tests/test_browser.py`).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from deepcream.server import Settings
from deepcream.server.runner import serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GREEN = (0, 255, 0)
EXAMPLES = Path(__file__).resolve().parents[1] / "deepcream" / "examples"
EXAMPLE = EXAMPLES / "example-clean.png"
MAX_PIXELS = 1_500_000  # small, so a real over-limit upload is a real server error
EDGE = 2  # px: the painted mask may differ from the ideal stroke shape this close to its edge

if not CHROMIUM.exists():
    pytest.skip("browser test needs Debian's chromium at /usr/bin/chromium "
                "(apt-get install chromium; scripts/test.sh does it as root)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(Settings(engine="classical", max_pixels=MAX_PIXELS)) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def shots(tmp_path: Path):  # type: ignore[no-untyped-def]
    """shots("name", page) saves a JPEG screenshot (small enough to keep in docs/)."""
    folder = Path(os.environ.get("DEEPCREAM_PAGE_SHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)

    def shoot(name: str, pg, full_page: bool = False) -> None:  # type: ignore[no-untyped-def]
        pg.screenshot(path=str(folder / f"{name}.jpg"), type="jpeg", quality=80, full_page=full_page)

    return shoot


def _open_page(browser, url: str, **context_args):  # type: ignore[no-untyped-def]
    context = browser.new_context(**({"viewport": {"width": 1200, "height": 900}} | context_args))
    pg = context.new_page()
    pg.outside = []  # type: ignore[attr-defined]
    pg.errors = []  # type: ignore[attr-defined]
    # Nothing may be fetched from anywhere but this server (no CDN).
    pg.on("request", lambda r: None if r.url.startswith((url, "blob:", "data:"))
          else pg.outside.append(r.url))
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.goto(url + "/")
    pg.wait_for_function("() => document.body.dataset.ready === 'true'")
    return context, pg


def _close(context, pg) -> None:  # type: ignore[no-untyped-def]
    context.close()
    assert pg.outside == [], f"the page requested outside resources: {pg.outside}"
    # 4xx answers the page handles show up as "Failed to load resource"; anything else
    # (script errors, CSP violations) is a bug.
    unexpected = [m for m in pg.errors if "Failed to load resource" not in m]
    assert unexpected == [], unexpected


@pytest.fixture()
def page(browser, url: str):  # type: ignore[no-untyped-def]
    context, pg = _open_page(browser, url)
    yield pg
    _close(context, pg)


# --- pictures ----------------------------------------------------------------------------------
def scene(width: int = 480, height: int = 360, seed: int = 0) -> np.ndarray:
    """The packaged example illustration (no green paint), resized and mirrored per seed;
    a smooth textured picture should a build lack it."""
    if EXAMPLE.exists():
        img = Image.open(EXAMPLE).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
        arr = np.asarray(img)
        return np.array(arr[:, ::-1] if seed % 2 else arr)  # writable copy
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([120 + 80 * np.sin(xx / 23.0 + seed), 100 + 50 * np.cos(yy / 17.0),
                    140 + 50 * np.sin((xx + yy) / 31.0)], axis=-1)
    img += rng.normal(0, 5, img.shape)
    return np.clip(img, 0, 250).astype(np.uint8)


def pixelate(img: np.ndarray, box: tuple[int, int, int, int], block: int = 8) -> np.ndarray:
    x1, y1, x2, y2 = box
    out = img.copy()
    for y in range(y1, y2, block):
        for x in range(x1, x2, block):
            out[y:min(y + block, y2), x:min(x + block, x2)] = img[y, x]
    return out


def save(arr: np.ndarray, path: Path) -> Path:
    Image.fromarray(arr).save(path)
    return path


def decode(raw: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def capsule(shape: tuple[int, int], a: tuple[float, float], b: tuple[float, float],
            radius: float) -> np.ndarray:
    """Pixels (centers) within `radius` of segment a-b: what a round brush paints."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float64) + 0.5
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    t = np.clip(((xx - ax) * dx + (yy - ay) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
    return np.hypot(xx - ax - t * dx, yy - ay - t * dy) <= radius


def assert_mask_matches(mask: np.ndarray, expected: np.ndarray) -> None:
    """Equal except within EDGE px of the expected shape's border (anti-aliased brush edge)."""
    sure_in = ndimage.binary_erosion(expected, iterations=EDGE)
    sure_out = ~ndimage.binary_dilation(expected, iterations=EDGE)
    assert mask[sure_in].all(), f"{np.count_nonzero(~mask[sure_in])} painted pixels missing"
    assert not mask[sure_out].any(), f"{np.count_nonzero(mask[sure_out])} pixels outside the paint"


# --- driving the page ----------------------------------------------------------------------------
def load_files(pg, *paths: Path) -> None:  # type: ignore[no-untyped-def]
    before = pg.locator("#queue li").count()
    pg.set_input_files("#files", [str(p) for p in paths])
    pg.wait_for_function(f"() => document.querySelectorAll('#queue li').length === {before + len(paths)}")


def drop_file(pg, path: Path) -> None:  # type: ignore[no-untyped-def]
    """A real drop event carrying the file, as dragging it from a file manager does."""
    before = pg.locator("#queue li").count()
    pg.evaluate(
        """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, { type: "image/png" }));
            const at = { bubbles: true, cancelable: true, dataTransfer: dt };
            document.querySelector("main").dispatchEvent(new DragEvent("dragover", at));
            document.querySelector("main").dispatchEvent(new DragEvent("drop", at));
        }""",
        [path.name, base64.b64encode(path.read_bytes()).decode()],
    )
    pg.wait_for_function(f"() => document.querySelectorAll('#queue li').length === {before + 1}")


def paste_file(pg, path: Path) -> None:  # type: ignore[no-untyped-def]
    """A paste event carrying the image, as Ctrl+V after copying an image does."""
    before = pg.locator("#queue li").count()
    pg.evaluate(
        """([b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], "image.png", { type: "image/png" }));
            document.dispatchEvent(new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: dt }));
        }""",
        [base64.b64encode(path.read_bytes()).decode()],
    )
    pg.wait_for_function(f"() => document.querySelectorAll('#queue li').length === {before + 1}")


def to_client(pg, x: float, y: float) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    cx, cy = pg.evaluate("([x, y]) => window.deepcream.toClient(x, y)", [x, y])
    return cx, cy


def drag(pg, a: tuple[float, float], b: tuple[float, float], steps: int = 12) -> None:  # type: ignore[no-untyped-def]
    """Press at image pixel a, move to b, release (the mouse, through pointer events)."""
    pg.evaluate("() => document.getElementById('editor').scrollIntoView({ block: 'center' })")
    pg.mouse.move(*to_client(pg, *a))
    pg.mouse.down()
    pg.mouse.move(*to_client(pg, *b), steps=steps)
    pg.mouse.up()


def set_size(pg, size: int) -> None:  # type: ignore[no-untyped-def]
    pg.fill("#brush-size", str(size))
    assert pg.inner_text("#brush-size-out") == str(size)


def painted_count(pg) -> int:  # type: ignore[no-untyped-def]
    return pg.evaluate("""() => { const i = window.deepcream.state.cur;
        const d = i.maskCtx.getImageData(0, 0, i.w, i.h).data; let n = 0;
        for (let p = 3; p < d.length; p += 4) n += d[p] >= 128; return n; }""")


def download(pg, selector: str, tmp_path: Path) -> np.ndarray:  # type: ignore[no-untyped-def]
    with pg.expect_download() as info:
        pg.click(selector)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return np.asarray(Image.open(path).convert("RGB"))


def shown_image(pg, selector: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Decode the bytes behind an <img> the page shows (its blob: URL)."""
    data_url = pg.evaluate(
        """async (sel) => {
            const blob = await (await fetch(document.querySelector(sel).src)).blob();
            return await new Promise((ok) => { const r = new FileReader();
                r.onload = () => ok(r.result); r.readAsDataURL(blob); });
        }""",
        selector,
    )
    return decode(base64.b64decode(data_url.split(",", 1)[1]))


def decensor(pg) -> None:  # type: ignore[no-untyped-def]
    pg.evaluate("document.body.dataset.state = 'idle'")
    pg.click("#submit")
    pg.wait_for_selector("body[data-state=done]", timeout=120_000)


# --- tests -----------------------------------------------------------------------------------------
def test_paint_erase_undo_decensor_download(page, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    source = scene(seed=1)
    load_files(page, save(source, tmp_path / "portrait.png"))
    assert page.is_visible("#view") and page.inner_text("#queue li .badge") == "not painted"
    set_size(page, 16)
    page.keyboard.press("]")  # 16 * 1.25
    assert page.inner_text("#brush-size-out") == "20"
    stroke1, stroke2 = ((60, 80), (300, 100)), ((380, 60), (390, 300))
    drag(page, *stroke1)
    # Zoom in around the pointer and move the view (right-drag): strokes still land on the
    # image pixels under the pointer.
    fitted = page.evaluate("window.deepcream.state.cur.view.s")
    page.mouse.move(*to_client(page, 380, 180))
    page.mouse.wheel(0, -120)
    page.wait_for_function(f"() => window.deepcream.state.cur.view.s > {1.15 * fitted}")
    start = page.evaluate("[window.deepcream.state.cur.view.x, window.deepcream.state.cur.view.y]")
    page.mouse.move(*to_client(page, 380, 180))
    page.mouse.down(button="right")
    page.mouse.move(*to_client(page, 375, 175), steps=4)
    page.mouse.up(button="right")
    moved = page.evaluate("[window.deepcream.state.cur.view.x, window.deepcream.state.cur.view.y]")
    assert moved[0] < start[0] - 5 and moved[1] < start[1] - 5, (start, moved)
    drag(page, *stroke2)
    page.keyboard.press("f")
    assert page.evaluate("window.deepcream.state.cur.view.s") == fitted
    # Hold H: the mask layer hides while the key is down.
    page.keyboard.down("h")
    assert page.evaluate("getComputedStyle(document.getElementById('view-mask')).visibility") == "hidden"
    page.keyboard.up("h")
    assert page.evaluate("getComputedStyle(document.getElementById('view-mask')).visibility") == "visible"
    page.keyboard.press("e")
    eraser = ((340, 180), (440, 180))
    drag(page, *eraser)
    erased = painted_count(page)
    page.keyboard.press("Control+z")
    assert painted_count(page) > erased  # the erased part is back
    page.keyboard.press("Control+Shift+z")
    assert painted_count(page) == erased
    page.keyboard.press("b")
    page.mouse.move(*to_client(page, 200, 250))
    shots("1-painted", page)

    shape = source.shape[:2]
    expected = (capsule(shape, *stroke1, 10) | capsule(shape, *stroke2, 10)) & ~capsule(shape, *eraser, 10)
    mask = download(page, "#download-mask", tmp_path)
    assert mask.shape == source.shape
    assert set(np.unique(mask)) <= {0, 255}, "the mask is not white-on-black"
    painted = mask[..., 0] == 255
    assert_mask_matches(painted, expected)
    green = download(page, "#download-green", tmp_path)
    assert np.all(green[painted] == GREEN) and np.array_equal(green[~painted], source[~painted])

    page.evaluate("""() => { const send = XMLHttpRequest.prototype.send;
        XMLHttpRequest.prototype.send = function (body) {
            window.sentParts = [...body.entries()].map(([k, v]) => [k, v.name || v]);
            return send.call(this, body); }; }""")
    decensor(page)
    # The mask travels as its own file part next to the untouched image file.
    parts = dict(page.evaluate("window.sentParts"))
    assert parts["image"] == "portrait.png" and parts["mask"] == "mask.png", parts
    assert page.is_visible("#result-img") and page.is_visible("#before-img")
    assert "Done: 3 regions filled" in page.inner_text("#message")  # the eraser cut stroke 2 in two
    result = shown_image(page, "#result-img")
    assert np.array_equal(shown_image(page, "#before-img"), source)
    assert result.shape == source.shape
    # Changed only where painted: bit-identical outside the downloaded mask ...
    assert np.array_equal(result[~painted], source[~painted])
    # ... which is the painted shape within the brush's anti-aliased edge.
    changed = np.any(result != source, axis=-1)
    assert not changed[~ndimage.binary_dilation(expected, iterations=EDGE)].any()
    assert changed[ndimage.binary_erosion(expected, iterations=EDGE)].any()
    # Inside, the page shows exactly the engine's fill of that image and that mask (a fill
    # may keep a pixel's color where it restores it, so "changed" alone proves little).
    from deepcream import decensor as library_decensor
    from deepcream.imageio import Pixels

    engine_fill = library_decensor(Pixels(source), engine="classical", mask=painted).pixels[0].rgb
    assert np.array_equal(result, engine_fill)
    page.fill("#split", "35")
    shots("2-result-slider", page)
    page.click("#view-side")
    assert page.get_attribute("#compare", "class") == "compare side"
    shots("3-result-side-by-side", page)
    saved = download(page, "#download", tmp_path)
    assert np.array_equal(saved, result)


def test_mosaic_detect_edit_decensor(page, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    clean = scene(seed=3)
    box = (160, 96, 288, 224)
    pixelated = pixelate(clean, box)
    load_files(page, save(pixelated, tmp_path / "mosaic.png"))
    page.check("input[name=mode][value=mosaic]")
    assert page.is_visible("#detect")
    page.click("#detect")
    page.wait_for_selector("body[data-state=done]")
    assert "Found 1 pixelated area (block size 8 px)" in page.inner_text("#message")
    detected = download(page, "#download-mask", tmp_path)[..., 0] == 255
    truth = np.zeros(clean.shape[:2], bool)
    truth[box[1]:box[3], box[0]:box[2]] = True
    assert (detected & truth).sum() / (detected | truth).sum() > 0.9
    page.evaluate("() => document.getElementById('editor').scrollIntoView({ block: 'end' })")
    shots("4-mosaic-detected", page)
    # Edit: erase a corner of the detection, add a strip beside it.
    set_size(page, 16)
    page.keyboard.press("e")
    corner = ((box[0], box[1]), (box[0] + 30, box[1]))
    drag(page, *corner)
    page.keyboard.press("r")
    drag(page, (box[2], 140), (box[2] + 20, 180))
    edited = download(page, "#download-mask", tmp_path)[..., 0] == 255
    shape = clean.shape[:2]
    assert_mask_matches(edited, (detected & ~capsule(shape, *corner, 8)) | _rect(shape, box[2], 140, 20, 40))
    shots("5-mosaic-edited", page)
    page.select_option("#variations", "2")
    decensor(page)
    assert page.locator("#variation-buttons button").count() == 2
    for index in range(2):
        page.locator("#variation-buttons button").nth(index).click()
        result = shown_image(page, "#result-img")
        assert np.array_equal(result[~edited], pixelated[~edited])
        assert np.any(result[edited] != pixelated[edited])
    page.locator("#variation-buttons button").nth(0).click()
    page.fill("#split", "30")
    page.evaluate("() => document.getElementById('compare').scrollIntoView({ block: 'end' })")
    shots("6-mosaic-result", page)


def test_mosaic_green_copy_with_original(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """DeepCreamPy's mosaic input: a green-painted copy, then its pixelated original."""
    colored = np.asarray(Image.open(EXAMPLES / "example-mosaic-colored.png").convert("RGB"))
    original = np.asarray(Image.open(EXAMPLES / "example-mosaic.png").convert("RGB"))
    region = np.all(colored == GREEN, axis=-1)
    load_files(page, EXAMPLES / "example-mosaic-colored.png")
    assert painted_count(page) == int(region.sum())
    page.check("input[name=mode][value=mosaic]")
    decensor(page)
    assert "paint over the mosaic" in page.inner_text("#message") and page.is_hidden("#result")
    page.set_input_files("#original", str(EXAMPLES / "example-mosaic.png"))
    page.wait_for_function("() => !window.deepcream.state.cur.paintedCopy")
    decensor(page)
    result = shown_image(page, "#result-img")
    assert np.array_equal(shown_image(page, "#before-img"), original)
    assert np.array_equal(result[~region], original[~region])
    assert np.any(result[region] != original[region])


def _rect(shape: tuple[int, int], x: int, y: int, w: int, h: int) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[y:y + h, x:x + w] = True
    return out


def test_queue_of_three_with_drop_and_paint_in_images(page, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    images, bars = [], []
    for seed in range(3):
        img = scene(320, 240, seed=10 + seed)
        bar = _rect(img.shape[:2], 50 + 30 * seed, 60, 160, 18)
        img[bar] = GREEN  # painted elsewhere: the page finds the paint and shows it as the mask
        images.append(img)
        bars.append(bar)
    paths = [save(img, tmp_path / f"page-{i}.png") for i, img in enumerate(images)]
    drop_file(page, paths[0])
    paste_file(page, paths[1])
    load_files(page, paths[2])
    assert page.locator("#queue li").count() == 3
    assert page.locator("#queue li[data-state=painted]").count() == 3
    assert painted_count(page) == int(bars[0].sum())  # the first dropped image is shown
    page.evaluate("""() => { window.progressSeen = [];
        new MutationObserver(() => window.progressSeen.push(document.getElementById('queue-text').textContent))
          .observe(document.getElementById('queue-text'), { childList: true, characterData: true, subtree: true }); }""")
    page.evaluate("document.body.dataset.state = 'idle'")
    page.click("#decensor-all")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    seen = page.evaluate("window.progressSeen")
    assert [s for s in seen if s.startswith("Decensoring")] == [
        "Decensoring 1 of 3…", "Decensoring 2 of 3…", "Decensoring 3 of 3…"]
    assert page.inner_text("#queue-text") == "3 of 3 decensored."
    assert page.evaluate("document.getElementById('queue-progress').value") == 3
    assert page.locator("#queue li[data-state=done]").count() == 3
    shots("7-queue-done", page)
    for index in range(3):
        page.locator("#queue li .pick").nth(index).click()
        result = shown_image(page, "#result-img")
        assert np.array_equal(result[~bars[index]], images[index][~bars[index]])
        rgb = result[bars[index]].astype(int)
        assert not np.any(rgb[:, 1] - np.maximum(rgb[:, 0], rgb[:, 2]) > 100), "green left"
    # Back to the mask of the last one: the editor shows it at its fitted size.
    page.set_viewport_size({"width": 1000, "height": 800})  # resized while the result shows
    page.click("#tab-edit")
    box = page.locator("#editor").bounding_box()
    assert page.is_visible("#view") and box
    # (The editor fits the view in its next animation frame once it shows: wait for it.)
    page.wait_for_function("() => window.deepcream.state.cur.view !== null")
    view = page.evaluate("window.deepcream.state.cur.view")
    assert abs(view["s"] - min(box["width"] / 320, box["height"] / 240)) < 0.02  # fitted again
    assert painted_count(page) == int(bars[2].sum())


def test_server_error_keeps_mask_and_stale_result_is_not_current(page, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    small = scene(seed=4)
    load_files(page, save(small, tmp_path / "small.png"))
    set_size(page, 24)
    drag(page, (100, 100), (300, 120))
    decensor(page)
    assert page.is_visible("#result") and page.get_attribute("#result", "data-stale") == "false"
    # A mode switch makes that result outdated: it is no longer shown as the current one.
    page.check("input[name=mode][value=mosaic]")
    assert page.is_hidden("#result") and page.inner_text("#tab-result") == "Result (outdated)"
    page.click("#tab-result")
    assert page.is_visible("#stale") and page.get_attribute("#result", "data-stale") == "true"
    page.check("input[name=mode][value=bar]")

    # Over the server's pixel limit: a real 413 from the server.
    big = scene(1400, 1100, seed=5)
    assert big.shape[0] * big.shape[1] > MAX_PIXELS
    load_files(page, save(big, tmp_path / "big.png"))
    set_size(page, 60)
    drag(page, (200, 300), (1100, 500))
    before = painted_count(page)
    assert before > 0
    decensor(page)
    message = page.inner_text("#message")
    assert "Decensor failed" in message and "limit" in message and "mask is kept" in message
    assert page.get_attribute("#message", "class") == "message error"
    assert painted_count(page) == before
    assert page.is_hidden("#result") and page.is_disabled("#tab-result")
    assert page.locator("#queue li[data-state=error]").count() == 1
    shots("8-server-error", page)


def test_notice_for_image_without_regions(page, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    # This server runs the classical engine: the banner names the command that installs models.
    page.wait_for_selector("#engine-banner")
    assert "deepcream fetch-model" in page.inner_text("#engine-banner")
    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text, not a picture")
    page.set_input_files("#files", str(not_image))
    page.wait_for_selector("#open-message")
    assert "notes.png: this browser cannot open it as an image" in page.inner_text("#open-message")
    assert page.locator("#queue li").count() == 0
    load_files(page, save(scene(seed=6), tmp_path / "clean.png"))
    decensor(page)
    text = page.inner_text("#message")
    # The page's own words name its controls; the server's notice follows.
    assert "Nothing was filled" in text and "Brush" in text and "Decensor" in text
    assert "Server: no regions found: no pixel is painted in the mask color" in text
    assert page.get_attribute("#message", "class") == "message warn"
    assert page.locator("#queue li[data-state=notice]").count() == 1
    shots("9-no-regions-notice", page)
    # Lasso: a closed polygon becomes mask.
    page.keyboard.press("l")
    triangle = [(100, 100), (300, 100), (200, 250)]
    page.evaluate("() => document.getElementById('editor').scrollIntoView({ block: 'center' })")
    page.mouse.move(*to_client(page, *triangle[0]))
    page.mouse.down()
    for point in triangle[1:] + triangle[:1]:
        page.mouse.move(*to_client(page, *point), steps=8)
    page.mouse.up()
    assert abs(painted_count(page) - 0.5 * 200 * 150) < 0.03 * 200 * 150
    # Shift + rectangle erases: the triangle's top 50 rows (200 px wide there) go.
    page.keyboard.press("r")
    page.keyboard.down("Shift")
    drag(page, (90, 90), (310, 150))
    page.keyboard.up("Shift")
    remaining = 0.5 * 100 * (200 * 100 / 150)  # the triangle below y = 150
    assert abs(painted_count(page) - remaining) < 0.05 * remaining
    page.check("input[name=mode][value=mosaic]")
    page.click("#detect")
    page.wait_for_selector("body[data-state=done]")
    assert "No pixelated area found" in page.inner_text("#message")


def test_paint_of_another_color(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    img = scene(seed=8)
    bar = _rect(img.shape[:2], 100, 200, 220, 14)
    img[bar] = (255, 0, 255)
    load_files(page, save(img, tmp_path / "magenta.png"))
    assert painted_count(page) == 0  # no green paint in it
    page.fill("#mask_color", "#ff00ff")  # the Paint color: the server finds that paint
    page.wait_for_function("() => window.deepcream.state.cur.undo.length === 1")
    assert painted_count(page) == int(bar.sum())
    assert "#ff00ff paint in this image is shown as the mask" in page.inner_text("#message")
    page.keyboard.press("Control+z")
    assert painted_count(page) == 0


def test_jpeg_paint_tolerance_and_soft_edges(page, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    """Green strokes saved as JPEG: any server warning is shown in the page's words, and
    Tolerance + Soft edges (the page's controls) bring the whole stroke into the mask."""
    img = scene(seed=9)
    stroke = _rect(img.shape[:2], 50, 100, 350, 14)
    img[stroke] = GREEN
    path = tmp_path / "painted.jpg"
    Image.fromarray(img).save(path, "JPEG", quality=85)
    load_files(page, path)
    if page.get_attribute("#message", "class") == "message warn":  # today's exact-color finder
        text = page.inner_text("#message")
        assert "raise Tolerance" in text and "Soft edges" in text and "Server: " in text
        shots("11-jpeg-warning", page)
    page.fill("#mask_tolerance", "64")
    page.dispatch_event("#mask_tolerance", "change")
    page.wait_for_function("() => window.deepcream.state.cur.undo.length === 1 && !window.deepcream.state.busy")
    page.check("#antialias")
    page.wait_for_function("() => window.deepcream.state.cur.undo.length === 2")
    mask = download(page, "#download-mask", tmp_path)[..., 0] == 255
    assert mask[stroke].mean() > 0.99, "stroke pixels left out of the mask"
    assert not mask[~ndimage.binary_dilation(stroke, iterations=4)].any(), "mask beyond the stroke"


def test_narrow_touch_screen(browser, url: str, tmp_path: Path, shots) -> None:  # type: ignore[no-untyped-def]
    context, pg = _open_page(browser, url, viewport={"width": 375, "height": 740},
                             has_touch=True, is_mobile=True, device_scale_factor=2)
    load_files(pg, save(scene(seed=7), tmp_path / "phone.png"))
    assert pg.evaluate("document.documentElement.scrollWidth") <= 375, "page scrolls sideways"
    for selector in ("#submit", "#view", "[data-tool=eraser]", "#undo", "#files + span"):
        box = pg.locator(selector).first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 375, selector
    # One finger paints (touch pointer events through the browser's input pipeline).
    cdp = context.new_cdp_session(pg)
    pg.evaluate("() => document.getElementById('editor').scrollIntoView({ block: 'center' })")
    points = [to_client(pg, x, 180) for x in range(80, 400, 20)]
    for kind, pts in [("touchStart", points[:1])] + [("touchMove", [p]) for p in points[1:]]:
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [
            {"x": x, "y": y} for x, y in pts]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    painted = painted_count(pg)
    assert painted > 300 * 10
    assert not pg.is_disabled("#undo")
    shots("10-phone-375px", pg, full_page=True)
    # A second finger turns the touch into move/zoom: the first finger's dot is taken back
    # and spreading the fingers zooms in.
    scale = pg.evaluate("window.deepcream.state.cur.view.s")
    (ax, ay), (bx, by) = to_client(pg, 200, 100), to_client(pg, 280, 100)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": ax, "y": ay, "id": 1}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [
        {"x": ax, "y": ay, "id": 1}, {"x": bx, "y": by, "id": 2}]})
    for step in range(1, 6):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": ax - 8 * step, "y": ay, "id": 1}, {"x": bx + 8 * step, "y": by, "id": 2}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    assert painted_count(pg) == painted
    assert pg.evaluate("window.deepcream.state.cur.view.s") > 1.3 * scale
    _close(context, pg)


def test_docs_render_offline(browser, url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Swagger UI at /docs renders the API from assets this server ships (no CDN)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    outside: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith((url, "data:")) else outside.append(r.url))
    pg.goto(url + "/docs")
    pg.wait_for_selector(".opblock-summary-path", timeout=60_000)
    paths = " ".join(pg.locator(".opblock-summary-path").all_inner_texts())
    pg.screenshot(path=str(tmp_path / "docs.png"))
    context.close()
    assert "/v1/decensor" in paths and "/v1/detect-mosaic" in paths and "/deepcreampy-mosaic" in paths
    assert outside == [], outside
