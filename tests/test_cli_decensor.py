"""`deepcream decensor`: outputs, names, DCP folders, mosaic pairing, and every bad input
giving one clear line, a non-zero exit, the other images still done, no partial files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepcream.cli import main
from deepcream.folderjob import JOURNAL_NAME

GREEN = (0, 255, 0)


def picture(width: int = 160, height: int = 120, seed: int = 0, bars: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.dstack([xx * 255 // width, yy * 255 // height, (xx * yy) % 200]).astype(np.uint8)
    rgb = np.clip(rgb.astype(int) + rng.integers(0, 8, rgb.shape), 0, 250).astype(np.uint8)
    if bars:
        rgb[40:52, 20:120] = GREEN
        rgb[80:110, 130:140] = GREEN
    return rgb


def save(path: Path, rgb: np.ndarray, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)
    return path


def zero_size_png() -> bytes:
    """A well-formed PNG header declaring a 0x10 image (Pillow cannot write one)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(["decensor", "-q", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def images(folder: Path) -> list[str]:
    """Names of the images in a folder (the job's journal aside)."""
    return sorted(p.name for p in folder.iterdir() if p.name != JOURNAL_NAME)


def no_partial_files(folder: Path) -> bool:
    return not any(p.name.endswith(".part") for p in folder.rglob("*"))


def check_output(path: Path, source: np.ndarray) -> np.ndarray:
    out = np.asarray(Image.open(path))
    holes = np.all(source == GREEN, axis=2)
    assert np.array_equal(out[~holes], source[~holes])
    assert not np.all(out == GREEN, axis=2).any()
    return out


def test_folder_with_good_and_bad_inputs(tmp_path, capsys) -> None:
    src = tmp_path / "in"
    good = picture()
    save(src / "a.png", good)
    save(src / "b.jpg", picture(seed=1, bars=False), quality=95)  # no exact mask pixels
    (src / "c.png").write_bytes(b"this is not an image")
    (src / "empty.png").write_bytes(b"")
    buf = io.BytesIO()
    Image.fromarray(good).save(buf, "PNG")
    (src / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    buf = io.BytesIO()
    Image.fromarray(good).save(buf, "JPEG")
    (src / "trunc.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    save(src / "d.png", picture(seed=2))
    (src / "zero.png").write_bytes(zero_size_png())
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    out_dir = tmp_path / "out"
    code, out, err = run([str(src), "-o", str(out_dir), "--engine", "classical"], capsys)
    assert code == 1
    assert images(out_dir) == ["a.png", "d.png"]
    check_output(out_dir / "a.png", good)
    lines = err.strip().splitlines()
    assert any("c.png: not a supported image" in line for line in lines)
    assert any("empty.png: empty file" in line for line in lines)
    assert any("zero.png: zero-size image (0x10)" in line for line in lines)
    assert any("trunc.png" in line and "truncated" in line for line in lines)
    assert any("trunc.jpg" in line and "truncated" in line for line in lines)
    assert any("b.jpg" in line and "nothing to decensor" in line for line in lines)
    assert lines[-1].startswith("deepcream: 2 of 8 images done, 4 regions filled, engine classical")
    assert all(line.startswith("deepcream: ") for line in lines)
    assert no_partial_files(tmp_path)
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched


def test_outputs_never_overwrite_inputs(tmp_path, capsys) -> None:
    rgb = picture()
    src = save(tmp_path / "x.png", rgb)
    data = src.read_bytes()
    code, _, _ = run([str(src), "-o", str(tmp_path), "--engine", "classical"], capsys)
    assert code == 0
    assert src.read_bytes() == data
    check_output(tmp_path / "x.decensored.png", rgb)
    # Default: beside the input.
    other = save(tmp_path / "sub" / "y.png", rgb)
    code, _, _ = run([str(other), "--engine", "classical"], capsys)
    assert code == 0 and (tmp_path / "sub" / "y.decensored.png").is_file()
    # Two inputs with the same name into one folder: both kept.
    save(tmp_path / "sub2" / "y.png", picture(seed=5))
    out = tmp_path / "o"
    code, _, _ = run([str(tmp_path / "sub" / "y.png"), str(tmp_path / "sub2" / "y.png"),
                      "-o", str(out), "--engine", "classical"], capsys)
    assert code == 0 and images(out) == ["y.decensored.png", "y.png"]


def test_variations_names_and_engine_metadata(tmp_path, capsys) -> None:
    rgb = picture()
    src = save(tmp_path / "v.png", rgb)
    code, out, _ = main(["decensor", str(src), "-o", str(tmp_path / "out"), "--variations", "2",
                         "--engine", "classical"]), *capsys.readouterr()
    assert code == 0
    names = images(tmp_path / "out")
    assert names == ["v 0.png", "v 1.png"]
    img = Image.open(tmp_path / "out" / "v 1.png")
    assert img.text["deepcream-engine"].startswith("classical")
    assert "1 of 1 images done, 2 regions filled, engine classical" in out


def test_mosaic_originals_matched_by_name(tmp_path, capsys) -> None:
    colored_dir, orig_dir = tmp_path / "colored", tmp_path / "orig"
    original = picture(bars=False, seed=3)
    colored = original.copy()
    colored[30:70, 40:100] = GREEN
    save(colored_dir / "m1.png", colored)
    save(orig_dir / "m1.JPG", original, quality=100)
    save(colored_dir / "m2.png", colored)  # no original
    save(colored_dir / "m3.png", colored)
    save(orig_dir / "m3.png", picture(80, 60, bars=False))  # wrong size
    out_dir = tmp_path / "out"
    code, _, err = run([str(colored_dir), "--mode", "mosaic", "--original", str(orig_dir),
                        "-o", str(out_dir), "--engine", "classical"], capsys)
    assert code == 1
    assert images(out_dir) == ["m1.png"]
    assert "m2.png: no original named m2" in err
    assert "m3.png" in err and "must match" in err
    out = np.asarray(Image.open(out_dir / "m1.png"))
    jpg = np.asarray(Image.open(orig_dir / "m1.JPG"))
    holes = np.all(colored == GREEN, axis=2)
    assert np.array_equal(out[~holes], jpg[~holes])
    assert no_partial_files(tmp_path)


def test_mosaic_needs_original(tmp_path, capsys) -> None:
    src = save(tmp_path / "m.png", picture())
    code, _, err = run([str(src), "--mode", "mosaic", "--engine", "classical"], capsys)
    assert code == 2 and "needs --original" in err


def test_dcp_folders_layout(tmp_path, capsys) -> None:
    root = tmp_path / "dcp"
    rgb = picture()
    save(root / "decensor_input" / "page.png", rgb)
    save(root / "decensor_input" / "page2.png", picture(seed=4))
    code, _, _ = run(["--dcp-folders", str(root), "--variations", "2", "--engine", "classical"],
                     capsys)
    assert code == 0
    names = images(root / "decensor_output")
    assert names == ["page 0.png", "page 1.png", "page2 0.png", "page2 1.png"]
    check_output(root / "decensor_output" / "page 1.png", rgb)
    # Mosaic: originals from decensor_input_original.
    original = picture(bars=False, seed=9)
    colored = original.copy()
    colored[10:50, 10:60] = GREEN
    root2 = tmp_path / "dcp2"
    save(root2 / "decensor_input" / "q.png", colored)
    save(root2 / "decensor_input_original" / "q.jpeg", original, quality=100)
    code, _, _ = run(["--dcp-folders", str(root2), "--mode", "mosaic", "--engine", "classical"],
                     capsys)
    assert code == 0 and (root2 / "decensor_output" / "q 0.png").is_file()


def test_unwritable_output_folder(tmp_path, capsys) -> None:
    src = save(tmp_path / "a.png", picture())
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    code, _, err = run([str(src), "-o", str(blocker / "out"), "--engine", "classical"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"deepcream: error: output folder {blocker / 'out'} is not writable (Not a directory)"]
    code, _, err = run([str(src), "-o", str(blocker), "--engine", "classical"], capsys)
    assert code == 2 and "is not a folder" in err


def test_missing_inputs_and_bad_options(tmp_path, capsys) -> None:
    code, _, err = run([str(tmp_path / "nope.png"), "--engine", "classical"], capsys)
    assert code == 1 and "nope.png: no such file or folder" in err
    code, _, err = run(["--engine", "classical"], capsys)
    assert code == 2 and "no input" in err
    empty = tmp_path / "models"
    empty.mkdir()
    src = save(tmp_path / "a.png", picture())
    code, _, err = run([str(src), "--engine", "onnx", "--models", str(empty)], capsys)
    assert code == 2 and "no bar model" in err
    with pytest.raises(SystemExit) as exc:
        main(["decensor", str(src), "--mask-color", "0,300,0"])
    assert exc.value.code == 2
    code, _, err = run([str(src), "--mask-tolerance", "999", "--engine", "classical"], capsys)
    assert code == 2 and "mask-tolerance" in err


def test_onnx_engine_from_models_folder(tmp_path, capsys, converted_models) -> None:
    rgb = picture()
    src = save(tmp_path / "a.png", rgb)
    code, out, err = main(["decensor", str(src), "-o", str(tmp_path / "o"), "--models",
                           str(converted_models)]), *capsys.readouterr()
    assert code == 0, err
    check_output(tmp_path / "o" / "a.png", rgb)
    assert "engine onnx bar.onnx" in out
    assert "fetch-model" not in err  # the model ran: no hint
    assert Image.open(tmp_path / "o" / "a.png").text["deepcream-engine"].startswith("onnx")


EXAMPLES = Path(__file__).resolve().parents[1] / "deepcream" / "examples"


def test_bundled_examples(tmp_path, capsys) -> None:
    # The README's main-job command (scripts/example.sh) on the bundled example.
    code, _, _ = run([str(EXAMPLES / "example-bar.png"), "-o", str(tmp_path), "--engine",
                      "classical"], capsys)
    assert code == 0
    colored = np.asarray(Image.open(EXAMPLES / "example-bar.png").convert("RGB"))
    check_output(tmp_path / "example-bar.png", colored)
    code, _, _ = run([str(EXAMPLES / "example-mosaic-colored.png"), "--mode", "mosaic",
                      "--original", str(EXAMPLES / "example-mosaic.png"), "-o", str(tmp_path),
                      "--engine", "classical"], capsys)
    assert code == 0
    out = np.asarray(Image.open(tmp_path / "example-mosaic-colored.png"))
    mosaic = np.asarray(Image.open(EXAMPLES / "example-mosaic.png").convert("RGB"))
    holes = np.all(np.asarray(Image.open(EXAMPLES / "example-mosaic-colored.png")
                              .convert("RGB")) == GREEN, axis=2)
    assert np.array_equal(out[~holes], mosaic[~holes])
    code, _, _ = run([str(EXAMPLES / "example-mosaic.png"), "--mode", "mosaic", "--auto-mask",
                      "-o", str(tmp_path / "auto"), "--engine", "classical"], capsys)
    assert code == 0 and (tmp_path / "auto" / "example-mosaic.png").is_file()


def test_classical_runs_say_once_how_to_get_the_models(tmp_path, capsys) -> None:
    """Issue 17 item 4: one notice per run (not per file) naming `deepcream fetch-model`
    when the classical engine made the outputs; `deepcream models` says why in one line."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        save(folder / f"p{i}.png", picture(seed=i))
    code = main(["decensor", str(folder), "-o", str(tmp_path / "o"), "--engine", "classical"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.count("classical") >= 3  # one line per file
    assert err.count("deepcream fetch-model") == 1
    code, _, err = run([str(folder), "-o", str(tmp_path / "q"), "--engine", "classical"],
                       capsys)  # --quiet
    assert code == 0 and "fetch-model" not in err
    empty = tmp_path / "models"
    empty.mkdir()
    code, out, _ = main(["models", "--models", str(empty)]), *capsys.readouterr()
    assert code == 0 and "far better than the classical engine" in out
