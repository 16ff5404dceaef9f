"""`deepcream detect-mosaic`: find pixelated regions and write mask images (and painted copies)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deepcream.errors import InputError
from deepcream.options import DEFAULT_MASK_COLOR

PAINT_COLOR = DEFAULT_MASK_COLOR


def register(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "detect-mosaic",
        help="find mosaic (pixelated) regions automatically and write mask images",
        description="Find regions made of a regular grid of constant-color blocks (3-48 px) "
        "and write '<name>.mask.png' (white = mosaic) per image. With --painted, also write "
        "DeepCreamPy's mosaic-mode layout: the image with the regions painted (0,255,0) in "
        "DIR/decensor_input/ and the untouched original in DIR/decensor_input_original/.",
    )
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files or folders")
    p.add_argument("-o", "--output", type=Path, default=Path("."), metavar="DIR",
                   help="output folder (default: the current folder)")
    p.add_argument("--painted", action="store_true",
                   help="also write the green-painted copy and the original in DeepCreamPy's "
                   "decensor_input/ and decensor_input_original/ folders")
    p.add_argument("--json", action="store_true",
                   help="also write '<name>.mask.json': the regions found, each with its block "
                   "size (px), grid phase, box and pixel count")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.set_defaults(func=run)
    return p


def _expand(paths: list[Path]) -> list[Path]:
    from deepcream.imageio import IMAGE_SUFFIXES

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(f for f in path.iterdir()
                           if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"{path}: no image files in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from deepcream.fsutil import atomic_write_bytes
    from deepcream.imageio import load_image, save_png, to_rgb_alpha
    from deepcream.mosaic import find_mosaic_regions

    files = _expand(args.images)
    out: Path = args.output
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    targets = []
    for f in files:
        mask_path = out / f"{f.stem}.mask.png"
        painted = out / "decensor_input" / f"{f.stem}.png"
        original = out / "decensor_input_original" / f"{f.stem}.png"
        json_path = out / f"{f.stem}.mask.json"
        paths = ([mask_path] + ([json_path] if args.json else [])
                 + ([painted, original] if args.painted else []))
        if not args.force:
            for t in paths:
                if t.exists():
                    raise InputError(f"{t}: already exists (use --force to overwrite)")
        if any(t.resolve() == f.resolve() for t in paths):
            raise InputError(f"{f}: an output would overwrite this input")
        targets.append((f, mask_path, json_path, painted, original))
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise InputError("two inputs have the same base name; their outputs would collide")
    # Check every input decodes before writing anything, so a bad file in a batch does not
    # leave half of the outputs behind.
    for f in files:
        load_image(f)
    for f, mask_path, json_path, painted, original in targets:
        src = load_image(f)
        rgb, _alpha = to_rgb_alpha(src)
        mask, regions = find_mosaic_regions(rgb)
        out.mkdir(parents=True, exist_ok=True)
        save_png(Image.fromarray(mask.astype(np.uint8) * 255, "L"), mask_path)
        share = 100.0 * np.count_nonzero(mask) / mask.size
        if args.painted:
            painted.parent.mkdir(parents=True, exist_ok=True)
            original.parent.mkdir(parents=True, exist_ok=True)
            colored = rgb.copy()
            colored[mask] = PAINT_COLOR
            save_png(Image.fromarray(colored, "RGB"), painted)
            save_png(src if src.mode in ("RGB", "RGBA", "L") else src.convert("RGB"), original)
        if args.json:
            doc = {"image": str(f), "width": int(mask.shape[1]), "height": int(mask.shape[0]),
                   "mask_pixels": int(np.count_nonzero(mask)),
                   "regions": [{"block": r.block or None, "period": r.period or None,
                                "phase": [r.phase_x, r.phase_y] if r.block else None,
                                "box": list(r.box), "pixels": r.pixels} for r in regions]}
            atomic_write_bytes(json_path, (json.dumps(doc, indent=2) + "\n").encode())
        if not mask.any():
            note = "no mosaic found"
        else:
            blocks = ", ".join(f"{f'{r.period:g} px' if r.block else 'unknown'} at ({r.box[0]},{r.box[1]}) "
                               f"{r.box[2] - r.box[0]}x{r.box[3] - r.box[1]}" for r in regions)
            note = (f"mosaic on {share:.2f}% of the image, {len(regions)} region"
                    f"{'s' if len(regions) != 1 else ''} (block {blocks})")
        print(f"{f}: {note} -> {mask_path}")
    return 0
