"""What a decensor request asks for: one frozen, validated options object and the shared
constants behind it.

The CLI, the server and the Python API each build one ``DecensorOptions`` from their own input
(argv, form fields, keyword arguments) and pass it whole; validation, mask color parsing
included, happens here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deepcream.errors import InputError

Color = tuple[int, int, int]

MODES = ("bar", "mosaic")
VARIATIONS = (1, 2, 4)
# DeepCreamPy's mask color: pure green.
DEFAULT_MASK_COLOR: Color = (0, 255, 0)
# DCPv2's input: square crops of this many pixels (also DCP's smallest box).
MODEL_SIZE = 256
# PNG text key naming the engine that filled an output (folder jobs read it back).
ENGINE_TEXT_KEY = "deepcream-engine"
# DCP's variations: none, left-right, top-bottom, both (index = variation number).
VARIATION_FLIPS = ((False, False), (True, False), (False, True), (True, True))
# Separate regions allowed per image (CLI --max-regions, server max_regions): images with
# many small regions share crops, but counting and grouping them still costs per region.
DEFAULT_MAX_REGIONS = 100_000


def parse_color(value: str | Sequence[int]) -> Color:
    """A color from any spelling ``colors.parse_color`` reads (``#00ff00``, ``0,255,0``,
    ``lime``, ...) or a sequence of three integers 0..255. Raises ``InputError``."""
    if isinstance(value, str):
        from deepcream.colors import parse_color as parse_text

        try:
            return parse_text(value)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    try:
        color = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"a color is three integers 0..255, got {value!r}") from None
    if len(color) != 3 or not all(0 <= v <= 255 for v in color):
        raise InputError(f"a color is three integers 0..255, got {value!r}")
    return color  # type: ignore[return-value]


@dataclass(frozen=True)
class DecensorOptions:
    """How to decensor an image (the inputs themselves are not options).

    ``mode``: "bar" (regions painted in ``mask_color``) or "mosaic" (pixelated regions).
    ``variations``: 1, 2 or 4 outputs from flipped inputs, as DeepCreamPy makes them.
    ``mask_color``: a triple or any text ``parse_color`` reads. ``mask_tolerance``: None
    (default) finds the painted strokes however they were saved (``masks.find_paint``); a
    number is the manual override: accept pixels within this many levels per channel (0 =
    the exact color only, as DeepCreamPy). ``antialias``: with a tolerance, grow the mask
    over anti-aliased stroke edges. ``wording``: how messages name settings (the CLI's flags,
    the server's form fields; None: ``masks.PYTHON_WORDING``, the keyword names). ``auto_mask``: mosaic mode, find the mosaic itself instead of
    reading a painted copy.
    """

    mode: str = "bar"
    variations: int = 1
    mask_color: Color = DEFAULT_MASK_COLOR
    mask_tolerance: int | None = None
    antialias: bool = False
    auto_mask: bool = False
    max_regions: int = DEFAULT_MAX_REGIONS
    """Separate regions allowed in one image; more is an ``InputError`` (images with many
    small regions fill them in shared crops, docs/decensor.md)."""
    wording: dict[str, str] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"mode must be bar or mosaic, got {self.mode!r}")
        if isinstance(self.variations, bool) or self.variations not in VARIATIONS:
            raise InputError(f"variations must be 1, 2 or 4, got {self.variations!r}")
        # frozen: normalise through object.__setattr__ (color text -> triple)
        try:
            object.__setattr__(self, "mask_color", parse_color(self.mask_color))
        except InputError as exc:
            raise InputError(f"mask color: {exc}") from None
        tolerance = self.mask_tolerance
        if tolerance is not None and (isinstance(tolerance, bool) or not isinstance(tolerance, int)
                                      or not 0 <= tolerance <= 255):
            raise InputError(f"mask tolerance must be an integer 0..255, got {tolerance!r}")
        regions = self.max_regions
        if isinstance(regions, bool) or not isinstance(regions, int) or regions < 1:
            raise InputError(f"max regions must be an integer >= 1, got {regions!r}")
        if self.auto_mask and self.mode != "mosaic":
            raise InputError("automatic mask detection (auto mask) is for mosaic mode")
