"""The web service over real HTTP: uvicorn on 127.0.0.1 (free port) driven with httpx.

Covers every route, every error status, the drop-in routes' field names and PNG answers,
metrics, offline /docs, cross-request batching and `deepcream serve` as a process.
"""

from __future__ import annotations

import asyncio
import io
import re
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from deepcream.server import Settings
from deepcream.server.runner import serve_in_thread

GREEN = (0, 255, 0)


def scene(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    """A smooth, textured RGB picture (no pure green anywhere)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([
        120 + 80 * np.sin(xx / 23.0),
        100 + 60 * np.cos(yy / 17.0),
        140 + 50 * np.sin((xx + yy) / 31.0),
    ], axis=-1)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 250).astype(np.uint8)


def bar_image(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image with two green bars, bool mask of the bars)."""
    img = scene(seed=seed)
    mask = np.zeros(img.shape[:2], bool)
    mask[60:80, 40:200] = True
    mask[150:190, 230:250] = True
    img[mask] = GREEN
    return img, mask


def pixelate(img: np.ndarray, box: tuple[int, int, int, int], block: int = 8) -> np.ndarray:
    x1, y1, x2, y2 = box
    out = img.copy()
    for y in range(y1, y2, block):
        for x in range(x1, x2, block):
            out[y:min(y + block, y2), x:min(x + block, x2)] = img[y, x]
    return out


def mosaic_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixelated original, colored copy, mask)."""
    clean = scene(seed=3)
    box = (96, 64, 192, 160)
    original = pixelate(clean, box)
    mask = np.zeros(clean.shape[:2], bool)
    mask[box[1]:box[3], box[0]:box[2]] = True
    colored = original.copy()
    colored[mask] = GREEN
    return original, colored, mask


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def assert_json_error(resp: httpx.Response, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert "\n" not in body["message"] and "Traceback" not in body["message"]
    return body


def client(url: str, **kw) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=120, trust_env=False, **kw)


@pytest.fixture(scope="module")
def classical_url() -> str:
    settings = Settings(engine="classical", max_upload_bytes=3 * 1024 * 1024,
                        max_pixels=3_000_000, batch_window_ms=2)
    with serve_in_thread(settings) as url:
        yield url


@pytest.fixture(scope="module")
def onnx_url(converted_models: Path) -> str:
    settings = Settings(models=converted_models, engine="onnx", batch_window_ms=2)
    with serve_in_thread(settings) as url:
        yield url


# --- health, readiness, page, docs ---------------------------------------------------------
def test_healthz_readyz_info(classical_url: str) -> None:
    with client(classical_url) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["engines"] == {"bar": "classical", "mosaic": "classical"}
        info = c.get("/v1/info").json()
        assert info["ready"] is True and info["variations"] == [1, 2, 4]
        assert info["limits"]["max_pixels"] == 3_000_000
        assert "deepcream fetch-model" in info["model_hint"]  # the page's banner


def test_web_page_and_static_files_are_local(classical_url: str) -> None:
    with client(classical_url) as c:
        page = c.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert "/static/app.js" in refs and "/static/style.css" in refs
        # No CDN: every script and stylesheet comes from this server.
        for ref in refs:
            assert not ref.startswith(("http:", "https:", "//")), ref
        for asset in ("/static/app.js", "/static/style.css"):
            assert c.get(asset).status_code == 200
        assert_json_error(c.get("/static/../settings.py"), 404)


def test_docs_work_offline(classical_url: str) -> None:
    with client(classical_url) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', docs.text)
        assert assets, "swagger page references no assets"
        for ref in assets:
            assert ref.startswith("/_docs/"), f"/docs loads {ref} from elsewhere"
            assert c.get(ref).status_code == 200
        assert c.get("/redoc").status_code == 200
        spec = c.get("/openapi.json").json()
        for path in ("/v1/decensor", "/deepcreampy-bar", "/deepcreampy-mosaic", "/healthz",
                     "/readyz", "/metrics"):
            assert path in spec["paths"], path


# --- /v1/decensor ----------------------------------------------------------------------------
def test_decensor_bar_png(classical_url: str) -> None:
    img, mask = bar_image()
    with client(classical_url) as c:
        resp = c.post("/v1/decensor", files={"image": ("bars.png", png(img), "image/png")})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    assert resp.headers["x-deepcream-engine"].startswith("classical")
    assert resp.headers["x-deepcream-regions"] == "2"
    assert float(resp.headers["x-deepcream-processing-ms"]) > 0
    out = decode(resp.content)
    assert out.shape == img.shape
    assert np.array_equal(out[~mask], img[~mask]), "pixels outside the bars changed"
    assert not np.all(out[mask] == GREEN, axis=-1).any(), "green left inside the bars"


def test_decensor_variations_zip(classical_url: str) -> None:
    img, mask = bar_image(seed=1)
    with client(classical_url) as c:
        resp = c.post("/v1/decensor", files={"image": ("x.png", png(img))},
                      data={"variations": "4"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/zip"
    assert resp.headers["x-deepcream-variations"] == "4"
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        names = zf.namelist()
        assert names == [f"decensored-{i}.png" for i in range(1, 5)]
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
        for name in names:
            out = decode(zf.read(name))
            assert np.array_equal(out[~mask], img[~mask])
            assert not np.all(out[mask] == GREEN, axis=-1).any()


def test_decensor_custom_mask_color_and_no_regions_notice(classical_url: str) -> None:
    img = scene(seed=2)
    mask = np.zeros(img.shape[:2], bool)
    mask[100:120, 20:90] = True
    img[mask] = (255, 0, 255)
    with client(classical_url) as c:
        # Default green: nothing to fill, image back unchanged with a notice.
        plain = c.post("/v1/decensor", files={"image": ("m.png", png(img))})
        assert plain.status_code == 200
        assert plain.headers["x-deepcream-regions"] == "0"
        assert "nothing to decensor" in plain.headers["x-deepcream-notice"]
        assert np.array_equal(decode(plain.content), img)
        for color in ("#ff00ff", "255,0,255", "magenta"):
            resp = c.post("/v1/decensor", files={"image": ("m.png", png(img))},
                          data={"mask_color": color})
            assert resp.status_code == 200 and resp.headers["x-deepcream-regions"] == "1"
            out = decode(resp.content)
            assert np.array_equal(out[~mask], img[~mask])
            assert not np.all(out[mask] == (255, 0, 255), axis=-1).any()


def test_alpha_and_16_bit_images(classical_url: str) -> None:
    img, mask = bar_image(seed=7)
    alpha = np.tile(np.linspace(40, 255, img.shape[1]).astype(np.uint8), (img.shape[0], 1))
    rgba = np.dstack([img, alpha])
    gray16 = (scene(seed=8)[..., 0].astype(np.uint16) * 257)
    with client(classical_url) as c:
        resp = c.post("/v1/decensor", files={"image": ("a.png", png(rgba))})
        wide = c.post("/v1/decensor", files={"image": ("g.png", png(gray16))})
    assert resp.status_code == 200, resp.text
    out = np.asarray(Image.open(io.BytesIO(resp.content)))
    assert out.shape == rgba.shape, "alpha channel lost"
    assert np.array_equal(out[..., 3], alpha)
    assert np.array_equal(out[~mask], rgba[~mask])
    assert wide.status_code == 200 and wide.headers["x-deepcream-regions"] == "0"
    # 16-bit grey is scaled to 8 bits, not clipped to white.
    assert np.array_equal(decode(wide.content)[..., 0], (gray16 >> 8).astype(np.uint8))


def test_decensor_mosaic_with_original_and_auto(classical_url: str) -> None:
    original, colored, mask = mosaic_pair()
    with client(classical_url) as c:
        resp = c.post("/v1/decensor", data={"mode": "mosaic"},
                      files={"image": ("c.png", png(colored)), "original": ("o.png", png(original))})
        assert resp.status_code == 200, resp.text
        out = decode(resp.content)
        assert np.array_equal(out[~mask], original[~mask])
        assert not np.array_equal(out[mask], original[mask]), "mosaic left as it was"
        auto = c.post("/v1/decensor", data={"mode": "mosaic", "auto_mask": "true"},
                      files={"image": ("o.png", png(original))})
        assert auto.status_code == 200, auto.text
        assert decode(auto.content).shape == original.shape


def test_find_mask_route(classical_url: str) -> None:
    """The page's view of painted strokes: exactly what a bar-mode decensor would fill."""
    from deepcream.masks import find_mask

    img, bars = bar_image(seed=2)
    with client(classical_url) as c:
        resp = c.post("/v1/find-mask", files={"image": ("b.png", png(img))})
        assert resp.status_code == 200, resp.text
        mask = np.asarray(Image.open(io.BytesIO(resp.content)))
        assert mask.shape == bars.shape and np.array_equal(mask == 255, bars)
        assert resp.headers["x-deepcream-regions"] == "2"
        assert int(resp.headers["x-deepcream-mask-pixels"]) == int(bars.sum())
        # The options are the decensor route's: another color, a tolerance.
        tinted = img.copy()
        tinted[bars] = (250, 10, 240)
        resp = c.post("/v1/find-mask", data={"mask_color": "magenta", "mask_tolerance": "16"},
                      files={"image": ("b.png", png(tinted))})
        assert resp.status_code == 200, resp.text
        expected = find_mask(tinted, (255, 0, 255), tolerance=16)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(resp.content))) == 255, expected)
        none = c.post("/v1/find-mask", files={"image": ("s.png", png(scene(seed=8)))})
        assert none.status_code == 200 and none.headers["x-deepcream-regions"] == "0"
        assert_json_error(c.post("/v1/find-mask", data={"mask_color": "nope"},
                                 files={"image": ("b.png", png(img))}), 422)
        assert_json_error(c.post("/v1/find-mask", files={"image": ("t.png", b"text")}), 415)


def test_detect_mosaic_route(classical_url: str) -> None:
    """The page's "Detect mosaic": the library's mask as a white-on-black PNG, plus counts."""
    from deepcream.mosaic import detect_mosaic

    original, _, truth = mosaic_pair()
    expected = detect_mosaic(original)
    assert expected.any()
    with client(classical_url) as c:
        resp = c.post("/v1/detect-mosaic", files={"image": ("o.png", png(original))})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == "image/png"
        mask = Image.open(io.BytesIO(resp.content))
        assert mask.mode == "L" and mask.size == (original.shape[1], original.shape[0])
        values = np.asarray(mask)
        assert set(np.unique(values)) <= {0, 255}
        assert np.array_equal(values == 255, expected)
        assert int(resp.headers["x-deepcream-regions"]) == 1
        assert int(resp.headers["x-deepcream-mask-pixels"]) == int(expected.sum())
        assert resp.headers["x-deepcream-block-sizes"] == "8"  # mosaic_pair's blocks
        clean = c.post("/v1/detect-mosaic", files={"image": ("c.png", png(scene(seed=5)))})
        assert clean.status_code == 200
        assert not np.asarray(Image.open(io.BytesIO(clean.content))).any()
        assert clean.headers["x-deepcream-regions"] == "0"
        assert_json_error(c.post("/v1/detect-mosaic", files={"image": ("t.png", b"text")}), 415)
        assert_json_error(c.post("/v1/detect-mosaic", files={"picture": ("o.png", png(original))}), 422)
        big = np.zeros((2000, 1600, 3), np.uint8)
        assert_json_error(c.post("/v1/detect-mosaic", files={"image": ("b.png", png(big))}), 413)


# --- drop-in routes ------------------------------------------------------------------------------
def test_dropin_bar_matches_v1(classical_url: str) -> None:
    img, mask = bar_image(seed=4)
    with client(classical_url) as c:
        legacy = c.post("/deepcreampy-bar", files={"image": ("a.png", png(img))})
        v1 = c.post("/v1/decensor", files={"image": ("a.png", png(img))})
        assert_json_error(c.post("/deepcreampy-bar", files={"file": ("a.png", png(img))}), 422)
    assert legacy.status_code == 200 and legacy.headers["content-type"] == "image/png"
    assert legacy.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(decode(legacy.content), decode(v1.content))


def test_dropin_mosaic_field_names(classical_url: str) -> None:
    original, colored, mask = mosaic_pair()
    with client(classical_url) as c:
        # The older service: `image` = the original, `masked` = the colored copy.
        legacy = c.post("/deepcreampy-mosaic", files={"image": ("o.png", png(original)),
                                                      "masked": ("m.png", png(colored))})
        v1 = c.post("/v1/decensor", data={"mode": "mosaic"},
                    files={"image": ("m.png", png(colored)), "original": ("o.png", png(original))})
        missing = c.post("/deepcreampy-mosaic", files={"image": ("o.png", png(original)),
                                                       "original": ("m.png", png(colored))})
    assert legacy.status_code == 200 and legacy.headers["content-type"] == "image/png"
    assert np.array_equal(decode(legacy.content), decode(v1.content))
    assert "masked" in assert_json_error(missing, 422)["message"]


# --- every error status ---------------------------------------------------------------------
def test_error_statuses(classical_url: str) -> None:
    img = png(bar_image()[0])
    with client(classical_url) as c:
        assert_json_error(c.post("/v1/decensor", files={"image": ("t.png", img[:200])}), 400)
        assert_json_error(c.post("/v1/decensor", files={"image": ("big.png", b"\0" * (4 << 20))}), 413)
        bomb = png(np.zeros((1, 1, 3), np.uint8))
        big = Image.new("L", (4000, 1000))
        buf = io.BytesIO()
        big.save(buf, "PNG")
        assert_json_error(c.post("/v1/decensor", files={"image": ("b.png", buf.getvalue())}), 413)
        assert_json_error(c.post("/v1/decensor", files={"image": ("t.png", b"hello")}), 415)
        assert_json_error(c.post("/v1/decensor", content=bomb,
                                 headers={"content-type": "image/png"}), 415)
        assert_json_error(c.post("/v1/decensor", files={"picture": ("t.png", img)}), 422)
        assert_json_error(c.get("/v1/decensor"), 405)
        assert_json_error(c.get("/no-such-page"), 404)


def test_timeout_is_503_with_retry_after() -> None:
    settings = Settings(engine="classical", request_timeout_s=1e-6)
    with serve_in_thread(settings) as url, client(url) as c:
        resp = c.post("/v1/decensor", files={"image": ("a.png", png(bar_image()[0]))})
        assert "longer than" in assert_json_error(resp, 503)["message"]
        assert int(resp.headers["retry-after"]) >= 1
        assert c.get("/healthz").status_code == 200


def test_not_ready_when_models_fail(tmp_path: Path) -> None:
    settings = Settings(engine="onnx", models=tmp_path)  # empty folder: no model
    with serve_in_thread(settings, wait_ready=False) as url, client(url) as c:
        deadline = time.monotonic() + 60
        while (ready := c.get("/readyz")).json().get("message") == "warming up":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "no bar model" in assert_json_error(ready, 503)["message"]
        resp = c.post("/v1/decensor", files={"image": ("a.png", png(bar_image()[0]))})
        assert "failed to load" in assert_json_error(resp, 503)["message"]
        assert "retry-after" in resp.headers
        assert c.get("/healthz").status_code == 200  # alive, just not ready


def test_queue_full_is_503_with_retry_after() -> None:
    """With room for one request, a second one sent while the first runs gets 503."""
    slow = scene(900, 700, seed=5)
    slow[150:550, 200:700] = GREEN  # a big hole: a second or so of OpenCV inpainting
    small = png(bar_image()[0])
    settings = Settings(engine="classical", max_queue=1)
    with serve_in_thread(settings) as url:

        async def attempt() -> tuple[int, httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=300, trust_env=False) as ac:
                first = asyncio.create_task(ac.post(
                    "/v1/decensor", files={"image": ("s.png", png(slow))}, data={"variations": "2"}))
                # Wait until the first request holds the only slot, then knock. The event loop
                # answers /metrics meanwhile: inference does not block it.
                while not first.done():
                    metrics = (await ac.get("/metrics")).text
                    if re.search(r"^deepcream_queue_depth 1\.0$", metrics, re.M):
                        break
                    await asyncio.sleep(0.005)
                second = await ac.post("/v1/decensor", files={"image": ("a.png", small)})
                return (await first).status_code, second

        for _ in range(3):  # the first request may, rarely, finish before the knock
            first_status, second = asyncio.run(attempt())
            if second.status_code == 503:
                break
    assert first_status == 200
    assert "busy" in assert_json_error(second, 503)["message"]
    assert int(second.headers["retry-after"]) >= 1


def test_overload_answers_every_client() -> None:
    """More simultaneous uploads than upload slots and queue places: each client reads an
    answer (200, or 503 with Retry-After and a JSON error), never a reset connection, even
    though the refused bodies are not parsed."""
    settings = Settings(engine="classical", max_queue=1)
    rgb = np.random.default_rng(0).integers(0, 200, (1024, 1024, 3), dtype=np.uint8)
    rgb[500:520, 400:600] = (0, 255, 0)
    body = png(rgb)  # ~3 MB: more than the socket buffers hold, as real uploads are
    assert len(body) > 2 << 20

    def posts(url: str) -> list[httpx.Response | Exception]:
        answers: list[httpx.Response | Exception] = []
        with client(url) as c:  # one kept-alive connection per client, as browsers do
            for _ in range(4):
                try:
                    answers.append(c.post("/v1/decensor", files={"image": ("a.png", body)}))
                except httpx.TransportError as exc:
                    answers.append(exc)
        return answers

    with serve_in_thread(settings) as url, ThreadPoolExecutor(10) as pool:
        answers = [a for batch in pool.map(posts, [url] * 10) for a in batch]
    errors = [a for a in answers if isinstance(a, Exception)]
    assert not errors, errors[:3]
    statuses = sorted({a.status_code for a in answers})
    assert set(statuses) <= {200, 503} and 200 in statuses, statuses
    for a in answers:
        if a.status_code == 503:
            assert int(a.headers["retry-after"]) >= 1
            assert_json_error(a, 503)


def test_uploads_in_progress_are_bounded() -> None:
    """Bodies still arriving count against a bound (2 x queue): the next upload gets 503 before
    its body is parsed, and slots come back when those clients go away."""
    settings = Settings(engine="classical", max_queue=1)
    small = png(bar_image()[0])
    with serve_in_thread(settings) as url, client(url) as c:
        port = int(url.rsplit(":", 1)[1])
        slow = []
        for _ in range(2):  # two clients that send headers and a little body, then stall
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"POST /v1/decensor HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n--b")
            slow.append(sock)
        try:
            for _ in range(200):  # until the server has seen both stalled uploads
                busy = c.post("/v1/decensor", files={"image": ("a.png", small)})
                if busy.status_code == 503:
                    break
                time.sleep(0.02)
            assert "uploads in progress" in assert_json_error(busy, 503)["message"]
            assert int(busy.headers["retry-after"]) >= 1
        finally:
            for sock in slow:
                sock.close()
        for _ in range(200):
            again = c.post("/v1/decensor", files={"image": ("a.png", small)})
            if again.status_code == 200:
                break
            time.sleep(0.02)
        assert again.status_code == 200
        assert 'deepcream_rejected_total{reason="too_many_uploads"}' in c.get("/metrics").text


def test_stalled_upload_gets_408() -> None:
    settings = Settings(engine="classical", upload_timeout_s=0.5)
    with serve_in_thread(settings) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"POST /v1/decensor HTTP/1.1\r\nHost: x\r\nContent-Type: "
                         b"multipart/form-data; boundary=b\r\nContent-Length: 5000\r\n\r\n--b")
            answer = b""
            while b"}" not in answer and (chunk := sock.recv(4096)):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"error":"request_timeout"' in answer
        with client(url) as c:
            assert c.get("/healthz").status_code == 200


def test_no_temp_files_left(classical_url: str, tmp_path: Path, monkeypatch) -> None:
    """Uploads over Starlette's 1 MiB spool size would roll to disk: nothing may remain."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    noisy = np.random.default_rng(0).integers(0, 250, (700, 700, 3), dtype=np.uint8)
    noisy[10:40, 10:300] = GREEN
    data = png(noisy)
    assert len(data) > 1024 * 1024
    with client(classical_url) as c:
        assert c.post("/v1/decensor", files={"image": ("n.png", data)}).status_code == 200
        assert c.post("/v1/decensor", files={"image": ("n.png", data[:-5000])}).status_code == 400
    assert list(spool.iterdir()) == []


# --- metrics -----------------------------------------------------------------------------------
def test_metrics_prometheus(classical_url: str) -> None:
    with client(classical_url) as c:
        c.post("/v1/decensor", files={"image": ("a.png", png(bar_image()[0]))})
        c.post("/v1/decensor", files={"image": ("t.png", b"text")})
        resp = c.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    for pattern in (
        r'deepcream_http_requests_total\{method="POST",route="/v1/decensor",status="200"\} [1-9]',
        r'deepcream_http_requests_total\{method="POST",route="/v1/decensor",status="415"\} [1-9]',
        r'deepcream_http_request_duration_seconds_bucket\{le="\+Inf",route="/v1/decensor"\} [1-9]',
        r'deepcream_regions_total\{mode="bar"\} [1-9]',
        r"^deepcream_queue_depth 0\.0$",
        r'deepcream_engine_info\{engine="classical",mode="bar"\} 1\.0',
        r"^deepcream_ready 1\.0$",
    ):
        assert re.search(pattern, text, re.M), pattern


# --- onnx engine and batching ----------------------------------------------------------------
def test_onnx_server_matches_library(onnx_url: str, converted_models: Path) -> None:
    from deepcream import decensor

    img, mask = bar_image(seed=6)
    with client(onnx_url) as c:
        resp = c.post("/v1/decensor", files={"image": ("a.png", png(img))})
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-deepcream-engine"].startswith("onnx")
    expected = decensor(Image.fromarray(img), engine="onnx", models=converted_models)
    assert np.array_equal(decode(resp.content), np.asarray(expected.images[0].convert("RGB")))


def test_concurrent_requests_are_batched_and_exact(converted_models: Path) -> None:
    """Concurrent requests inside a long window share inference batches; each answer equals
    the same request served alone."""
    images = []
    for i in range(3):  # one region each: one crop per request
        img = scene(seed=10 + i)
        img[50 + 10 * i:70 + 10 * i, 40:200] = GREEN
        images.append(img)
    alone_settings = Settings(models=converted_models, engine="onnx", max_batch=1)
    with serve_in_thread(alone_settings) as url, client(url) as c:
        alone = [decode(c.post("/v1/decensor", files={"image": ("a.png", png(i))}).content)
                 for i in images]
    settings = Settings(models=converted_models, engine="onnx", batch_window_ms=1500, max_batch=16)
    with serve_in_thread(settings) as url:

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=300, trust_env=False) as ac:
                return await asyncio.gather(*[
                    ac.post("/v1/decensor", files={"image": ("a.png", png(i))}) for i in images])

        answers = asyncio.run(burst())
        with client(url) as c:
            metrics = c.get("/metrics").text
    for resp, expected in zip(answers, alone, strict=True):
        assert resp.status_code == 200
        got = decode(resp.content)
        # Batch composition may change float summation order: at most one level off.
        assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    # Fewer inference batches than requests: crops of different requests were merged.
    count = re.search(r'deepcream_inference_batch_requests_count\{mode="bar"\} (\S+)', metrics)
    total = re.search(r'deepcream_inference_batch_requests_sum\{mode="bar"\} (\S+)', metrics)
    assert float(total.group(1)) == 3  # every request went through the batcher once
    assert float(count.group(1)) < 3


# --- `deepcream serve` as a process ------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serve_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deepcream", "serve", "--port", "0", "--engine", "classical",
         "--models", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + proc.stderr.read()
        url = f"http://127.0.0.1:{match.group(1)}"
        with client(url) as c:
            deadline = time.monotonic() + 60
            while c.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            img, mask = bar_image()
            resp = c.post("/deepcreampy-bar", files={"image": ("a.png", png(img))})
            assert resp.status_code == 200
            assert np.array_equal(decode(resp.content)[~mask], img[~mask])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cli_serve_clean_errors(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "-m", "deepcream", "serve", "--port", str(port), "--engine",
             "classical"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert res.stderr.startswith("deepcream: error: cannot listen on 127.0.0.1:")
    assert "Traceback" not in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "deepcream", "serve", "--port", str(_free_port()), "--engine",
         "onnx", "--models", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no bar model" in res.stderr
    assert "Traceback" not in res.stderr
