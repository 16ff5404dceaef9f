"""Hostile checkpoints, zips and downloads: one error line and exit 2, never a traceback, a
hang or gigabytes read; state-file paths stay inside the checkpoint folder."""

from __future__ import annotations

import importlib.util
import os
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepcream.checkpoint import MAX_INDEX_BYTES, list_variables, resolve_prefix
from deepcream.cli import main
from deepcream.errors import ModelError


def _fixture(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "fixtures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bw = _fixture("bundle_writer")
V, B = bw.field_varint, bw.field_bytes


def _entry(**override: bytes) -> bytes:
    """A BundleEntryProto for a float32 [2] tensor, any field replaced by raw bytes."""
    fields = {"dtype": V(1, 1), "shape": B(2, B(2, V(1, 2))), "shard": V(3, 0),
              "offset": V(4, 0), "size": V(5, 8)}
    fields.update(override)
    return b"".join(fields.values())


WIRE_CASES = {
    "shape-as-varint": ([(b"", V(1, 1)), (b"w", _entry(shape=V(2, 7)))], "field shape is varint"),
    "offset-as-bytes": ([(b"", V(1, 1)), (b"w", _entry(offset=B(4, b"12")))],
                        "field offset is bytes"),
    "dim-as-bytes": ([(b"", V(1, 1)), (b"w", _entry(shape=B(2, B(2, B(1, b"2")))))],
                     "field dim.size is bytes"),
    "shard-as-bytes": ([(b"", V(1, 1)), (b"w", _entry(shard=B(3, b"\0")))],
                       "field shard_id is bytes"),
    "num-shards-as-bytes": ([(b"", B(1, b"x")), (b"w", _entry())], "field num_shards is bytes"),
}


def _convert(args: list[str], capsys) -> tuple[int, str]:
    code = main(["convert", *args])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert "Traceback" not in captured.out + captured.err
    return code, err


def _one_line(code: int, err: str, pattern: str) -> None:
    assert code == 2, err
    assert "\n" not in err and err.startswith("deepcream: error: "), err
    assert re.search(pattern, err), err


@pytest.mark.parametrize("case", list(WIRE_CASES))
def test_wrong_wire_types_are_one_line_errors(case: str, tmp_path: Path, capsys) -> None:
    entries, message = WIRE_CASES[case]
    prefix = bw.write_index(tmp_path / "bar" / "Train_775000", entries)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(b"\0" * 8)
    code, err = _convert([str(prefix.parent), "-o", str(tmp_path / "out")], capsys)
    _one_line(code, err, rf"Train_775000\.index: corrupt entry .*{message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("named,message", [
    ("Train_77\\\\x", r"bad escape \\x"), ("\\\\N{foo}", r"bad escape \\N"),
    ("Train\\\\", "ends in a lone backslash")])
def test_bad_escapes_in_the_state_file(named: str, message: str, tmp_path: Path, capsys) -> None:
    prefix = bw.write_bundle(tmp_path / "bar" / "Train_775000", {"w": np.ones(2, np.float32)})
    (prefix.parent / "checkpoint").write_text(f'model_checkpoint_path: "{named}"\n'.replace(
        "\\\\", "\\"))
    code, err = _convert([str(prefix.parent), "-o", str(tmp_path / "out")], capsys)
    _one_line(code, err, rf"checkpoint: (model_checkpoint_path )?{message}")


def test_state_file_paths_stay_inside_the_folder(tmp_path: Path, capsys) -> None:
    outside = bw.write_bundle(tmp_path / "elsewhere" / "Secret_1", {"w": np.ones(2, np.float32)})
    folder = tmp_path / "bar"
    folder.mkdir()
    for named in (str(outside), "../elsewhere/Secret_1"):
        (folder / "checkpoint").write_text(f'model_checkpoint_path: "{named}"\n')
        with pytest.raises(ModelError, match=r"no checkpoint in .*bar \(no \.index file\)"):
            resolve_prefix(folder)
    # Inside the folder (a subfolder too) is fine.
    inner = bw.write_bundle(folder / "run" / "Train_5", {"w": np.ones(2, np.float32)})
    (folder / "checkpoint").write_text('model_checkpoint_path: "run/Train_5"\n')
    assert resolve_prefix(folder) == inner


def test_a_zip_whose_state_file_names_a_file_outside(tmp_path: Path, capsys) -> None:
    """The zip's own checkpoint is not the DCPv2 one, and the state file points at a real
    checkpoint elsewhere on the machine: that one must never be read."""
    outside = bw.write_bundle(tmp_path / "elsewhere" / "Train_775000", {"w": np.ones(2, np.float32)})
    zpath = tmp_path / "release.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("bar/checkpoint", f'model_checkpoint_path: "{outside}"\n')
        zf.writestr("bar/Train_1.index", b"\0" * 60)
    code, err = _convert([str(zpath), "-o", str(tmp_path / "out")], capsys)
    assert code == 2 and "Train_1.index" in err and str(outside) not in err, err


def test_huge_sparse_index_is_refused_from_its_size(tmp_path: Path) -> None:
    prefix = bw.write_bundle(tmp_path / "bar" / "Train_1", {"w": np.ones(2, np.float32)})
    index = Path(f"{prefix}.index")
    real = index.read_bytes()
    with open(index, "r+b") as fh:  # 3 GB, sparse: the real footer moved to the end
        fh.truncate(3 << 30)
        fh.seek((3 << 30) - 48)
        fh.write(real[-48:])
    with pytest.raises(ModelError, match=rf"3,221,225,472 bytes, far more than a checkpoint "
                       rf"index .*limit is {MAX_INDEX_BYTES:,}"):
        list_variables(prefix)


def _fails_fast(fn) -> BaseException:
    """Run ``fn`` in a thread; it must raise within 10 s (a FIFO read would block forever)."""
    box: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "blocked (reading a FIFO?)"
    assert box, "no error"
    return box[0]


@pytest.mark.parametrize("which", ["data", "index"])
def test_fifo_shard_or_index_is_refused_not_read(which: str, tmp_path: Path) -> None:
    from deepcream.checkpoint import read_checkpoint

    prefix = bw.write_bundle(tmp_path / "bar" / "Train_1", {"w": np.ones(2, np.float32)})
    path = Path(f"{prefix}.data-00000-of-00001" if which == "data" else f"{prefix}.index")
    path.unlink()
    os.mkfifo(path)
    exc = _fails_fast(lambda: read_checkpoint(prefix))
    assert isinstance(exc, ModelError) and "not a regular file" in str(exc), exc


@pytest.mark.parametrize("content,what", [
    (b"<!DOCTYPE html><html><body>Google Drive - Virus scan warning</body></html>",
     r"an HTML page \(\d+ bytes; a download that returned a web page\?\)"),
    (b"", "an empty file"),
    (b"PK\x03\x04" + b"\0" * 100, r"a damaged or truncated zip archive \(104 bytes\)"),
    (b"just some notes\n", r"not a zip archive \(16 bytes\)"),
])
@pytest.mark.parametrize("name", ["model.zip", "model.bin"])
def test_convert_says_what_a_non_zip_file_is(content: bytes, what: str, name: str,
                                            tmp_path: Path, capsys) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    code, err = _convert([str(path), "-o", str(tmp_path / "out")], capsys)
    _one_line(code, err, rf"{re.escape(name)} is {what}, so not the DCPv2 model release")


def test_truncated_real_zip(tmp_path: Path, capsys) -> None:
    zpath = tmp_path / "release.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("bar/Train_1.index", os.urandom(5000))
    zpath.write_bytes(zpath.read_bytes()[:3000])
    code, err = _convert([str(zpath), "-o", str(tmp_path / "out")], capsys)
    _one_line(code, err, "damaged or truncated zip archive")


def test_fetch_download_is_capped(tmp_path: Path, capsys, monkeypatch) -> None:
    """file:///dev/zero never ends: the cap stops it (2.2 GB in 5 s before)."""
    import tempfile

    work = tmp_path / "tmp"
    work.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(work))
    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * 3_000_000)
    code = main(["fetch-model", "--url", big.as_uri(), "-o", str(tmp_path / "m"),
                 "--max-download-mb", "2"])
    err = capsys.readouterr().err.strip()
    _one_line(code, err, r"over 3 MB, more than the limit of 2 MB .*--max-download-mb")
    code = main(["fetch-model", "--url", "file:///dev/zero", "-o", str(tmp_path / "m")])
    err = capsys.readouterr().err.strip()
    _one_line(code, err, r"/dev/zero is not a regular file")
    assert list(work.iterdir()) == []
