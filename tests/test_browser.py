"""The web page in a real browser: Debian's chromium, headless, driven by Playwright.

Uploads the bundled bar example, waits for the result and checks the shown result image
differs from the input inside the bars only. Screenshots go to the pytest tmp dir.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepcream.server import Settings
from deepcream.server.runner import serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = Path(__file__).resolve().parents[1] / "deepcream" / "examples" / "example-bar.png"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
GREEN = (0, 255, 0)

if not CHROMIUM.exists():
    pytest.skip("browser test needs Debian's chromium at /usr/bin/chromium "
                "(apt-get install chromium; scripts/test.sh does it as root)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_in_thread(Settings(engine="classical")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, url: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    outside: list[str] = []
    # Nothing may be fetched from anywhere but this server (no CDN).
    pg.on("request", lambda r: None if r.url.startswith((url, "blob:", "data:")) else outside.append(r.url))
    console_errors: list[str] = []
    pg.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: console_errors.append(str(e)))
    pg.goto(url + "/")
    yield pg
    context.close()
    assert outside == [], f"the page requested outside resources: {outside}"
    # 4xx answers the page handles show up as "Failed to load resource"; anything else
    # (script errors, CSP violations) is a bug.
    unexpected = [m for m in console_errors if "Failed to load resource" not in m]
    assert unexpected == [], unexpected


def _shown_image(pg, selector: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Decode the bytes behind an <img> the page shows (its blob: URL)."""
    data_url = pg.evaluate(
        """async (sel) => {
            const blob = await (await fetch(document.querySelector(sel).src)).blob();
            return await new Promise((ok) => { const r = new FileReader();
                r.onload = () => ok(r.result); r.readAsDataURL(blob); });
        }""",
        selector,
    )
    raw = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))


def _example(tmp_path: Path) -> Path:
    if EXAMPLE.exists():
        return EXAMPLE
    # The packaged example (deepcream/examples/make_example.py); should a build lack it, a
    # synthetic picture with the same kind of green bars keeps the page covered.
    yy, xx = np.mgrid[0:300, 0:420]
    img = np.stack([120 + 80 * np.sin(xx / 20), 110 + 60 * np.cos(yy / 15),
                    150 + 40 * np.sin((xx + yy) / 30)], -1).astype(np.uint8)
    img[80:100, 60:300] = GREEN
    img[180:260, 330:350] = GREEN
    path = tmp_path / "example-bar.png"
    Image.fromarray(img).save(path)
    return path


def test_page_decensors_the_example(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    example = _example(tmp_path)
    source = np.asarray(Image.open(example).convert("RGB"))
    bars = np.all(source == GREEN, axis=-1)
    assert bars.any(), "the example has no bars"

    page.wait_for_function("document.getElementById('engine-line').textContent.includes('Engines')")
    page.set_input_files("#image", str(example))
    page.click("#submit")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)

    assert page.is_visible("#result")
    assert page.is_visible("#result-img") and page.is_visible("#before-img")
    # Both images actually rendered (decoded by the browser, not broken).
    assert page.evaluate("document.getElementById('result-img').naturalWidth") == source.shape[1]
    assert page.evaluate("document.getElementById('before-img').naturalWidth") == source.shape[1]
    assert "Engine: classical" in page.inner_text("#result-info")

    result = _shown_image(page, "#result-img")
    before = _shown_image(page, "#before-img")
    assert np.array_equal(before, source)
    assert result.shape == source.shape
    assert np.array_equal(result[~bars], source[~bars]), "pixels outside the bars changed"
    changed = np.any(result != source, axis=-1)
    assert changed[bars].all(), "some bar pixels were not filled"

    download = page.get_attribute("#download", "href")
    assert download and download.startswith("blob:")
    page.fill("#split", "30")
    page.screenshot(path=str(tmp_path / "page-slider.png"), full_page=True)
    page.click("#view-side")
    assert page.get_attribute("#compare", "class") == "compare side"
    page.screenshot(path=str(tmp_path / "page-side-by-side.png"), full_page=True)
    with page.expect_download() as info:
        page.click("#download")
    saved = tmp_path / "downloaded.png"
    info.value.save_as(saved)
    assert np.array_equal(np.asarray(Image.open(saved).convert("RGB")), result)


def test_page_mosaic_with_original(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    colored_path = EXAMPLE.with_name("example-mosaic-colored.png")
    original_path = EXAMPLE.with_name("example-mosaic.png")
    if not (colored_path.exists() and original_path.exists()):
        pytest.skip("the mosaic examples are not in deepcream/examples")
    colored = np.asarray(Image.open(colored_path).convert("RGB"))
    original = np.asarray(Image.open(original_path).convert("RGB"))
    region = np.all(colored == GREEN, axis=-1)
    page.check("input[name=mode][value=mosaic]")
    page.set_input_files("#image", str(colored_path))
    page.set_input_files("#original", str(original_path))
    page.select_option("#variations", "2")
    page.click("#submit")
    page.wait_for_selector("body[data-state=done]", timeout=120_000)
    # Two variations: one button each, and "before" is the pixelated original.
    assert page.locator("#variation-buttons button").count() == 2
    assert np.array_equal(_shown_image(page, "#before-img"), original)
    for index in range(2):
        page.locator("#variation-buttons button").nth(index).click()
        result = _shown_image(page, "#result-img")
        assert np.array_equal(result[~region], original[~region])
        assert np.any(result[region] != original[region])
    page.screenshot(path=str(tmp_path / "page-mosaic.png"), full_page=True)


def test_page_mosaic_controls_and_errors(page, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert page.is_hidden("#mosaic-options")
    page.check("input[name=mode][value=mosaic]")
    assert page.is_visible("#original") and page.is_visible("#auto_mask")
    page.check("#auto_mask")
    assert page.is_hidden("#original") and page.is_hidden("#mask_color")
    page.check("input[name=mode][value=bar]")
    assert page.is_hidden("#mosaic-options")

    not_image = tmp_path / "notes.png"
    not_image.write_text("this is text, not a picture")
    page.set_input_files("#image", str(not_image))
    page.click("#submit")
    page.wait_for_selector("#status.error", timeout=60_000)
    assert "not a supported image" in page.inner_text("#status-text")
    page.screenshot(path=str(tmp_path / "page-error.png"), full_page=True)


def test_docs_render_offline(browser, url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Swagger UI at /docs renders the API from assets this server ships (no CDN)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    outside: list[str] = []
    pg.on("request", lambda r: None if r.url.startswith((url, "data:")) else outside.append(r.url))
    pg.goto(url + "/docs")
    pg.wait_for_selector(".opblock-summary-path", timeout=60_000)
    paths = pg.locator(".opblock-summary-path").all_inner_texts()
    pg.screenshot(path=str(tmp_path / "docs.png"))
    context.close()
    assert "/v1/decensor" in " ".join(paths) and "/deepcreampy-mosaic" in " ".join(paths)
    assert outside == [], outside
