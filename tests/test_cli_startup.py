"""What the CLI imports before it has work to do: `deepcream --help` and argument parsing load
no numerical or imaging library, and a one-shot decensor never imports SciPy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "PIL.Image", "cv2", "onnxruntime", "scipy", "onnx", "tqdm", "fastapi")


def _loaded_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True).stdout
    return set(out.split())


def test_help_and_parsing_import_no_heavy_library() -> None:
    loaded = _loaded_after(
        "import contextlib, io\n"
        "from deepcream.cli import build_parser\n"
        "parser = build_parser()\n"
        "parser.parse_args(['decensor', 'x.png', '-o', 'out', '--variations', '2'])\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    parser.parse_args(['--help'])\n")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    # the verbs that need them (serve, convert) import them when they run
    assert not loaded & {"socket", "zipfile"}, sorted(loaded & {"socket", "zipfile"})


def test_one_shot_decensor_does_not_import_scipy(tmp_path) -> None:
    import numpy as np
    from PIL import Image

    rgb = np.full((64, 64, 3), 200, np.uint8)
    rgb[20:30, 10:50] = (0, 255, 0)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    loaded = _loaded_after(
        "from deepcream.cli import main\n"
        f"assert main(['decensor', {str(tmp_path / 'a.png')!r}, '-o', "
        f"{str(tmp_path / 'out')!r}, '--engine', 'classical', '-q']) == 0\n")
    assert (tmp_path / "out" / "a.png").is_file()
    assert "scipy" not in loaded


def _threads_after(code: str, env: dict[str, str]) -> tuple[int, str]:
    probe = code + ("\nimport os\nprint(len(os.listdir('/proc/self/task')), "
                    "os.environ.get('OPENBLAS_NUM_THREADS'))")
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                         text=True, env=env).stdout.split()
    return int(out[0]), out[1]


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")
def test_the_command_starts_numpy_with_one_blas_thread() -> None:
    # what entry() does before main(): numpy's OpenBLAS then starts no spinning workers
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    code = "from deepcream.cli import single_thread_blas\nsingle_thread_blas()\nimport numpy"
    assert _threads_after(code, env) == (1, "1")
    # a user's own setting is kept
    assert _threads_after(code, {**env, "OPENBLAS_NUM_THREADS": "3"})[1] == "3"


def test_the_model_starts_loading_before_the_imaging_libraries_are_imported() -> None:
    """A one-shot run starts loading its model right after ``Decensorer`` is imported: that
    import brings numpy (the engines need it), not OpenCV, Pillow or the pipeline."""
    loaded = _loaded_after("import deepcream.decensorer")
    assert "numpy" in loaded
    assert not loaded & {"cv2", "PIL.Image", "onnxruntime", "deepcream.pipeline"}, sorted(
        loaded & {"cv2", "PIL.Image", "onnxruntime", "deepcream.pipeline"})


def test_one_image_run_decodes_its_input_ahead(tmp_path) -> None:
    """The CLI reads and decodes a single input from its first line (``pngdecode``), and the
    pipeline takes those pixels instead of decoding the file again."""
    import numpy as np
    from PIL import Image

    rgb = np.full((64, 64, 3), 200, np.uint8)
    rgb[20:30, 10:50] = (0, 255, 0)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = subprocess.run([sys.executable, "-c", (
        "from deepcream import pngdecode\n"
        "from deepcream.cli import main\n"
        "real, taken = pngdecode.take, []\n"
        "pngdecode.take = lambda p: taken.append(real(p)) or taken[-1]\n"
        f"assert main(['decensor', {str(tmp_path / 'a.png')!r}, '-o', "
        f"{str(tmp_path / 'out')!r}, '--engine', 'classical', '-q']) == 0\n"
        "print([t is not None and t.pixels is not None for t in taken])\n")],
        check=True, capture_output=True, text=True).stdout
    assert out.split()[-1] == "[True]"
    got = np.asarray(Image.open(tmp_path / "out" / "a.png").convert("RGB"))
    assert np.array_equal(got[:15], rgb[:15]) and (got[20:30, 10:50] != (0, 255, 0)).any()
