"""Atomic writes: temp names short enough for 255-byte targets, and temp files of killed runs
removed by the next write of the same target (but never one a live writer holds)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deepcream.fsutil import atomic_path, remove_stale_temps, temp_tag
from deepcream.imageio import write_file


@pytest.mark.parametrize("length", [200, 241, 250, 255])
def test_names_up_to_255_bytes_can_be_written(tmp_path: Path, length: int) -> None:
    name = "é" * ((length - 4) // 2) + "x" * ((length - 4) % 2) + ".png"
    assert len(name.encode()) == length
    target = tmp_path / name
    write_file(b"data", target)
    assert target.read_bytes() == b"data"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert len(f".{temp_tag(name)}~abcdefgh.part".encode()) <= 255


_WRITER = """
import sys, time
from deepcream.fsutil import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"partial")
    print(tmp, flush=True)
    time.sleep(60)
"""


def _start_writer(target: Path) -> tuple[subprocess.Popen, Path]:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], env=env,
                            stdout=subprocess.PIPE, text=True)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_file() and tmp.parent == target.parent
    return proc, tmp


@pytest.mark.parametrize("long_name", [False, True])
def test_temp_of_a_killed_run_is_removed_by_the_next_write(tmp_path: Path, long_name: bool) -> None:
    target = tmp_path / (("n" * 246 if long_name else "page") + ".png")
    proc, tmp = _start_writer(target)
    # While the writer lives, its temp file is left alone.
    assert remove_stale_temps(target) == [] and tmp.exists()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert tmp.exists()  # what a killed run leaves behind
    other = tmp_path / "other.png"
    write_file(b"x", other)
    assert tmp.exists()  # another target's write does not touch it
    write_file(b"final", target)
    assert not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, "other.png"])


def test_legacy_temp_names_are_cleaned_and_lookalikes_kept(tmp_path: Path) -> None:
    target = tmp_path / "a.png"
    legacy = tmp_path / ".a.png.k2j3h4l5.part"  # the name format of earlier versions
    legacy.write_bytes(b"old")
    keep = [tmp_path / ".a.png.notrandom-name.part", tmp_path / ".a.png.k2j3h4l5.partial",
            tmp_path / ".b.png~k2j3h4l5.part", tmp_path / "a.png.part"]
    for path in keep:
        path.write_bytes(b"keep")
    fifo = tmp_path / ".a.png~abcdefgh.part"
    os.mkfifo(fifo)
    write_file(b"new", target)
    assert not legacy.exists()
    assert all(p.exists() for p in keep) and fifo.exists()


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "t.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
