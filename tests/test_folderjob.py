"""Folder jobs: recursive inputs mirrored under -o, re-runs never read their own outputs,
existing outputs skipped unless --overwrite, the journal, the summary, Ctrl+C and resume,
and --dcp-folders' mode choice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deepcream.decensorer import Decensorer
from deepcream.engines import ClassicalEngine
from deepcream.folderjob import (
    JOURNAL_NAME,
    Journal,
    is_deepcream_output,
    plan_tasks,
    run_tasks,
)
from deepcream.options import DecensorOptions
from tests.test_cli_decensor import check_output, images, no_partial_files, picture, run, save

REPO = Path(__file__).resolve().parents[1]


def journal(folder: Path) -> dict[str, dict]:
    lines = (folder / JOURNAL_NAME).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    by_name = {Path(r["input"]).name: r for r in records}
    assert len(by_name) == len(records)  # compacted: one line per input
    return by_name


def test_rerun_in_place_never_reads_its_outputs(tmp_path, capsys) -> None:
    src = tmp_path / "in"
    a, b = picture(seed=1), picture(seed=2)
    save(src / "a.png", a)
    save(src / "b.png", b)
    for extra in ([], ["-o", str(src)]):  # beside the inputs, and -o equal to the input folder
        code, _, _ = run([str(src), "--engine", "classical", *extra], capsys)
        assert code == 0
        assert images(src) == ["a.decensored.png", "a.png", "b.decensored.png", "b.png"]
        first = {n: (src / n).read_bytes() for n in images(src)}
        code, out, err = run([str(src), "--engine", "classical", *extra], capsys)
        assert code == 0, err
        assert images(src) == ["a.decensored.png", "a.png", "b.decensored.png", "b.png"]
        assert {n: (src / n).read_bytes() for n in images(src)} == first
        assert "skipping 2 image(s) whose outputs exist" in err
        assert "ignoring 2 deepcream output(s)" in err
        assert "0 of 2 images done" in err and "skipped 2 (2 output exists)" in err
        check_output(src / "a.decensored.png", a)
        for name in ("a.decensored.png", "b.decensored.png", JOURNAL_NAME):
            (src / name).unlink()


def test_recursive_tree_mirrored_and_output_folder_not_read(tmp_path, capsys) -> None:
    src = tmp_path / "in"
    pics = {"a.png": picture(seed=1), "sub/b.png": picture(seed=2),
            "sub/deeper/c.bmp": picture(seed=3), ".hidden/d.png": picture(seed=4)}
    for rel, rgb in pics.items():
        save(src / rel, rgb)
    out = src / "out"  # inside the input folder
    save(out / "stray.png", picture(seed=5))  # not deepcream's, but in the output folder
    code, _, err = run([str(src), "-o", str(out), "--engine", "classical"], capsys)
    assert code == 0, err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a.png", "stray.png", "sub/b.png", "sub/deeper/c.png"]
    check_output(out / "sub" / "deeper" / "c.png", pics["sub/deeper/c.bmp"])
    assert is_deepcream_output(out / "sub" / "b.png") and not is_deepcream_output(src / "a.png")
    assert "3 of 3 images done" in err
    # Overwrite redoes all three, still never reading the output folder.
    code, _, err = run([str(src), "-o", str(out), "--engine", "classical", "--overwrite"], capsys)
    assert code == 0 and "3 of 3 images done" in err
    assert not (out / "out").exists()


def test_existing_outputs_skipped_unless_overwrite(tmp_path, capsys) -> None:
    rgb = picture()
    src = save(tmp_path / "v.png", rgb)
    out = tmp_path / "out"
    argv = [str(src), "-o", str(out), "--variations", "2", "--engine", "classical"]
    assert run(argv, capsys)[0] == 0
    (out / "v 0.png").write_bytes(b"mine, not deepcream's")
    (out / "v 1.png").unlink()
    # Only the missing variation is written; the existing file is left alone.
    code, _, err = run(argv, capsys)
    assert code == 0, err
    assert (out / "v 0.png").read_bytes() == b"mine, not deepcream's"
    check_output(out / "v 1.png", rgb)
    code, _, err = run(argv, capsys)
    assert code == 0 and "skipped 1" in err
    assert (out / "v 0.png").read_bytes() == b"mine, not deepcream's"
    code, _, err = run([*argv, "--overwrite"], capsys)
    assert code == 0 and "1 of 1 images done" in err
    check_output(out / "v 0.png", rgb)


def test_journal_records_done_and_failed_with_reasons(tmp_path, capsys) -> None:
    src = tmp_path / "in"
    save(src / "good.png", picture())
    # no painted strokes (toned down: the raw gradient's corner reaches the mask color
    # itself, which the default mask finder takes for paint; see docs/mask-help.md)
    save(src / "plain.png", picture(seed=1, bars=False) // 2 + 64)
    (src / "junk.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    code, _, err = run([str(src), "-o", str(out), "--engine", "classical"], capsys)
    assert code == 1
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("deepcream: 1 of 3 images done, 2 regions filled")
    assert "1 with no regions found (no output written)" in summary
    assert "failed 1 (1 bad input)" in summary
    records = journal(out)
    assert records["good.png"]["status"] == "done"
    assert records["good.png"]["outputs"] == [str((out / "good.png").resolve())]
    assert records["good.png"]["regions"] == 2
    assert records["good.png"]["engine"].startswith("classical")
    assert records["junk.png"]["status"] == "failed"
    assert records["junk.png"]["reason"] == "bad input"
    assert records["junk.png"]["message"].startswith(f"{src / 'junk.png'}: not a")
    assert records["plain.png"]["reason"] == "nothing to decensor"
    # The bad file is fixed: the re-run retries the failures only, the journal says so.
    save(src / "junk.png", picture(seed=7))
    code, _, err = run([str(src), "-o", str(out), "--engine", "classical"], capsys)
    assert code == 1 and "skipped 1" in err
    records = journal(out)
    assert records["junk.png"]["status"] == "done"
    assert records["good.png"]["status"] == "done" and records["plain.png"]["status"] == "failed"


def test_stop_finishes_images_in_flight_and_resume_completes(tmp_path) -> None:
    src = tmp_path / "in"
    pics = [picture(seed=s) for s in range(6)]
    for i, rgb in enumerate(pics):
        save(src / f"p{i}.png", rgb)
    out = tmp_path / "out"
    sources = [(p, src) for p in sorted(src.iterdir())]
    plan = plan_tasks(sources, out_dir=out)
    out.mkdir()
    stop = threading.Event()
    seen = []
    log = Journal(out)

    def finished(outcome) -> None:
        seen.append(outcome)
        log.record(outcome, "classical")
        stop.set()  # as Ctrl+C during the first image

    decensorer = Decensorer(engine=ClassicalEngine("bar"))
    count = run_tasks(decensorer, plan.tasks, DecensorOptions(), on_outcome=finished, stop=stop)
    log.close()
    # The image being filled when the stop came is finished and written; the prefetched one
    # is dropped; nothing is partial.
    assert count == len(seen) and 1 <= count < len(pics)
    assert images(out) == [f"p{i}.png" for i in range(count)]
    assert no_partial_files(out)
    assert list(journal(out)) == [f"p{i}.png" for i in range(count)]
    plan = plan_tasks(sources, out_dir=out)
    assert [t.source.name for t in plan.skipped] == [f"p{i}.png" for i in range(count)]
    done = []
    run_tasks(decensorer, plan.tasks, DecensorOptions(), on_outcome=done.append)
    assert all(o.status == "done" for o in done)
    for i, rgb in enumerate(pics):
        check_output(out / f"p{i}.png", rgb)


def test_ctrl_c_stops_cleanly_and_rerun_resumes(tmp_path) -> None:
    """A real SIGINT to the CLI: exit 130, complete outputs only, journal matches them."""
    src = tmp_path / "in"
    n = 24
    for i in range(n):  # ~30 ms of work each: the signal comes long before the end
        save(src / f"p{i:02d}.png", picture(seed=i))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "deepcream", "decensor", str(src), "-o", str(out), "-q",
           "--engine", "classical"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while not (out / "p00.png").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    written = images(out)
    assert proc.returncode == 130, err
    assert "stopping after the current image" in err and "interrupted" in err
    assert 1 <= len(written) < n
    assert no_partial_files(out)
    for name in written:
        assert is_deepcream_output(out / name)
        Image.open(out / name).load()  # complete
    assert sorted(journal(out)) == written
    # The re-run does the rest only.
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"{n - len(written)} of {n} images done" in proc.stderr
    assert f"skipped {len(written)}" in proc.stderr
    assert len(images(out)) == n and len(journal(out)) == n


def test_dcp_folders_mode_from_originals(tmp_path, capsys) -> None:
    original = picture(bars=False, seed=9)
    colored = original.copy()
    colored[10:50, 10:60] = (0, 255, 0)
    root = tmp_path / "dcp"
    save(root / "decensor_input" / "q.png", colored)
    save(root / "decensor_input_original" / "q.jpeg", original, quality=100)
    code, _, err = run(["--dcp-folders", str(root), "--engine", "classical"], capsys)
    assert code == 0, err
    assert "mosaic mode: " in err and "originals for 1 of 1 inputs" in err
    out = np.asarray(Image.open(root / "decensor_output" / "q 0.png"))
    jpeg = np.asarray(Image.open(root / "decensor_input_original" / "q.jpeg"))
    holes = np.all(colored == (0, 255, 0), axis=2)
    assert np.array_equal(out[~holes], jpeg[~holes])  # the original's pixels: mosaic mode
    root2 = tmp_path / "dcp2"
    save(root2 / "decensor_input" / "r.png", colored)
    code, _, err = run(["--dcp-folders", str(root2), "--engine", "classical"], capsys)
    assert code == 0 and "bar mode: no originals matching the inputs" in err


def test_named_deepcream_output_is_not_an_input(tmp_path, capsys) -> None:
    rgb = picture()
    src = save(tmp_path / "a.png", rgb)
    assert run([str(src), "--engine", "classical"], capsys)[0] == 0
    done = tmp_path / "a.decensored.png"
    code, _, err = run([str(done), "--engine", "classical"], capsys)
    assert code == 2 and "ignoring 1 deepcream output" in err and "nothing to decensor" in err
    assert not (tmp_path / "a.decensored.decensored.png").exists()
