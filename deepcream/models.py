"""Where converted models live and what is installed there.

The folder is ``--models`` if given, else ``$DEEPCREAM_MODELS``, else
``~/.cache/deepcream/models``; it holds ``bar.onnx``, ``mosaic.onnx`` and ``manifest.json``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from deepcream.options import MODES

MANIFEST = "manifest.json"
ENV_VAR = "DEEPCREAM_MODELS"
DEFAULT_DIR = Path("~/.cache/deepcream/models")

#: What to tell a user who has no model (shown by `deepcream models` and model-less commands).
# One sentence on why the models are worth installing (`deepcream models`).
MODELS_VS_CLASSICAL = (
    "The DCPv2 models are neural networks trained on illustrations: they redraw lines, "
    "textures and mosaicked detail far better than the classical engine (outline-guided "
    "and diffusion fills, mosaic block-mean reconstruction) that deepcream uses without them.")
# Said once per run when the classical engine made the outputs (CLI), and sent to the page.
CLASSICAL_HINT = ("made with the classical engine: `deepcream fetch-model` installs the DCPv2 "
                  "models, which fill much better")

HOW_TO_INSTALL = """\
No DCPv2 model is installed. To install one:
  deepcream fetch-model                 # download the public release zip (Google Drive) and convert
or download "09-11-2019 DCPv2 model" yourself (Google Drive file id
1IMwzqZUuRnTv5jcuKdvZx-RZweknww5x), unzip it and run:
  deepcream convert "09-11-2019 DCPv2 model"
Optionally check it against TensorFlow: pip install 'deepcream[tf]', then add --verify."""


def models_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The models folder: ``override`` > ``$DEEPCREAM_MODELS`` > ``~/.cache/deepcream/models``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return DEFAULT_DIR.expanduser()


def installed_models(directory: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """Mode -> model file for every ``<mode>.onnx`` present in the models folder."""
    folder = models_dir(directory)
    return {m: folder / f"{m}.onnx" for m in MODES if (folder / f"{m}.onnx").is_file()}


def read_manifest(directory: str | os.PathLike[str]) -> dict:
    """The folder's ``manifest.json`` (``{"converter_version", "models": {mode: {...}}}``),
    or one with no models if it is missing or unreadable."""
    path = Path(directory) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"models": {}}
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        return {"models": {}}
    return data


@dataclass(frozen=True)
class ModelInfo:
    """One installed model as `deepcream models` shows it."""

    mode: str
    path: Path
    size: int
    sha256_ok: bool | None  # None: no manifest entry to check against
    source_step: int | None
    attention: str | None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_models(directory: str | os.PathLike[str] | None = None) -> list[ModelInfo]:
    """Installed models with their size and whether they match the manifest's sha256."""
    folder = models_dir(directory)
    manifest = read_manifest(folder)["models"]
    infos = []
    for mode, path in installed_models(folder).items():
        entry = manifest.get(mode) or {}
        expected = entry.get("sha256")
        infos.append(ModelInfo(
            mode=mode, path=path, size=path.stat().st_size,
            sha256_ok=None if not expected else _sha256(path) == expected,
            source_step=entry.get("source_step"), attention=entry.get("attention"),
        ))
    return infos
