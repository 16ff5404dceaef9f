"""The pure-Python checkpoint reader: bit-identical to TensorFlow, strict about corrupt files."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepcream.checkpoint import list_variables, read_checkpoint, resolve_prefix
from deepcream.errors import ModelError


def _load_fixture_module(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parent / "fixtures" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_writer = _load_fixture_module("bundle_writer")
masked_crc, write_bundle = _writer.masked_crc, _writer.write_bundle

# Makes a small checkpoint of many dtypes with TensorFlow's own writer (tf.train.Checkpoint,
# which also stores a string tensor), then dumps dtype/shape/sha256 of every tensor of every
# given prefix as TensorFlow reads it.
_TF_SCRIPT = r"""
import hashlib, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tensorflow as tf
out_json, tiny_prefix, *prefixes = sys.argv[1:]
rng = np.random.default_rng(7)
values = {
    "f32": rng.normal(size=(3, 4)).astype(np.float32),
    "f64": rng.normal(size=(2,)),
    "i32": rng.integers(-9, 9, (5,)).astype(np.int32),
    "i64": rng.integers(-2**40, 2**40, (2, 2)),
    "flag": np.array([True, False, True]),
    "u8": rng.integers(0, 255, (4,)).astype(np.uint8),
    "half": rng.normal(size=(2, 3)).astype(np.float16),
    "i8": np.array([-128, 5, 127], np.int8),
    "i16": np.array([-300, 7], np.int16),
    "scalar": np.float32(3.5),
    "empty": np.zeros((0, 3), np.float32),
}
ckpt = tf.train.Checkpoint(**{k: tf.Variable(v) for k, v in values.items()})
ckpt.write(tiny_prefix)
result = {}
for prefix in [tiny_prefix, *prefixes]:
    reader = tf.train.load_checkpoint(prefix)
    tensors = {}
    for name, dtype in reader.get_variable_to_dtype_map().items():
        if dtype == tf.string:
            tensors[name] = {"dtype": "string"}
            continue
        value = np.asarray(reader.get_tensor(name))
        tensors[name] = {"dtype": value.dtype.name, "shape": list(value.shape),
                         "sha256": hashlib.sha256(value.tobytes()).hexdigest()}
    result[prefix] = tensors
with open(out_json, "w") as f:
    json.dump(result, f)
"""


def _have_tf() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


@pytest.fixture(scope="module")
def tf_digests(dcpv2_release: Path, tmp_path_factory: pytest.TempPathFactory):
    """(tiny TF-written prefix, writer-made prefix, {prefix: {name: digest}} as TF reads them)."""
    if not _have_tf():
        pytest.skip("needs TensorFlow (pip install -e '.[test]')")
    tmp = tmp_path_factory.mktemp("tfck")
    tiny = tmp / "tiny" / "ckpt-12"
    handmade = write_bundle(tmp / "hand" / "model-3", _handmade_tensors())
    prefixes = [str(resolve_prefix(dcpv2_release / k)) for k in ("bar", "mosaic")]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, "-c", _TF_SCRIPT, str(tmp / "d.json"), str(tiny),
                    str(handmade), *prefixes], check=True, env=env, capture_output=True)
    return tiny, handmade, json.loads((tmp / "d.json").read_text())


def _handmade_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    # Enough names with shared prefixes to exercise prefix compression and restart points.
    tensors = {f"net/layer_{i}/kernel": rng.normal(size=(2, i + 1)).astype(np.float32)
               for i in range(12)}
    tensors["net/step"] = np.array(42, np.int64)
    tensors["net/half"] = rng.normal(size=(3,)).astype(np.float16)
    return tensors


def _digest(array: np.ndarray) -> dict:
    return {"dtype": array.dtype.name, "shape": list(array.shape),
            "sha256": hashlib.sha256(array.tobytes()).hexdigest()}


def test_reader_is_bit_identical_to_tensorflow_on_the_release(tf_digests) -> None:
    _, _, digests = tf_digests
    release_prefixes = list(digests)[2:]
    assert len(release_prefixes) == 2
    for prefix in release_prefixes:
        expected = digests[prefix]
        got = read_checkpoint(prefix).tensors
        assert len(got) == len(expected) > 150  # generator + discriminator + Adam slots
        assert set(got) == set(expected)
        for name, array in got.items():
            assert _digest(array) == expected[name], name


def test_reader_dtypes_match_tensorflow_writer(tf_digests) -> None:
    tiny, _, digests = tf_digests
    expected = digests[str(tiny)]
    strings = [n for n, d in expected.items() if d["dtype"] == "string"]
    numeric = [n for n in expected if n not in strings]
    assert strings and len(numeric) == 11
    got = read_checkpoint(tiny, names=numeric).tensors
    for name in numeric:
        assert _digest(got[name]) == expected[name], name
    dtypes = {got[n].dtype.name for n in numeric}
    assert {"float32", "float64", "int32", "int64", "bool", "uint8", "float16"} <= dtypes
    # A string tensor is listed, but reading it is a clear error naming it and its dtype.
    assert list_variables(tiny)[strings[0]][0] == np.dtype(object)
    with pytest.raises(ModelError, match=r"unsupported dtype string"):
        read_checkpoint(tiny, names=strings)
    # Reading "everything" skips it.
    assert set(read_checkpoint(tiny).tensors) == set(numeric)


def test_tensorflow_reads_the_test_writer_like_the_reader_does(tf_digests) -> None:
    _, handmade, digests = tf_digests
    expected = digests[str(handmade)]
    got = read_checkpoint(handmade).tensors
    assert {n: _digest(a) for n, a in got.items()} == expected
    assert read_checkpoint(handmade).step == 3


def test_reads_only_requested_names_and_lists_shapes(dcpv2_release: Path) -> None:
    names = ["G_en/Conv/weights", "CB1/ML/biases"]
    ck = read_checkpoint(dcpv2_release / "bar", names=names)
    assert list(ck.tensors) == names
    assert ck.tensors["G_en/Conv/weights"].shape == (5, 5, 6, 32)
    assert ck.tensors["G_en/Conv/weights"].dtype == np.float32
    assert ck.step == 775000 and ck.prefix.name == "Train_775000"
    variables = list_variables(dcpv2_release / "mosaic")
    assert variables["G_de/Conv_8/weights"] == (np.dtype(np.float32), (3, 3, 16, 3))
    assert any(n.endswith("/Adam_1") for n in variables)
    with pytest.raises(ModelError, match="no tensor named 'nope'"):
        read_checkpoint(dcpv2_release / "bar", names=["nope"])


def test_path_forms_resolve_to_the_same_prefix(dcpv2_release: Path, tmp_path: Path) -> None:
    prefix = resolve_prefix(dcpv2_release / "bar")
    assert prefix.parent == dcpv2_release / "bar"  # not the stale path in the state file
    for form in (prefix, Path(f"{prefix}.index"), Path(f"{prefix}.data-00000-of-00001"),
                 Path(f"{prefix}.meta")):
        assert resolve_prefix(form) == prefix
    # A folder without a `checkpoint` state file: its single .index.
    hand = write_bundle(tmp_path / "a" / "net", {"w": np.ones(3, np.float32)})
    assert resolve_prefix(tmp_path / "a") == hand
    write_bundle(tmp_path / "a" / "net2", {"w": np.ones(3, np.float32)})
    with pytest.raises(ModelError, match="several checkpoints"):
        resolve_prefix(tmp_path / "a")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no checkpoint in .*empty"):
        resolve_prefix(tmp_path / "empty")


def _small_checkpoint(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    tensors = _handmade_tensors()
    return write_bundle(tmp_path / "ck" / "model-3", tensors), tensors


def test_flipped_byte_fails_crc_only_for_that_tensor(tmp_path: Path) -> None:
    prefix, tensors = _small_checkpoint(tmp_path)
    data = Path(f"{prefix}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0x01  # first tensor in name order: net/half
    data.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=r"model-3\.data-00000-of-00001: corrupt data \(crc32c "
                                         r"mismatch in tensor 'net/half'\)"):
        read_checkpoint(prefix)
    # Tensors not asked for are not read, so the others still load.
    ok = read_checkpoint(prefix, names=["net/step", "net/layer_0/kernel"]).tensors
    assert ok["net/step"] == 42
    np.testing.assert_array_equal(ok["net/layer_0/kernel"], tensors["net/layer_0/kernel"])


def test_truncated_and_missing_files(tmp_path: Path) -> None:
    prefix, _ = _small_checkpoint(tmp_path)
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:-5])
    with pytest.raises(ModelError, match=r"data-00000-of-00001: truncated file"):
        read_checkpoint(prefix)
    data.unlink()
    with pytest.raises(ModelError, match=r"missing checkpoint data shard .*model-3\.data-00000"):
        read_checkpoint(prefix)
    prefix, _ = _small_checkpoint(tmp_path / "again")
    index = Path(f"{prefix}.index")
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(ModelError, match=r"model-3\.index: not a TensorFlow checkpoint index"):
        list_variables(prefix)
    index.unlink()
    with pytest.raises(ModelError, match=r"missing checkpoint index .*model-3\.index"):
        read_checkpoint(prefix)


def _footer_index_handle(index: bytes) -> tuple[int, int]:
    from deepcream.checkpoint import _varint

    footer = index[-48:]
    _, pos = _varint(footer, 0)
    _, pos = _varint(footer, pos)
    off, pos = _varint(footer, pos)
    size, _ = _varint(footer, pos)
    return off, size


def test_corrupt_index_block_and_compressed_block(tmp_path: Path) -> None:
    prefix, _ = _small_checkpoint(tmp_path)
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    raw[10] ^= 0xFF  # inside the data block
    index.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match=r"model-3\.index: corrupt file \(block checksum"):
        list_variables(prefix)
    # A snappy-compressed index block (type 1) with a valid checksum is refused clearly.
    raw[10] ^= 0xFF
    off, size = _footer_index_handle(bytes(raw))
    raw[off + size] = 1
    raw[off + size + 1:off + size + 5] = struct.pack("<I", masked_crc(bytes(raw[off:off + size + 1])))
    index.write_bytes(bytes(raw))
    with pytest.raises(ModelError, match="compressed table blocks"):
        list_variables(prefix)


def test_reader_works_on_a_copied_release_folder(dcpv2_release: Path, tmp_path: Path) -> None:
    # The fixture's `checkpoint` file names a path that no longer exists; copies must work too.
    dst = tmp_path / "bar"
    dst.mkdir()
    for name in ("checkpoint", "Train_775000.index"):
        shutil.copy(dcpv2_release / "bar" / name, dst / name)
    os.symlink(dcpv2_release / "bar" / "Train_775000.data-00000-of-00001",
               dst / "Train_775000.data-00000-of-00001")
    ck = read_checkpoint(dst, names=["G_de/Conv_8/biases"])
    assert ck.prefix == dst / "Train_775000"
    assert ck.tensors["G_de/Conv_8/biases"].shape == (3,)


def test_state_file_with_a_foreign_absolute_path(tmp_path: Path) -> None:
    # Releases trained on Windows name e.g. D:\train\bar\model-3 in their `checkpoint` file.
    prefix, _ = _small_checkpoint(tmp_path)
    write_bundle(prefix.parent / "model-1", {"w": np.ones(2, np.float32)})  # an older one
    (prefix.parent / "checkpoint").write_text(
        'model_checkpoint_path: "D:\\\\train\\\\bar\\\\model-3"\n'
        'all_model_checkpoint_paths: "D:\\\\train\\\\bar\\\\model-1"\n')
    assert resolve_prefix(prefix.parent) == prefix
    assert read_checkpoint(prefix.parent).step == 3
