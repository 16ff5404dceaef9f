"""Hash the masks `detect_mosaic` finds on a fixed set of generated pictures, to prove that a
change meant only to make detection faster leaves every mask as it was.

    python scripts/mosaic_mask_hashes.py save hashes.json     # before the change
    python scripts/mosaic_mask_hashes.py check hashes.json    # after it: exit 1 if any differs

The set (371 pictures, ~2.5 min on 2 cores): the three 2604x2513 timing images of
``time_mosaic.py``; art seeds 100, 1502, 2100, 3300, 2902 and 101 (each with two clean pages)
as PNG, JPEG q90/q80/q70 and rescaled x0.75 and x0.5; the photo and line-art set of
``eval_mosaic.py`` (seed 0) as PNG and JPEG q90. ``--quick``: art seeds 1502 and 3300 only.
``--drawn``: also the real drawn anime sheets of ``eval_other_style.py --pictures drawn``
(seed 0: with its mosaics as PNG, JPEG q90/q80 and x0.75, and clean as PNG/JPEG q90/q80;
+105 pictures; fetched once with npm into ``--cache``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import eval_mosaic  # noqa: E402
import eval_mosaic_art  # noqa: E402
import numpy as np  # noqa: E402
from time_mosaic import images  # noqa: E402

from deepcream.mosaic import detect_mosaic  # noqa: E402

ART_SEEDS = [100, 1502, 2100, 3300, 2902, 101]
QUICK_SEEDS = [1502, 3300]
ART_CONDITIONS = ["png", "jpeg90", "jpeg80", "jpeg70", "scale75", "scale50"]


def mask_hash(mask: np.ndarray) -> str:
    """A short hash of a bool mask and its shape, with its pixel count (readable in a diff)."""
    digest = hashlib.sha1(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()
    return f"{digest[:16]}:{int(np.count_nonzero(mask))}"


def drawn_hashes(cache: Path) -> dict[str, str]:
    import eval_other_style

    out = {}
    for index, (name, base) in enumerate(eval_other_style.drawn_art(cache)):
        img, truth, _patches = eval_mosaic_art.add_art_mosaics(base, np.random.default_rng([0, 2000 + index]))
        for cond in eval_other_style.MOSAIC_CONDITIONS:
            im, _t, _s = eval_mosaic_art.apply_condition(img, truth, cond)
            out[f"drawn:{name}:{cond}"] = mask_hash(detect_mosaic(im))
        for cond in ("png", "jpeg90", "jpeg80"):
            im, _t, _s = eval_mosaic_art.apply_condition(base, np.zeros(base.shape[:2], bool), cond)
            out[f"drawn-clean:{name}:{cond}"] = mask_hash(detect_mosaic(im))
    return out


def hashes(seeds: list[int]) -> dict[str, str]:
    out = {}
    for name, img in images().items():
        out[f"time:{name}"] = mask_hash(detect_mosaic(img))
    for seed in seeds:
        mosaic, clean = eval_mosaic_art.make_art_set(seed, clean_pages=2)
        for s in mosaic + clean:
            for cond in ART_CONDITIONS:
                img, _truth, _scale = eval_mosaic_art.apply_condition(s.image, s.truth, cond)
                out[f"{seed}:{s.name}:{cond}"] = mask_hash(detect_mosaic(img))
    mosaic, clean = eval_mosaic.make_set(0)
    for s in mosaic + clean:
        for cond in ("png", "jpeg90"):
            img = s.image if cond == "png" else eval_mosaic.encode(s.image, cond)
            out[f"photo0:{s.name}:{cond}"] = mask_hash(detect_mosaic(img))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["save", "check"])
    ap.add_argument("file", type=Path)
    ap.add_argument("--quick", action="store_true", help="art seeds 1502 and 3300 only")
    ap.add_argument("--drawn", action="store_true", help="also the real drawn anime sheets")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "deepcream" / "drawn-art",
                    help="where the drawn sheets' npm packages are kept")
    args = ap.parse_args()
    if args.mode == "check" and not args.file.exists():
        print(f"error: {args.file} not found (run 'save' first)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    found = hashes(QUICK_SEEDS if args.quick else ART_SEEDS)
    if args.drawn:
        found.update(drawn_hashes(args.cache))
    print(f"{len(found)} pictures in {time.perf_counter() - t0:.1f} s")
    if args.mode == "save":
        tmp = args.file.with_suffix(args.file.suffix + ".tmp")
        tmp.write_text(json.dumps(found, indent=0))
        tmp.replace(args.file)
        return 0
    saved = json.loads(args.file.read_text())
    differ = [k for k in found if k in saved and saved[k] != found[k]]
    missing = [k for k in found if k not in saved]
    print(f"differ: {len(differ)}" + (f" {differ[:20]}" if differ else "")
          + (f"; not in {args.file.name}: {len(missing)}" if missing else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
