"""Mask finding and mosaic detection on pictures of a style no generator here draws:
photos turned into cel-shaded cartoons (smoothed, a dozen flat colors, anti-aliased ink
outlines along the photo's own edges), or (``--pictures drawn``) real hand-drawn anime art.

The repo's evaluation sets draw their art from shapes (`eval_masks.py`'s line art,
`eval_mosaic_art.py`'s illustrations and manga pages), and the detectors were tuned on those
sets' development seeds. Nothing was tuned on these pictures: their shapes come from real
scenes (a motorcycle, a retina, a cat, an astronaut, a coffee cup, a rocket), so they show
how far the figures carry to art the generators did not make.

- Masks (issue 12's figures, as `eval_masks.py --mask-only` computes them): strokes of
  #00ff00 painted by `eval_masks.stroke_paths` / `paint`, saved as PNG, JPEG q90/80/70 with
  4:2:0 and q90 with 4:4:4, and resized then JPEG q90. Per condition: tinted stroke pixels
  left outside the mask within 6 px and 6-8 px of a stroke, mask pixels farther than 6 px,
  regions / strokes; and regions found on the clean cartoons.
- Mosaics (issue 13's figures, as `eval_mosaic_art.py` computes them): 1-3 brush or ellipse
  mosaics by `eval_mosaic_art.add_art_mosaics`, then PNG, JPEG q90/80 and x0.75; IoU and the
  share of the detected area outside the mosaic; and the detected share of the clean
  cartoons.

The drawn pictures are the texture sheets of the Live2D sample characters (hand-painted
anime parts: faces, eyes, hair, clothes, effects, with line art and soft shading) that the
``live2d-widget-model-*`` npm packages ship. They are not in the repo: ``npm pack`` fetches
the pinned package versions into ``~/.cache/deepcream/drawn-art`` (or ``--cache``) on first
use. Each sheet is flattened on white paper at up to 1024 px.

    python scripts/eval_other_style.py --seed 0 1 --out DIR   # writes other-style-eval.{json,md}
    python scripts/eval_other_style.py --pictures drawn --seed 0 1 --out DIR   # drawn-art-eval.*
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import eval_masks as em  # noqa: E402
import eval_mosaic_art as ea  # noqa: E402

MASK_CONDITIONS = ["png", "jpeg90-420", "jpeg80-420", "jpeg70-420", "jpeg90-444", "resized-jpeg90"]
MOSAIC_CONDITIONS = ["png", "jpeg90", "jpeg80", "scale75"]
LONG_SIDE = 900


def photos() -> list[tuple[str, np.ndarray]]:
    """The scenes (RGB uint8)."""
    import skimage.data as data

    return [("motorcycle", data.stereo_motorcycle()[0]), ("retina", data.retina()),
            ("cat", data.chelsea()), ("astronaut", data.astronaut()), ("coffee", data.coffee()),
            ("rocket", data.rocket())]


# (package, version) of the npm packages whose texture sheets are the drawn pictures
DRAWN_PACKAGES = [(f"live2d-widget-model-{name}", "1.0.5") for name in (
    "epsilon2_1", "haruto", "hibiki", "hijiki", "izumi", "koharu", "miku", "ni-j", "nico",
    "nipsilon", "nito", "shizuku", "tsumiki", "unitychan", "z16")]
DRAWN_SIDE = 1024


def drawn_art(cache: Path) -> list[tuple[str, np.ndarray]]:
    """Each package's largest texture sheet, flattened on white, at most DRAWN_SIDE px."""
    from PIL import Image

    cache.mkdir(parents=True, exist_ok=True)
    pictures = []
    for package, version in DRAWN_PACKAGES:
        tgz = cache / f"{package}-{version}.tgz"
        if not tgz.exists():
            if shutil.which("npm") is None:
                raise SystemExit("--pictures drawn needs npm (apt-get install npm) to fetch "
                                 f"{package}@{version}")
            subprocess.run(["npm", "pack", f"{package}@{version}", "--pack-destination",
                            str(cache)], check=True, capture_output=True)
        sheets = []
        with tarfile.open(tgz) as tar:
            for member in tar.getmembers():
                if member.name.endswith(".png") and "/texture_" in member.name:
                    sheet = Image.open(io.BytesIO(tar.extractfile(member).read()))
                    sheets.append((sheet.size[0] * sheet.size[1], member.name, sheet))
        _, _, sheet = min(sheets, key=lambda t: (-t[0], t[1]))  # largest, then texture_00
        paper = Image.new("RGBA", sheet.size, (255, 255, 255, 255))
        paper.alpha_composite(sheet.convert("RGBA"))
        rgb = np.asarray(paper.convert("RGB"))
        f = DRAWN_SIDE / max(rgb.shape[:2])
        if f < 1:
            rgb = cv2.resize(rgb, (round(rgb.shape[1] * f), round(rgb.shape[0] * f)),
                             interpolation=cv2.INTER_AREA)
        pictures.append((package.removeprefix("live2d-widget-model-"), np.ascontiguousarray(rgb)))
    return pictures


def cartoon(photo: np.ndarray) -> np.ndarray:
    """A cel-shaded cartoon of ``photo`` with about LONG_SIDE px on its long side: bilateral
    smoothing, 12 flat colors (k-means), small islands merged, dark outlines along the
    smoothed picture's edges drawn at 2x and downsampled (anti-aliased, as drawing programs
    make them)."""
    h, w = photo.shape[:2]
    f = LONG_SIDE / max(h, w)
    img = cv2.resize(photo[:, :, :3], (round(w * f), round(h * f)),
                     interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_CUBIC)
    smooth = img
    for _ in range(4):
        smooth = cv2.bilateralFilter(smooth, 9, 40, 7)
    cv2.setRNGSeed(0)
    samples = smooth.reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, labels, centers = cv2.kmeans(samples, 12, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    flat = centers.astype(np.uint8)[labels.ravel()].reshape(img.shape)
    flat = cv2.medianBlur(flat, 5)
    edges = cv2.Canny(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY), 50, 120)
    hh, ww = flat.shape[:2]
    big = cv2.resize(flat, (ww * 2, hh * 2), interpolation=cv2.INTER_NEAREST).astype(np.float32)
    ink = cv2.dilate(cv2.resize(edges, (ww * 2, hh * 2), interpolation=cv2.INTER_NEAREST),
                     np.ones((3, 3), np.uint8)) > 0
    big[ink] = (30, 25, 35)
    return np.clip(cv2.resize(big, (ww, hh), interpolation=cv2.INTER_AREA) + 0.5, 0, 255).astype(np.uint8)


def mask_samples(seed: int, bases: list[tuple[str, np.ndarray]]) -> list[em.Sample]:
    """Every cartoon painted with strokes and saved per condition (``eval_masks``'s painter;
    pictures keyed 1000 + i, apart from ``eval_masks``' own)."""
    return [sample for index, (name, base) in enumerate(bases)
            for sample in em.paint_and_save(name, base, seed, 1000 + index, MASK_CONDITIONS)]


def evaluate_masks(seeds: list[int], bases: list[tuple[str, np.ndarray]]) -> dict:
    from deepcream.masks import find_paint
    from deepcream.regions import find_regions

    rows = []
    for seed in seeds:
        for s in mask_samples(seed, bases):
            r = em.score_mask(s)  # tinted px left within NEAR_STROKE (8) and beyond FAR (6)
            rows.append({"seed": seed, "name": s.name, "condition": s.condition,
                         "tinted_within_6": r["missed"] - r["missed_beyond"],
                         "tinted_6_to_8": r["missed_beyond"],
                         "stroke_px": int(s.strokes.sum()), "far": r["far"],
                         "regions": r["regions"], "strokes": r["strokes"]})
    table = {}
    for cond in MASK_CONDITIONS:
        r = [x for x in rows if x["condition"] == cond]
        table[cond] = {
            "images": len(r),
            "tinted_within_6": sum(x["tinted_within_6"] for x in r),
            "images_with_tint": sum(x["tinted_within_6"] > 0 for x in r),
            "tinted_6_to_8": sum(x["tinted_6_to_8"] for x in r),
            "tinted_pct": 100.0 * sum(x["tinted_within_6"] + x["tinted_6_to_8"] for x in r)
            / max(1, sum(x["stroke_px"] for x in r)),
            "far": sum(x["far"] for x in r),
            "worst_ratio": max(x["regions"] / max(1, x["strokes"]) for x in r),
        }
    clean = []
    for name, base in bases:
        mask, _ = find_paint(base)
        clean.append({"name": name, "regions": len(find_regions(mask)), "mask_px": int(mask.sum())})
    return {"conditions": table, "clean": clean, "per_image": rows}


def evaluate_mosaics(seeds: list[int], bases: list[tuple[str, np.ndarray]]) -> dict:
    from deepcream.mosaic import detect_mosaic

    rows = []
    for seed in seeds:
        for index, (name, base) in enumerate(bases):
            rng = np.random.default_rng([seed, 2000 + index])
            img, truth, patches = ea.add_art_mosaics(base, rng)
            for cond in MOSAIC_CONDITIONS:
                im, t, _scale = ea.apply_condition(img, truth, cond)
                pred = detect_mosaic(im)
                found = int(np.count_nonzero(pred))
                rows.append({"seed": seed, "name": name, "condition": cond,
                             "iou": ea.iou(pred, t),
                             "outside": np.count_nonzero(pred & ~t) / found if found else 0.0,
                             "blocks": [p["block"] for p in patches]})
    table = {}
    for cond in MOSAIC_CONDITIONS:
        r = [x for x in rows if x["condition"] == cond]
        table[cond] = {"images": len(r), "mean_iou": float(np.mean([x["iou"] for x in r])),
                       "min_iou": float(np.min([x["iou"] for x in r])),
                       "mean_outside": float(np.mean([x["outside"] for x in r]))}
    clean = {}
    for cond in ["png", "jpeg90", "jpeg80"]:
        shares = []
        for name, base in bases:
            im, _t, _s = ea.apply_condition(base, np.zeros(base.shape[:2], bool), cond)
            shares.append((name, float(np.count_nonzero(detect_mosaic(im))) / (im.shape[0] * im.shape[1])))
        clean[cond] = {"worst": max(v for _, v in shares), "per_image": shares}
    return {"conditions": table, "clean": clean, "per_image": rows}


def to_markdown(res: dict) -> str:
    m, z = res["masks"], res["mosaics"]
    kind = "drawn texture sheets" if res.get("source") == "drawn" else "cartoons"
    lines = [f"Seeds {res['seeds']}; {len(res['pictures'])} {kind} ({', '.join(res['pictures'])})", "",
             "Masks (#00ff00 strokes): tinted stroke px left outside the mask",
             "",
             "| condition | images | within 6 px (images with any) | 6-8 px | % of stroke px | mask px > 6 px away | worst regions/strokes |",
             "|---|---|---|---|---|---|---|"]
    for cond, r in m["conditions"].items():
        lines.append(f"| {cond} | {r['images']} | {r['tinted_within_6']} ({r['images_with_tint']}) | "
                     f"{r['tinted_6_to_8']} | {r['tinted_pct']:.3f} | {r['far']} | {r['worst_ratio']:.2f} |")
    lines += ["", f"Clean {kind}, regions found: "
              + ", ".join(f"{c['name']} {c['regions']}" for c in m["clean"]), "",
              "Mosaics", "", "| condition | images | mean IoU | min IoU | outside (mean) |", "|---|---|---|---|---|"]
    for cond, r in z["conditions"].items():
        lines.append(f"| {cond} | {r['images']} | {r['mean_iou']:.3f} | {r['min_iou']:.3f} | "
                     f"{100 * r['mean_outside']:.1f}% |")
    lines += ["", f"Clean {kind}, worst detected share: "
              + ", ".join(f"{c} {100 * r['worst']:.3f}%" for c, r in z["clean"].items())]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--pictures", choices=["cartoons", "drawn"], default="cartoons",
                    help="cartoons made from photos, or drawn anime texture sheets (npm)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "deepcream" / "drawn-art",
                    help="where the drawn pictures' packages are kept")
    ap.add_argument("--dump", type=Path, default=None, metavar="DIR",
                    help="also write the clean pictures there as PNG")
    ap.add_argument("--out", type=Path, default=Path("."))
    args = ap.parse_args()
    if args.pictures == "drawn":
        bases = drawn_art(args.cache)
    else:
        bases = [(name, cartoon(photo)) for name, photo in photos()]
    if args.dump:
        from PIL import Image

        args.dump.mkdir(parents=True, exist_ok=True)
        for name, base in bases:
            Image.fromarray(base).save(args.dump / f"{name}.png")
    res = {"seeds": args.seed, "source": args.pictures, "pictures": [n for n, _ in bases],
           "masks": evaluate_masks(args.seed, bases), "mosaics": evaluate_mosaics(args.seed, bases)}
    print(to_markdown(res))
    stem = "drawn-art-eval" if args.pictures == "drawn" else "other-style-eval"
    ea.write_results(args.out, stem, res, to_markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
