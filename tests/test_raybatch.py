"""`deepcream decensor --ray` on a real local Ray cluster (head node + a worker node on
loopback, started once for this module): outputs equal the single-process ones byte for byte,
a failing file is reported without stopping the job, and a worker killed mid-job leads to a
retried image and a complete, correct output set."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from deepcream.cli import main
from tests.test_cli_decensor import images, no_partial_files, picture, save
from tests.test_folderjob import journal

# Ray replaces 127.0.0.1 in addresses by the machine's IP (for multi-machine clusters); this
# Ray setting, read when ray is first imported, keeps the cluster and the driver on loopback.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
ray = pytest.importorskip("ray", reason="the Ray tests need the ray extra")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    started = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 2, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    started.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    started.wait_for_nodes()
    yield started
    started.shutdown()


def folder_of(root: Path, count: int, size: tuple[int, int] = (320, 240)) -> Path:
    for i in range(count):
        rgb = picture(*size, seed=i)
        rgb[150:170, 40:290] = (0, 255, 0)
        save(root / f"p{i:02d}.png", rgb)
    return root


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(["decensor", "-q", *argv])
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, err


def test_ray_outputs_equal_single_process_and_failures_are_reported(
        tmp_path, capsys, cluster, converted_models) -> None:
    src = folder_of(tmp_path / "in", 4)
    (src / "junk.png").write_bytes(b"not an image")
    common = ["--models", str(converted_models), "--engine", "onnx"]
    code, _ = cli([str(src), "-o", str(tmp_path / "single"), *common], capsys)
    assert code == 1
    code, err = cli([str(src), "-o", str(tmp_path / "ray"), *common, "--ray", cluster.address],
                    capsys)
    assert code == 1, err
    assert "4 of 5 images done" in err and "failed 1 (1 bad input)" in err
    assert "engine onnx bar.onnx" in err
    assert images(tmp_path / "ray") == images(tmp_path / "single") == [
        f"p{i:02d}.png" for i in range(4)]
    for name in images(tmp_path / "single"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "single" / name).read_bytes()
    records = journal(tmp_path / "ray")
    assert records["junk.png"]["status"] == "failed" and records["junk.png"]["reason"] == "bad input"
    assert all(records[f"p{i:02d}.png"]["status"] == "done" for i in range(4))
    # Same skip rules as one machine: nothing left to do.
    code, err = cli([str(src), "-o", str(tmp_path / "ray"), *common, "--ray", cluster.address],
                    capsys)
    assert "skipped 4" in err


def _descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1]
                                               .split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent]
        found += children
        frontier += children
    return found


def _actor_pids() -> list[int]:
    pids = []
    for pid in _descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"DecensorActor" in cmdline:
            pids.append(pid)
    return pids


def test_worker_killed_mid_job_is_retried(tmp_path, capsys, cluster, converted_models) -> None:
    count = 10
    src = folder_of(tmp_path / "in", count, size=(640, 480))
    common = ["--models", str(converted_models), "--engine", "onnx"]
    assert cli([str(src), "-o", str(tmp_path / "single"), *common], capsys)[0] == 0
    out = tmp_path / "ray"
    result: dict[str, object] = {}

    def job() -> None:
        result["code"] = main(["decensor", "-q", str(src), "-o", str(out), *common,
                               "--ray", cluster.address])

    runner = threading.Thread(target=job)
    runner.start()
    killed = None
    deadline = time.monotonic() + 120
    while runner.is_alive() and time.monotonic() < deadline:
        pids = _actor_pids()
        if pids and out.is_dir() and images(out):  # actors busy, the first image is out
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
            break
        time.sleep(0.02)
    runner.join(timeout=300)
    _, err = capsys.readouterr()
    assert killed is not None, "no actor to kill: the job ended first"
    assert result.get("code") == 0, err
    assert f"{count} of {count} images done" in err
    assert images(out) == images(tmp_path / "single")
    for name in images(out):
        assert (out / name).read_bytes() == (tmp_path / "single" / name).read_bytes()
    assert no_partial_files(out)
    assert len(journal(out)) == count
