"""Automatic mosaic (pixelation) detection, with no trained network.

A mosaic is a grid of constant-color p x p blocks: its horizontal gradient is zero except on
the columns x = phase (mod p), and likewise vertically. Flat areas of an illustration have no
steps at all and natural texture has gradients everywhere, so "steps exactly on a periodic
grid, nothing in between" identifies a mosaic. The stages (docs/mask-help.md has the details
and the evaluation):

- ``period``: grid-like steps, and per tile the period and phase they fold onto
  (candidate grids);
- ``cells``: per candidate grid, which cells are flat blocks with steps on the grid lines;
- ``regions``: cleaning, completion along the grid over blocks that look like their flat
  surroundings, lossless cuts and joins;
- ``border``: partial blocks where the pixelated area ends between grid lines;
- ``fractional``: grids with a non-integer period (mosaics rescaled after pixelation),
  found by the blends their edges leave in the pixels they cut, tested as integer grids on
  the pixels wholly inside their cells;
- ``erased``: a region runs on over the flat rest of its patch where the blocks averaged a
  uniform texture (hatching, screentone) to one color, which no grid shows;
- ``detect``: the grids' regions together: a region that a divisor of another found grid
  holds is cut to that grid's regions (8 px blocks are also 4 px blocks), and the holes a
  region encloses are filled (blocks equal to the fill under them).

Every threshold is a field of ``MosaicParams`` (``params.py``).
"""

from deepcream.mosaic.detect import MosaicRegion, detect_mosaic, find_mosaic_regions
from deepcream.mosaic.params import DEFAULT_PARAMS, MosaicParams

__all__ = ["DEFAULT_PARAMS", "MosaicParams", "MosaicRegion", "detect_mosaic", "find_mosaic_regions"]
