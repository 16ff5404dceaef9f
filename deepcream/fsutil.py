"""Atomic file output: write to a temp file beside the target, then rename over it.

A crash or an exception never leaves a partial file at the target path. A run that is killed
(SIGKILL, power loss) cannot remove its temp file, so each writer holds an advisory lock on
its temp file while it writes, and the next write of the same target removes that target's
temp files whose lock is free (their writer is gone). Callers get a real path (the converter
hands it to ONNX Runtime), which is why this is not O_TMPFILE + linkat.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so no way to tell a stale temp file from a live one
    fcntl = None  # type: ignore[assignment]

# Temp names are ".<tag>~<8 random>.part". The tag is the target's name, or for names too
# long to leave room (a name may have 255 bytes), its first bytes plus a hash of the whole,
# so the temp name never exceeds 255 bytes and still says which target it belongs to.
_NAME_ROOM = 200
_SUFFIX = ".part"
_RANDOM = re.compile(r"[a-z0-9_]{8}")


def temp_tag(name: str) -> str:
    """The part of a temp file's name that identifies its target (file name ``name``)."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _NAME_ROOM:
        return name
    digest = hashlib.blake2s(raw, digest_size=4).hexdigest()
    head = raw[:_NAME_ROOM - 9].decode("utf-8", "ignore")
    return f"{head}-{digest}"


def _stale_candidates(target: Path) -> Iterator[Path]:
    """Temp files of ``target`` in its folder: this module's ``.<tag>~XXXXXXXX.part`` and the
    ``.<name>.XXXXXXXX.part`` of earlier versions."""
    ours = f".{temp_tag(target.name)}~"
    legacy = f".{target.name}."
    try:
        entries = os.scandir(target.parent)
    except OSError:
        return
    with entries:
        for entry in entries:
            name = entry.name
            if not name.endswith(_SUFFIX):
                continue
            middle = None
            if name.startswith(ours):
                middle = name[len(ours):-len(_SUFFIX)]
            elif name.startswith(legacy):
                middle = name[len(legacy):-len(_SUFFIX)]
            if middle is not None and _RANDOM.fullmatch(middle):
                yield Path(entry.path)


def remove_stale_temps(target: str | os.PathLike[str]) -> list[Path]:
    """Remove temp files a killed writer of ``target`` left behind; returns those removed.

    A temp file whose lock can be taken has no live writer (the lock goes with the process).
    Only regular files are touched."""
    removed: list[Path] = []
    if fcntl is None:
        return removed
    for path in _stale_candidates(Path(target)):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer holds it
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
        finally:
            os.close(fd)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temp path in the target's folder; on success rename it to ``target``.

    With ``overwrite=False`` an existing target raises ``FileExistsError`` before any work.
    On any exception the temp file is removed and the target is left untouched. Stale temp
    files of the same target (from killed runs) are removed first.
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise FileExistsError(f"{target} already exists")
    remove_stale_temps(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{temp_tag(target.name)}~", suffix=_SUFFIX,
                               dir=target.parent)
    tmp_path = Path(tmp)
    try:
        # Held until the rename: tells a later run that this temp file is still being written.
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield tmp_path
        os.chmod(tmp_path, 0o644)
        if not overwrite:
            # link() fails if the target appeared meanwhile: never clobber.
            os.link(tmp_path, target)
            tmp_path.unlink()
        else:
            os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    finally:
        os.close(fd)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes, *, overwrite: bool = True) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
