"""--backend: which execution provider each name needs, what auto prefers, and the errors
that name the package to install (no GPU here: the choice is tested on provider lists, and
on this machine's real onnxruntime, which has none of the GPU providers)."""

from __future__ import annotations

import pytest

from deepcream.cli import main
from deepcream.errors import ModelError
from deepcream.session import GPU_PROVIDERS, choose_backend, ort_providers, resolve_backend
from tests.test_cli_decensor import picture, save

CPU = ["CPUExecutionProvider"]
CUDA = ["CUDAExecutionProvider", "CPUExecutionProvider"]
DML = ["DmlExecutionProvider", "CPUExecutionProvider"]
COREML = ["CoreMLExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(("providers", "openvino", "precision", "expected"), [
    (CPU, False, "fp32", "onnxruntime"),
    (CPU, True, "fp32", "onnxruntime"),  # exact fp32: onnxruntime on the CPU, as measured
    (CUDA, True, "fp32", "cuda"),  # a GPU provider wins
    (DML, False, "fp32", "directml"),
    (COREML, False, "fp32", "coreml"),
    (["CUDAExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider"], False, "fp32",
     "cuda"),
    (CUDA, True, "bf16", "openvino"),  # reduced precision stays on the CPU backends
    (CUDA, False, "int8", "onnxruntime"),
    ([], True, "fp32", "openvino"),  # no onnxruntime at all
])
def test_auto_prefers_a_gpu_provider(providers, openvino, precision, expected) -> None:
    assert choose_backend("auto", precision, providers=providers,
                          openvino=openvino) == expected


@pytest.mark.parametrize(("backend", "package"), [
    ("cuda", "onnxruntime-gpu"), ("directml", "onnxruntime-directml"),
    ("coreml", "onnxruntime on macOS")])
def test_missing_gpu_provider_names_the_package(backend, package) -> None:
    with pytest.raises(ModelError, match=f"backend {backend} needs .*install {package}"):
        choose_backend(backend, "fp32", providers=CPU, openvino=True)
    provider = GPU_PROVIDERS[backend][0]
    assert choose_backend(backend, "fp32", providers=[provider, *CPU], openvino=False) == backend
    with pytest.raises(ModelError, match="runs fp32"):
        choose_backend(backend, "bf16", providers=[provider, *CPU], openvino=True)


def test_named_cpu_backends_need_their_packages() -> None:
    with pytest.raises(ModelError, match=r"deepcream\[openvino\]"):
        choose_backend("openvino", "fp32", providers=CPU, openvino=False)
    with pytest.raises(ModelError, match="pip install onnxruntime"):
        choose_backend("onnxruntime", "fp32", providers=[], openvino=True)
    with pytest.raises(ModelError, match="unknown backend"):
        choose_backend("vulkan", "fp32", providers=CPU, openvino=True)


@pytest.mark.skipif("CUDAExecutionProvider" in ort_providers(), reason="this onnxruntime has CUDA")
def test_this_machine_and_the_cli(tmp_path, capsys, converted_models) -> None:
    assert resolve_backend("auto") == "onnxruntime"
    with pytest.raises(ModelError, match="onnxruntime-gpu"):
        resolve_backend("cuda")
    src = save(tmp_path / "a.png", picture())
    code = main(["decensor", "-q", str(src), "-o", str(tmp_path / "out"), "--engine", "onnx",
                 "--models", str(converted_models), "--backend", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("deepcream: error: backend cuda needs")
    assert "install onnxruntime-gpu" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*.png"))
