"""deepcream: fast, small, exact DeepCreamPy v2 inpainting on ONNX Runtime."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "decensor"]


def __getattr__(name: str):
    # Lazy so `import deepcream` (and the CLI's start-up) stays cheap.
    if name == "decensor":
        from deepcream.pipeline import decensor

        return decensor
    raise AttributeError(name)
