"""Shared test fixtures.

The DCPv2-layout checkpoints are generated once by
``benchmarks/deepcream_bench/baselines/fixture.py`` (TensorFlow 1-style graph code, run as a
script in a subprocess; ``deepcream bench`` uses the same code) and cached under the pytest
cache, keyed by the generator's source hash, so later sessions reuse them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

GENERATOR = (Path(__file__).parent.parent / "benchmarks" / "deepcream_bench" / "baselines"
             / "fixture.py")


def pytest_configure(config: pytest.Config) -> None:
    # onnxruntime's optimized graphs of the test models (session.graph_cache_dir) go to a
    # folder of this run, not the user's cache; subprocesses inherit it.
    if "DEEPCREAM_GRAPH_CACHE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="deepcream-graphs-")
        os.environ["DEEPCREAM_GRAPH_CACHE"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def _have_tensorflow() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "tf_slim"))


@pytest.fixture(scope="session")
def dcpv2_release(request: pytest.FixtureRequest) -> Path:
    """A folder laid out like the unzipped model release: ``bar/`` and ``mosaic/`` checkpoints
    with random weights, each with ``reference.npz`` (inputs and the TF graph's outputs)."""
    digest = hashlib.sha256(GENERATOR.read_bytes()).hexdigest()[:16]
    cache = Path(request.config.cache.mkdir("dcpv2-fixture")) / digest
    if (cache / "done").exists():
        return cache
    if not _have_tensorflow():
        pytest.skip("the DCPv2 fixture needs the test extra: pip install -e '.[test]'")
    tmp = cache.with_name(digest + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    subprocess.run([sys.executable, str(GENERATOR), str(tmp)], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    (tmp / "done").write_text("ok\n")
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)
    return cache


@pytest.fixture(scope="session")
def converted_models(dcpv2_release: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with ``bar.onnx``, ``mosaic.onnx`` and ``manifest.json`` converted from
    the ``dcpv2_release`` fixture by ``deepcream.convert`` (takes well under a second)."""
    from deepcream.convert import convert

    out = tmp_path_factory.mktemp("converted_models")
    convert(dcpv2_release, out, force=True)
    return out
