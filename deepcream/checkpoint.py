"""Pure-Python reader for TensorFlow checkpoint V2 ("tensor bundle") files; no TensorFlow needed.

A checkpoint is ``PREFIX.index`` (a LevelDB-format sorted table: variable name ->
``BundleEntryProto``; the empty key holds the ``BundleHeaderProto``) plus one or more
``PREFIX.data-NNNNN-of-MMMMM`` shards holding the raw little-endian tensor bytes.
Only the tensors asked for are read, and each one's masked CRC32C is checked.

Every problem raises :class:`deepcream.errors.ModelError` naming the file and what is wrong.
"""

from __future__ import annotations

import glob
import math
import os
import re
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import google_crc32c
import numpy as np

from deepcream.errors import ModelError

__all__ = ["Checkpoint", "TensorEntry", "list_variables", "read_checkpoint", "resolve_prefix"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two padded block handles (40 bytes) + 8-byte magic
_BLOCK_TRAILER_SIZE = 5  # 1-byte compression type + 4-byte masked crc32c
_CRC_MASK_DELTA = 0xA282EAD8
#: Largest ``.index`` read: the DCPv2 ones are ~8 KB, and a checkpoint with thousands of
#: variables stays well under a megabyte.
MAX_INDEX_BYTES = 64 << 20
_MAX_STATE_BYTES = 1 << 16  # the `checkpoint` state file is a few lines

# TensorFlow DataType enum -> little-endian numpy dtype (raw layout as BundleWriter stores it).
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}
_DTYPE_NAMES = {
    7: "string", 11: "qint8", 12: "quint8", 13: "qint32", 14: "bfloat16", 15: "qint16",
    16: "quint16", 20: "resource", 21: "variant",
}
_UNSUPPORTED_DTYPE = np.dtype(object)  # what list_variables reports for dtypes we can't read

_STEP_RE = re.compile(r"[-_](\d+)$")


@dataclass(frozen=True)
class TensorEntry:
    """Where one tensor lives in the data shards (decoded ``BundleEntryProto``)."""

    name: str
    dtype_enum: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None  # masked; None if the writer did not store one
    sliced: bool

    @property
    def dtype(self) -> np.dtype:
        return _DTYPES.get(self.dtype_enum, _UNSUPPORTED_DTYPE)

    @property
    def dtype_name(self) -> str:
        if self.dtype_enum in _DTYPES:
            return _DTYPES[self.dtype_enum].name
        return _DTYPE_NAMES.get(self.dtype_enum, f"DataType {self.dtype_enum}")


@dataclass
class Checkpoint:
    """Tensors read from a checkpoint, by variable name."""

    prefix: Path
    step: int | None
    tensors: dict[str, np.ndarray] = field(default_factory=dict)


# --- protobuf wire format (just what the bundle messages use) ----------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterable[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) of a serialized protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            value = bytes(buf[pos:pos + length])
            pos += length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


_WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "bytes", 5: "fixed32"}


def _typed(fields: Iterable[tuple[int, int, int | bytes]], names: dict[int, str],
           wires: dict[int, int]) -> dict[int, int | bytes]:
    """The known fields of a message by number (last one wins, as in protobuf), each checked
    against the wire type the message defines (``wires``): a hostile file may put bytes
    where a number belongs, and the error must say which field, not crash later."""
    found: dict[int, int | bytes] = {}
    for number, wire, value in fields:
        if number not in wires:
            continue
        if wire != wires[number]:
            raise ValueError(f"field {names[number]} is {_WIRE_NAMES.get(wire, wire)}, expected "
                             f"{_WIRE_NAMES[wires[number]]}")
        found[number] = value
    return found


def _parse_shape(buf: bytes) -> tuple[int, ...]:
    dims: list[int] = []
    for number, wire, value in _fields(buf):
        if number == 2:  # TensorShapeProto.dim
            if wire != 2:
                raise ValueError(f"field shape.dim is {_WIRE_NAMES.get(wire, wire)}, expected bytes")
            dim = _typed(_fields(value), {1: "dim.size"}, {1: 0})  # type: ignore[arg-type]
            dims.append(_signed64(dim.get(1, 0)))  # type: ignore[arg-type]
        elif number == 3 and value:  # unknown_rank
            raise ValueError("tensor of unknown rank")
    return tuple(dims)


# BundleEntryProto: field number -> (name, wire type).
_ENTRY_FIELDS = {1: ("dtype", 0), 2: ("shape", 2), 3: ("shard_id", 0), 4: ("offset", 0),
                 5: ("size", 0), 6: ("crc32c", 5), 7: ("slices", 2)}


def _parse_entry(name: str, buf: bytes) -> TensorEntry:
    got = _typed(_fields(buf), {n: f[0] for n, f in _ENTRY_FIELDS.items()},
                 {n: f[1] for n, f in _ENTRY_FIELDS.items()})
    shape = _parse_shape(got[2]) if 2 in got else ()  # type: ignore[arg-type]
    return TensorEntry(name, got.get(1, 0), shape, got.get(3, 0), got.get(4, 0),  # type: ignore[arg-type]
                       got.get(5, 0), got.get(6), 7 in got)  # type: ignore[arg-type]


# --- LevelDB table ------------------------------------------------------------------------


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def _read_block(index: bytes, offset: int, size: int, path: Path) -> bytes:
    if offset + size + _BLOCK_TRAILER_SIZE > len(index) - _FOOTER_SIZE:
        raise ModelError(f"{path}: truncated or corrupt file (block at {offset} runs past the end)")
    block = index[offset:offset + size]
    kind = index[offset + size]
    (stored_crc,) = struct.unpack_from("<I", index, offset + size + 1)
    if _masked_crc(index[offset:offset + size + 1]) != stored_crc:
        raise ModelError(f"{path}: corrupt file (block checksum mismatch at offset {offset})")
    if kind != 0:
        # TensorFlow's BundleWriter always writes uncompressed tables.
        raise ModelError(f"{path}: compressed table blocks (type {kind}) are not supported")
    return block


def _block_entries(block: bytes, path: Path) -> Iterable[tuple[bytes, bytes]]:
    """Decode a block's prefix-compressed (key, value) entries in order."""
    if len(block) < 4:
        raise ModelError(f"{path}: corrupt file (block too short)")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    limit = len(block) - 4 - 4 * num_restarts
    if limit < 0:
        raise ModelError(f"{path}: corrupt file (bad restart count)")
    pos = 0
    key = b""
    try:
        while pos < limit:
            shared, pos = _varint(block, pos)
            unshared, pos = _varint(block, pos)
            value_len, pos = _varint(block, pos)
            if shared > len(key) or pos + unshared + value_len > limit:
                raise ValueError("entry overruns block")
            key = key[:shared] + block[pos:pos + unshared]
            pos += unshared
            yield key, block[pos:pos + value_len]
            pos += value_len
    except ValueError as exc:
        raise ModelError(f"{path}: corrupt file ({exc})") from None


def open_regular(path: Path, missing: str) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (or a link to one). A FIFO or a
    device is refused without a read (reading a FIFO blocks forever); ``missing`` is the
    message when the file does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ModelError(missing) from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelError(f"{path} is not a regular file (a folder, FIFO or device)")
    return os.fdopen(fd, "rb")


def _read_table(path: Path) -> list[tuple[bytes, bytes]]:
    """Every (key, value) of a LevelDB-format table file, in key order. The footer is read
    first and the file's size is bounded (``MAX_INDEX_BYTES``) before the rest is read."""
    with open_regular(path, f"missing checkpoint index {path}") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < _FOOTER_SIZE:
            raise ModelError(f"{path}: truncated file ({size} bytes, not a checkpoint index)")
        fh.seek(size - _FOOTER_SIZE)
        footer = fh.read(_FOOTER_SIZE)
        (magic,) = struct.unpack_from("<Q", footer.ljust(_FOOTER_SIZE, b"\0"), 40)
        if magic != _TABLE_MAGIC:
            raise ModelError(f"{path}: not a TensorFlow checkpoint index (bad table magic; "
                             "truncated?)")
        if size > MAX_INDEX_BYTES:
            raise ModelError(f"{path}: {size:,} bytes, far more than a checkpoint index (the "
                             f"DCPv2 ones have ~8 KB; the limit is {MAX_INDEX_BYTES:,})")
        fh.seek(0)
        index = fh.read(MAX_INDEX_BYTES + 1)
    if len(index) != size:
        raise ModelError(f"{path}: changed while being read")
    try:
        _meta_off, pos = _varint(footer, 0)
        _meta_size, pos = _varint(footer, pos)
        index_off, pos = _varint(footer, pos)
        index_size, pos = _varint(footer, pos)
    except ValueError:
        raise ModelError(f"{path}: corrupt file (bad footer)") from None
    entries: list[tuple[bytes, bytes]] = []
    index_block = _read_block(index, index_off, index_size, path)
    for _, handle in _block_entries(index_block, path):
        try:
            off, p = _varint(handle, 0)
            size, _ = _varint(handle, p)
        except ValueError:
            raise ModelError(f"{path}: corrupt file (bad block handle)") from None
        entries.extend(_block_entries(_read_block(index, off, size, path), path))
    return entries


# --- checkpoint location ------------------------------------------------------------------


def _from_checkpoint_file(folder: Path) -> Path | None:
    """The prefix named by a folder's ``checkpoint`` state file, if it exists on disk.

    The file often holds an absolute path of the machine that trained the model (or of where
    the folder was before it was moved), so the base name inside ``folder`` comes first.
    """
    state = folder / "checkpoint"
    if not state.is_file():
        return None
    with open_regular(state, f"missing {state}") as fh:
        text = fh.read(_MAX_STATE_BYTES).decode("utf-8", "replace")
    match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', text, re.MULTILINE)
    if not match:
        return None
    named = _unescape(match.group(1), state)
    base = re.split(r"[\\/]", named)[-1]
    inside = folder.resolve()
    for candidate in (folder / base, folder / named):
        index = Path(f"{candidate}.index")
        # Only paths inside the folder: a state file (in a downloaded zip, say) must not
        # make the converter read files elsewhere on the machine.
        if index.is_file() and index.resolve().is_relative_to(inside):
            return candidate
    return None


_C_ESCAPES = {"n": 10, "t": 9, "r": 13, "\\": 92, '"': 34, "'": 39, "a": 7, "b": 8, "f": 12,
              "v": 11, "?": 63}
_ESCAPE = re.compile(r"\\([xX][0-9a-fA-F]{1,2}|[0-7]{1,3}|.?)", re.DOTALL)


def _unescape(text: str, state: Path) -> str:
    """A text-format protobuf string with its C escapes (``\\\\``, ``\\"``, ``\\n``, octal and
    ``\\xHH`` bytes, as TensorFlow writes them) undone; a bad escape is a one-line error."""
    out = bytearray()
    pos = 0
    for match in _ESCAPE.finditer(text):
        out += text[pos:match.start()].encode("utf-8", "surrogateescape")
        body = match.group(1)
        if body in _C_ESCAPES:
            out.append(_C_ESCAPES[body])
        elif body[:1] in ("x", "X") and len(body) > 1:
            out.append(int(body[1:], 16))
        elif body[:1] in tuple("01234567"):
            out.append(int(body, 8) & 0xFF)
        else:
            if not body:
                raise ModelError(f"{state}: model_checkpoint_path ends in a lone backslash")
            raise ModelError(f"{state}: bad escape \\{body} in model_checkpoint_path")
        pos = match.end()
    out += text[pos:].encode("utf-8", "surrogateescape")
    return out.decode("utf-8", "replace")


def resolve_prefix(path: str | os.PathLike[str]) -> Path:
    """Turn a checkpoint folder, prefix or ``.index``/``.data``/``.meta`` file into its prefix.

    A folder uses its ``checkpoint`` state file, else the single ``*.index`` in it.
    """
    path = Path(path)
    if path.is_dir():
        prefix = _from_checkpoint_file(path)
        if prefix is not None:
            return prefix
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return indexes[0].with_suffix("")
        if not indexes:
            raise ModelError(f"no checkpoint in {path} (no .index file)")
        names = ", ".join(p.name for p in indexes)
        raise ModelError(f"several checkpoints in {path} ({names}); name one by its prefix")
    name = path.name
    for suffix in (".index", ".meta"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    match = re.match(r"(.*)\.data-\d{5}-of-\d{5}$", name)
    if match:
        return path.with_name(match.group(1))
    if Path(f"{path}.index").exists():  # not is_file(): a FIFO here gets its own error
        return path
    if path.parent.is_dir() and any(path.parent.glob(f"{glob.escape(path.name)}.*")):
        raise ModelError(f"missing checkpoint index {path}.index")
    if path.exists() or path.is_symlink():
        what = "a file" if path.is_file() else "not a regular file (a FIFO, device or socket)"
        raise ModelError(f"{path} is {what}, not a checkpoint: give the release zip or folder, a "
                         "checkpoint folder, or a checkpoint's .index file or prefix")
    raise ModelError(f"no such file or folder: {path}")


def checkpoint_step(prefix: Path) -> int | None:
    """The training step in a prefix name like ``Train_775000`` or ``model.ckpt-1000``."""
    match = _STEP_RE.search(prefix.name)
    return int(match.group(1)) if match else None


# --- reading --------------------------------------------------------------------------------


def _read_entries(prefix: Path) -> tuple[int, dict[str, TensorEntry]]:
    """(number of data shards, tensor entries by name) from ``PREFIX.index``."""
    index_path = Path(f"{prefix}.index")
    num_shards = 1
    entries: dict[str, TensorEntry] = {}
    for key, value in _read_table(index_path):
        try:
            if key == b"":
                header = _typed(_fields(value), {1: "num_shards", 2: "endianness"}, {1: 0, 2: 0})
                num_shards = header.get(1, 1)  # type: ignore[assignment]
                if header.get(2) == 1:
                    raise ModelError(f"{index_path}: big-endian checkpoints are not supported")
                continue
            name = key.decode("utf-8")
            entries[name] = _parse_entry(name, value)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ModelError(f"{index_path}: corrupt entry {key!r} ({exc})") from None
    return num_shards, entries


def list_variables(path: str | os.PathLike[str]) -> dict[str, tuple[np.dtype, tuple[int, ...]]]:
    """Name -> (dtype, shape) of every tensor in a checkpoint (unreadable dtypes as ``object``)."""
    _, entries = _read_entries(resolve_prefix(path))
    return {name: (e.dtype, e.shape) for name, e in entries.items()}


def read_checkpoint(path: str | os.PathLike[str], names: Iterable[str] | None = None) -> Checkpoint:
    """Read tensors from a checkpoint folder or prefix: ``names``, or every tensor of a
    numeric/bool dtype (string, resource and variant tensors are skipped unless named, and
    naming one is an error).

    Each tensor's bytes are checked against its stored masked CRC32C.
    """
    prefix = resolve_prefix(path)
    num_shards, entries = _read_entries(prefix)
    if names is None:
        wanted = [n for n, e in entries.items() if e.dtype_enum in _DTYPES]
    else:
        wanted = list(names)
        missing = [n for n in wanted if n not in entries]
        if missing:
            raise ModelError(f"{prefix}.index: no tensor named {', '.join(map(repr, missing))}")
    tensors: dict[str, np.ndarray] = {}
    # Group by shard so each data file is opened once, and read in offset order.
    by_shard: dict[int, list[TensorEntry]] = {}
    for name in wanted:
        entry = entries[name]
        if entry.sliced:
            raise ModelError(f"{prefix}.index: tensor {name!r} is partitioned (sliced); not supported")
        if entry.dtype_enum not in _DTYPES:
            raise ModelError(f"{prefix}.index: tensor {name!r} has unsupported dtype "
                             f"{entry.dtype_name}")
        if entry.shard_id >= num_shards:
            raise ModelError(f"{prefix}.index: tensor {name!r} is in shard {entry.shard_id} "
                             f"of {num_shards}")
        by_shard.setdefault(entry.shard_id, []).append(entry)
    for shard_id, shard_entries in by_shard.items():
        data_path = Path(f"{prefix}.data-{shard_id:05d}-of-{num_shards:05d}")
        handle = open_regular(data_path, f"missing checkpoint data shard {data_path}")
        try:
            file_size = os.fstat(handle.fileno()).st_size
            for entry in sorted(shard_entries, key=lambda e: e.offset):
                tensors[entry.name] = _read_tensor(handle, file_size, entry, data_path)
        finally:
            handle.close()
    return Checkpoint(prefix=prefix, step=checkpoint_step(prefix),
                      tensors={n: tensors[n] for n in wanted})


def _read_tensor(handle, file_size: int, entry: TensorEntry, data_path: Path) -> np.ndarray:
    dtype = entry.dtype
    count = math.prod(entry.shape)  # exact: a hostile shape must not overflow into a match
    if any(d < 0 for d in entry.shape) or count * dtype.itemsize != entry.size:
        raise ModelError(f"{data_path}: tensor {entry.name!r} has {entry.size} bytes, which does "
                         f"not fit shape {list(entry.shape)} of {entry.dtype_name}")
    end = entry.offset + entry.size
    if end > file_size:
        raise ModelError(f"{data_path}: truncated file (tensor {entry.name!r} needs bytes up to "
                         f"{end}, the file has {file_size})")
    handle.seek(entry.offset)
    buf = handle.read(entry.size)
    if len(buf) != entry.size:
        raise ModelError(f"{data_path}: truncated file while reading tensor {entry.name!r}")
    if entry.crc32c is not None and _masked_crc(buf) != entry.crc32c:
        raise ModelError(f"{data_path}: corrupt data (crc32c mismatch in tensor {entry.name!r})")
    # astype copies into a writable array in native byte order (a no-op swap on little-endian).
    return np.frombuffer(buf, dtype=dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))
