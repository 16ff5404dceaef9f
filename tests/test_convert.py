"""`deepcream convert` / `deepcream models`: checkpoints -> ONNX files that match TensorFlow."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepcream.cli import main
from deepcream.graph import GENERATOR_SHAPES

MAX_MODEL_BYTES = 15_000_000
PARITY_TOLERANCE = 1e-4
DATA = "Train_775000.data-00000-of-00001"


def _load_fixture_module(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "fixtures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


write_bundle = _load_fixture_module("bundle_writer").write_bundle


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _link_checkpoint(src_dir: Path, dst_dir: Path, new_stem: str | None = None) -> None:
    """Symlink a checkpoint's files into another folder (optionally renamed), no 135 MB copy."""
    dst_dir.mkdir(parents=True)
    for f in src_dir.glob("Train_*"):
        if f.suffix == ".meta":
            continue
        name = f.name if new_stem is None else new_stem + f.name[f.name.index("."):]
        os.symlink(f, dst_dir / name)


def test_converted_models_are_small_and_described_by_the_manifest(converted_models: Path) -> None:
    manifest = json.loads((converted_models / "manifest.json").read_text())
    from deepcream import __version__

    assert manifest["converter_version"] == __version__
    assert set(manifest["models"]) == {"bar", "mosaic"}
    for kind, step in (("bar", 775000), ("mosaic", 290000)):
        entry = manifest["models"][kind]
        path = converted_models / entry["file"]
        assert path.name == f"{kind}.onnx"
        assert 0 < path.stat().st_size <= MAX_MODEL_BYTES
        assert entry["sha256"] == _sha(path)
        assert entry["source_step"] == step
        assert entry["source"].endswith(f"{kind}/Train_{step}")
        assert entry["attention"] in ("dense", "sparse")
    assert not list(converted_models.glob(".*part"))  # no temp files left


@pytest.mark.parametrize("kind", ["bar", "mosaic"])
def test_converted_model_matches_the_tensorflow_graph(kind: str, converted_models: Path,
                                                      dcpv2_release: Path) -> None:
    import onnxruntime as ort

    ref = np.load(dcpv2_release / kind / "reference.npz")
    # Samples are independent (per-sample attention); 4 of the 8 keep the test quick:
    # a central hole, a stroke, a large hole and scattered pixels.
    idx = [0, 3, 6, 7]
    session = ort.InferenceSession(str(converted_models / f"{kind}.onnx"),
                                   providers=["CPUExecutionProvider"])
    out = session.run(["output"], {"image": ref["x"][idx], "mask": ref["m"][idx][..., :1]})[0]
    diff = float(np.abs(out - ref["out"][idx]).max())
    assert diff <= PARITY_TOLERANCE, diff


def test_convert_nested_release_is_deterministic(converted_models: Path, dcpv2_release: Path,
                                                 tmp_path: Path, capsys) -> None:
    # Zips usually unpack to "09-11-2019 DCPv2 model/bar/...": accept the folder above it.
    unzipped = tmp_path / "unzipped"
    unzipped.mkdir()
    os.symlink(dcpv2_release, unzipped / "09-11-2019 DCPv2 model")
    out = tmp_path / "models"
    assert main(["convert", str(unzipped), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bar.onnx" in printed and "mosaic.onnx" in printed and "done in" in printed
    expected = json.loads((converted_models / "manifest.json").read_text())["models"]
    for kind in ("bar", "mosaic"):
        assert _sha(out / f"{kind}.onnx") == expected[kind]["sha256"]


def test_single_checkpoints_merge_into_one_manifest(dcpv2_release: Path, tmp_path: Path,
                                                    capsys) -> None:
    out = tmp_path / "models"
    assert main(["convert", str(dcpv2_release / "mosaic"), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "mosaic.onnx"]
    # A bare prefix; the kind comes from the folder name.
    assert main(["convert", str(dcpv2_release / "bar" / "Train_775000"), "-o", str(out)]) == 0
    models = json.loads((out / "manifest.json").read_text())["models"]
    assert set(models) == {"bar", "mosaic"}
    assert models["mosaic"]["source_step"] == 290000
    # `deepcream models` lists both with a good checksum.
    capsys.readouterr()
    assert main(["models", "--models", str(out)]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"bar\s+bar\.onnx\s+[\d.]+MB\s+ok\s+775000", listing), listing
    assert re.search(r"mosaic\s+mosaic\.onnx\s+[\d.]+MB\s+ok\s+290000", listing), listing


def test_mode_is_guessed_from_the_step_or_required(dcpv2_release: Path, tmp_path: Path,
                                                   capsys) -> None:
    _link_checkpoint(dcpv2_release / "bar", tmp_path / "weights")  # step 775000 -> bar
    out = tmp_path / "m1"
    assert main(["convert", str(tmp_path / "weights"), "-o", str(out)]) == 0
    assert (out / "bar.onnx").is_file()
    _link_checkpoint(dcpv2_release / "bar", tmp_path / "other", new_stem="model-5")
    out2 = tmp_path / "m2"
    assert main(["convert", str(tmp_path / "other"), "-o", str(out2)]) == 2
    err = capsys.readouterr().err
    assert "pass --mode bar or --mode mosaic" in err
    assert not out2.exists()
    assert main(["convert", str(tmp_path / "other"), "--mode", "mosaic", "-o", str(out2)]) == 0
    assert (out2 / "mosaic.onnx").is_file()


def test_default_output_is_the_models_folder(dcpv2_release: Path, tmp_path: Path,
                                             monkeypatch) -> None:
    from deepcream.models import installed_models, models_dir

    monkeypatch.setenv("DEEPCREAM_MODELS", str(tmp_path / "env-models"))
    assert models_dir() == tmp_path / "env-models"
    assert models_dir(tmp_path / "flag") == tmp_path / "flag"
    assert main(["convert", str(dcpv2_release / "bar")]) == 0
    assert installed_models() == {"bar": tmp_path / "env-models" / "bar.onnx"}
    monkeypatch.delenv("DEEPCREAM_MODELS")
    assert models_dir() == Path.home() / ".cache" / "deepcream" / "models"


def test_refuses_to_overwrite_without_force(dcpv2_release: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "models"
    out.mkdir()
    (out / "bar.onnx").write_bytes(b"keep me")
    assert main(["convert", str(dcpv2_release / "bar"), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already exists: pass --force" in err
    assert (out / "bar.onnx").read_bytes() == b"keep me"
    assert sorted(p.name for p in out.iterdir()) == ["bar.onnx"]
    assert main(["convert", str(dcpv2_release / "bar"), "-o", str(out), "--force"]) == 0
    assert (out / "bar.onnx").stat().st_size > 1_000_000


def test_models_lists_nothing_with_instructions_and_flags_a_bad_checksum(
        converted_models: Path, tmp_path: Path, capsys) -> None:
    assert main(["models", "--models", str(tmp_path / "none")]) == 0
    out = capsys.readouterr().out
    assert "deepcream fetch-model" in out and "deepcream convert" in out
    assert "1IMwzqZUuRnTv5jcuKdvZx-RZweknww5x" in out
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(converted_models / "manifest.json", bad)
    (bad / "bar.onnx").write_bytes(b"not the model")
    assert main(["models", "--models", str(bad)]) == 1
    assert re.search(r"bar\s+bar\.onnx.*MISMATCH", capsys.readouterr().out)


# --- corrupt inputs: one-line error, exit code 2, no output ---------------------------------


def _copy_bar(dcpv2_release: Path, dst: Path, data: bool = True) -> Path:
    dst.mkdir(parents=True)
    for f in (dcpv2_release / "bar").iterdir():
        if f.name.startswith("Train_") and (data or DATA not in f.name):
            shutil.copy(f, dst / f.name)
    return dst


def _truncated_data(rel: Path, tmp: Path) -> Path:
    src = _copy_bar(rel, tmp / "bar", data=False)
    with open(rel / "bar" / DATA, "rb") as f:
        (src / DATA).write_bytes(f.read(1_000_000))  # generator tensors lie past 1 MB
    return src


def _flipped_byte(rel: Path, tmp: Path) -> Path:
    from deepcream.checkpoint import _read_entries

    src = _copy_bar(rel, tmp / "bar")
    _, entries = _read_entries(src / "Train_775000")
    entry = entries["G_en/Conv_4/weights"]
    with open(src / DATA, "r+b") as f:
        f.seek(entry.offset + 1000)
        byte = f.read(1)
        f.seek(entry.offset + 1000)
        f.write(bytes([byte[0] ^ 0x10]))
    return src


def _missing_index(rel: Path, tmp: Path) -> Path:
    src = _copy_bar(rel, tmp / "bar", data=False)
    (src / "Train_775000.index").unlink()
    os.symlink(rel / "bar" / DATA, src / DATA)
    return src / "Train_775000"


def _other_network(rel: Path, tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_bundle(tmp / "bar" / "Train_1", {
        "dense/kernel": rng.normal(size=(8, 4)).astype(np.float32),
        "dense/bias": np.zeros(4, np.float32),
    }).parent


def _wrong_shape(rel: Path, tmp: Path) -> Path:
    tensors = {n: np.zeros(s, np.float32) for n, s in GENERATOR_SHAPES.items()}
    tensors["G_de/Conv_8/weights"] = np.zeros((3, 3, 16, 4), np.float32)
    return write_bundle(tmp / "bar" / "Train_775000", tensors).parent


CORRUPT_CASES = {
    "truncated-data": (_truncated_data, r"Train_775000\.data-00000-of-00001: truncated file"),
    "flipped-byte": (_flipped_byte, r"crc32c mismatch in tensor 'G_en/Conv_4/weights'"),
    "missing-index": (_missing_index, r"missing checkpoint index .*Train_775000\.index"),
    "other-network": (_other_network, r"not a DCPv2 generator checkpoint: variable "
                      r"G_en/Conv/weights \(expected shape \[5, 5, 6, 32\]\) is missing"),
    "wrong-shape": (_wrong_shape, r"variable G_de/Conv_8/weights has shape \[3, 3, 16, 4\], "
                    r"expected \[3, 3, 16, 3\]"),
}


@pytest.mark.parametrize("case", list(CORRUPT_CASES))
def test_corrupt_input_gives_one_line_error_and_no_output(case: str, dcpv2_release: Path,
                                                          tmp_path: Path, capsys) -> None:
    make, pattern = CORRUPT_CASES[case]
    src = make(dcpv2_release, tmp_path / "src")
    out = tmp_path / "models"
    assert main(["convert", str(src), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("deepcream: error: "), err
    assert re.search(pattern, err), err
    assert "Traceback" not in captured.out + captured.err
    assert not out.exists()


def test_a_bad_kind_in_a_release_writes_neither_model(dcpv2_release: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    release.mkdir()
    os.symlink(dcpv2_release / "bar", release / "bar")
    _truncated_data(dcpv2_release, release / "tmp")
    (release / "tmp" / "bar").rename(release / "mosaic")
    out = tmp_path / "models"
    out.mkdir()
    assert main(["convert", str(release), "-o", str(out)]) == 2
    assert list(out.iterdir()) == []  # bar converted fine but is not published alone


# --- TensorFlow: not needed to convert; used by --verify -------------------------------------

_NO_TF_WRAPPER = r"""
import importlib.abc, sys

class BlockTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_slim", "tensorboard", "keras", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for this test)")
        return None

sys.meta_path.insert(0, BlockTensorFlow())
from deepcream.cli import main
rc = main(sys.argv[1:])
assert not [m for m in sys.modules if m.startswith("tensorflow")]
sys.exit(rc)
"""


def _run_without_tf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _NO_TF_WRAPPER, *args], capture_output=True,
                          text=True, timeout=300)


def test_convert_runs_with_tensorflow_blocked(converted_models: Path, dcpv2_release: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "models"
    proc = _run_without_tf("convert", str(dcpv2_release), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    expected = json.loads((converted_models / "manifest.json").read_text())["models"]
    for kind in ("bar", "mosaic"):
        assert _sha(out / f"{kind}.onnx") == expected[kind]["sha256"]
    proc = _run_without_tf("convert", str(dcpv2_release / "bar"), "-o", str(tmp_path / "v"),
                           "--verify")
    assert proc.returncode == 2
    assert "pip install 'deepcream[tf]'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "v").exists()


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="needs TensorFlow")
def test_verify_compares_with_the_tensorflow_graph(dcpv2_release: Path, tmp_path: Path,
                                                   capsys) -> None:
    out = tmp_path / "models"
    # A zero tolerance must fail (float results never match bit for bit) and publish nothing.
    assert main(["convert", str(dcpv2_release / "bar"), "-o", str(out), "--verify",
                 "--tolerance", "0"]) == 2
    captured = capsys.readouterr()
    assert "verification failed for bar: max abs difference" in captured.err
    assert not out.exists()
    assert main(["convert", str(dcpv2_release / "bar"), "-o", str(out), "--verify"]) == 0
    printed = capsys.readouterr().out
    match = re.search(r"verified bar: 8 random crops .* max abs difference ([0-9.e+-]+)", printed)
    assert match, printed
    assert float(match.group(1)) <= PARITY_TOLERANCE
    assert (out / "bar.onnx").is_file()
