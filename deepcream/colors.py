"""The mask color as users write it: one parser for the CLI, the Python API and the server.

Accepted: ``#00ff00``, ``00ff00``, ``#0f0``, ``0,255,0`` (``R,G,B``), ``rgb(0,255,0)``,
``hsl(120,100%,50%)`` and CSS color names (``lime``). Only Pillow's tiny ``ImageColor`` is
imported, so ``deepcream --help`` stays fast.
"""

from __future__ import annotations

from PIL import ImageColor

Color = tuple[int, int, int]
_HEX = frozenset("0123456789abcdefABCDEF")


def parse_color(text: str) -> Color:
    """An RGB triple from one of the accepted spellings; ``ValueError`` (a message fit to
    show after the option or field name) otherwise."""
    value = str(text).strip()
    if not value:
        raise ValueError("empty color (e.g. #00ff00, 0,255,0 or lime)")
    if "," in value and not value.lower().startswith(("rgb", "hsl", "hsv")):
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{text!r} is not R,G,B with three integers 0..255")
        value = f"rgb({','.join(parts)})"
    elif len(value) in (3, 6) and all(c in _HEX for c in value):
        value = "#" + value
    try:
        rgb = ImageColor.getrgb(value)
    except ValueError:
        raise ValueError(f"cannot read {text!r} as a color (e.g. #00ff00, 0,255,0 or lime)") from None
    if len(rgb) == 4 and rgb[3] != 255:
        raise ValueError(f"{text!r} has transparency; the mask color must be opaque")
    color = tuple(int(v) for v in rgb[:3])
    if not all(0 <= v <= 255 for v in color):
        raise ValueError(f"{text!r}: every channel must be 0..255")
    return color  # type: ignore[return-value]


def format_color(color: Color) -> str:
    """``#00ff00`` for (0, 255, 0)."""
    return "#" + "".join(f"{int(v):02x}" for v in color)
