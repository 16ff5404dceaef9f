"""Web page figures: size, load time, and painting cost on a 4000x3000 image.

Runs `deepcream serve` in-process (classical engine) and Debian's chromium headless through
Playwright (software rendering, no GPU: a worst case for canvas work), then writes
bench-page.json and bench-page.md to --out.

    PYTHONPATH=$PWD python scripts/bench_page.py --out /tmp/bench-page

Painting is driven from inside the page: for each animation frame, four pointermove events
(a fast mouse delivers about that many per frame) go to the editor canvas; the script records
the time spent in the handlers per event and the interval between frames. At 60 Hz a frame
is 16.7 ms; "smooth" means the frame interval stays near that.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepcream.server import Settings
from deepcream.server.runner import serve_in_thread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STATIC = Path(__file__).resolve().parents[1] / "deepcream" / "server" / "static"
EXAMPLE = STATIC.parents[1] / "examples" / "example-clean.png"

DRIVE_STROKE = """async ([frames, perFrame]) => {
  const view = document.getElementById("view");
  const box = view.getBoundingClientRect();
  const at = (k) => ({ clientX: box.left + 40 + (k * 7) % (box.width - 80),
                       clientY: box.top + 40 + 0.5 * (box.height - 80) * (1 + Math.sin(k / 25)) });
  const fire = (type, k) => view.dispatchEvent(new PointerEvent(type, { bubbles: true,
      pointerId: 1, pointerType: "mouse", button: 0, buttons: 1, isPrimary: true, ...at(k) }));
  const handler = [], frameGaps = [];
  fire("pointerdown", 0);
  let k = 1, last = performance.now();
  for (let f = 0; f < frames; f++) {
    await new Promise((ok) => requestAnimationFrame(ok));
    const now = performance.now();
    frameGaps.push(now - last);
    last = now;
    for (let i = 0; i < perFrame; i++, k++) {
      const t = performance.now();
      fire("pointermove", k);
      handler.push(performance.now() - t);
    }
  }
  const t = performance.now();
  fire("pointerup", k);
  const commit = performance.now() - t;
  return { handler, frameGaps, commit };
}"""

TIME_ZOOM = """async (steps) => {
  const view = document.getElementById("view");
  const box = view.getBoundingClientRect();
  const gaps = [];
  let last = performance.now();
  for (let i = 0; i < steps; i++) {
    view.dispatchEvent(new WheelEvent("wheel", { bubbles: true, cancelable: true,
        deltaY: i < steps / 2 ? -120 : 120, clientX: box.left + box.width / 2, clientY: box.top + box.height / 2 }));
    await new Promise((ok) => requestAnimationFrame(ok));
    await new Promise((ok) => requestAnimationFrame(ok));
    const now = performance.now();
    gaps.push((now - last) / 2);
    last = now;
  }
  return gaps;
}"""


def picture(width: int, height: int) -> np.ndarray:
    img = Image.open(EXAMPLE).convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(img)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run(out: Path, frames: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    sizes = {p.name: p.stat().st_size for p in sorted(STATIC.iterdir()) if p.is_file()}
    results: dict = {"cpu": platform.processor() or platform.machine(),
                     "static_bytes": sizes, "static_total_bytes": sum(sizes.values())}
    with (tempfile.TemporaryDirectory() as tmp, serve_in_thread(Settings(engine="classical")) as url,
          sync_playwright() as pw):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        loads = []
        for _ in range(repeats * 3):
            pg = browser.new_page(viewport={"width": 1280, "height": 900})
            pg.goto(url + "/")
            pg.wait_for_load_state("load")
            nav = pg.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
            loads.append(nav["loadEventEnd"] - nav["startTime"])
            pg.close()
        results["page_load_ms"] = {"median": statistics.median(loads), "max": max(loads)}
        for width, height in [(640, 480), (4000, 3000)]:
            path = Path(tmp) / f"p{width}.png"
            Image.fromarray(picture(width, height)).save(path, compress_level=1)
            pg = browser.new_page(viewport={"width": 1280, "height": 900})
            pg.goto(url + "/")
            t = time.perf_counter()
            pg.set_input_files("#files", str(path))
            pg.wait_for_selector("#queue li")
            open_ms = (time.perf_counter() - t) * 1000
            pg.evaluate("() => document.getElementById('editor').scrollIntoView()")
            pg.fill("#brush-size", "40")
            handler: list[float] = []
            gaps: list[float] = []
            commits: list[float] = []
            for _ in range(repeats):
                got = pg.evaluate(DRIVE_STROKE, [frames, 4])
                handler += got["handler"]
                gaps += got["frameGaps"][1:]
                commits.append(got["commit"])
            zoom = pg.evaluate(TIME_ZOOM, 20)
            results[f"{width}x{height}"] = {
                "open_ms": open_ms,
                "pointermove_ms": {"median": statistics.median(handler), "p95": pct(handler, 95)},
                "frame_interval_ms": {"median": statistics.median(gaps), "p95": pct(gaps, 95)},
                "stroke_end_ms": {"median": statistics.median(commits), "max": max(commits)},
                "zoom_frame_ms": {"median": statistics.median(zoom), "p95": pct(zoom, 95)},
            }
            pg.close()
        browser.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench-page.json").write_text(json.dumps(results, indent=2))
    rows = ["| image | open (ms) | pointermove handler median / p95 (ms) | frame interval median / p95 (ms) | stroke end (ms) | zoom frame median / p95 (ms) |",
            "|---|---|---|---|---|---|"]
    for key in ("640x480", "4000x3000"):
        r = results[key]
        rows.append(f"| {key} | {r['open_ms']:.0f} | {r['pointermove_ms']['median']:.2f} / "
                    f"{r['pointermove_ms']['p95']:.2f} | {r['frame_interval_ms']['median']:.1f} / "
                    f"{r['frame_interval_ms']['p95']:.1f} | {r['stroke_end_ms']['median']:.0f} | "
                    f"{r['zoom_frame_ms']['median']:.1f} / {r['zoom_frame_ms']['p95']:.1f} |")
    md = (f"HTML+JS+CSS: {results['static_total_bytes']:,} bytes; page load (navigation start to "
          f"load event, local server): median {results['page_load_ms']['median']:.0f} ms, max "
          f"{results['page_load_ms']['max']:.0f} ms.\n\n" + "\n".join(rows) + "\n")
    (out / "bench-page.md").write_text(md)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("."))
    ap.add_argument("--frames", type=int, default=120, help="animation frames per stroke")
    ap.add_argument("--repeats", type=int, default=3, help="strokes per image size")
    args = ap.parse_args()
    run(args.out, args.frames, args.repeats)
    print((args.out / "bench-page.md").read_text())


if __name__ == "__main__":
    main()
