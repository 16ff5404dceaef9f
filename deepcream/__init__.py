"""deepcream: fast, small, exact DeepCreamPy v2 inpainting on ONNX Runtime.

Public API (docs/ARCHITECTURE.md): ``decensor`` (one call), ``Decensorer`` (engines loaded
once, many images), ``DecensorOptions`` (what to do), ``SessionOptions`` (how to run a
model), ``DecensorResult``, ``detect_mosaic``, and the errors ``DeepcreamError``,
``InputError``, ``ModelError``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module; imported on first use so `import deepcream` (and the CLI's start-up) stays
# cheap.
_EXPORTS = {
    "decensor": "deepcream.decensorer",
    "Decensorer": "deepcream.decensorer",
    "DecensorOptions": "deepcream.options",
    "SessionOptions": "deepcream.session",
    "DecensorResult": "deepcream.pipeline",
    "detect_mosaic": "deepcream.mosaic",
    "DeepcreamError": "deepcream.errors",
    "InputError": "deepcream.errors",
    "ModelError": "deepcream.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'deepcream' has no attribute {name!r}")
