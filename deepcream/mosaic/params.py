"""Every threshold of the mosaic detector, in one frozen dataclass.

Luma levels are 0..255; "cells" are the p x p squares of one candidate grid (period p, phase
fx, fy). The defaults are the tuned values (docs/mask-help.md has the evaluation); a caller
may pass ``MosaicParams(...)`` or ``dataclasses.replace(DEFAULT_PARAMS, field=value)`` to
``detect_mosaic(rgb, params=...)``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MosaicParams:
    # --- block sizes and tiling --------------------------------------------------------
    #: smallest and largest block size (px) reported as a mosaic
    min_block: int = 3
    max_block: int = 48
    #: periods are estimated per ``tile`` x ``tile`` px tile, tiles every ``stride`` px
    tile: int = 128
    stride: int = 64

    # --- grid-like steps and period estimation (period.py) -------------------------------
    #: a grid-like step exceeds its neighbours across the step by this many luma levels, on
    #: three consecutive pixels along the edge (a block edge is a straight line)
    step_min: float = 2.0
    #: a tile is periodic when the chance-corrected share of its steps on one phase reaches
    #: this, in x and in y
    periodic_score: float = 0.25
    #: the best period may be a divisor of the true one: its largest multiple scoring at
    #: least this share of the best score is taken
    near_best: float = 0.65
    #: a period one off the picked one is tested too when it scores this share of it
    neighbour_score: float = 0.8
    #: on-grid step pixels a tile needs per axis (a few short lines are not a grid) ...
    min_grid_pixels: int = 40
    #: ... or this many on an axis whose own score reaches ``strong_axis_score``: a small
    #: patch of big blocks has few grid lines in a tile, all of them on one phase
    strong_grid_pixels: int = 24
    strong_axis_score: float = 0.6
    #: a tile whose best period scores ``one_axis_score`` on one axis needs only
    #: ``other_axis_score`` on the other: the other axis's steps of a small patch can be
    #: outnumbered by a texture's (hatching lines along it, a dot screen's rows)
    one_axis_score: float = 0.6
    other_axis_score: float = 0.12
    #: (a tile passing only those lower bars needs this many step pixels on each of two
    #: grid lines per axis)
    late_line_pixels: int = 3
    #: a tile folded on its *long* steps only (persisting ``long_step_length`` px along the
    #: edge: a block's side runs p px along its grid line, a screen dot's edge a few) whose
    #: best period from ``long_step_min_p`` scores ``long_step_score`` on both axes with
    #: ``long_step_pixels`` on-grid long-step pixels each also proposes a late grid, whatever
    #: its usual pick: a small patch over a dot screen, whose dots' edges outnumber the
    #: patch's steps (0: off)
    long_step_pixels: int = 16
    long_step_length: int = 8
    long_step_score: float = 0.4
    long_step_min_p: int = 8
    #: ... and whose long steps lie on two of its grid lines per axis, or on one line of an
    #: axis when the other has this many (0: two on each): a small patch's tile can hold a
    #: single block side across it
    long_step_one_line: int = 3
    #: ... picking the largest multiple of their best period that scores this share of it
    #: (``near_best`` for the usual folding): long steps are few, and a multiple that
    #: only a coincidence of two lines puts near the best is a coarser false grid (a best
    #: period under ``long_step_min_p``, a divisor of the grid's, picks with ``near_best``)
    long_step_near_best: float = 0.85
    #: a region of a long-step-only grid (``CandidateGrid.long_step``) that lies
    #: ``long_step_yield`` or more inside the regions of non-integer grids whose period is
    #: within ``long_step_frac_gap`` px of its own is left to them: a rescaled patch (9.75 px
    #: blocks) folds as the nearest integer period too, and what that grid adds to the
    #: patch found on its real period is its drift beside it, cells over the fills around
    long_step_yield: float = 0.9
    long_step_frac_gap: float = 0.5
    #: a long-step grid's regions do not count as found before the blurred-rescale search
    #: (``resampled_overlap``): a patch rescaled with a blur folds as the nearest integer
    #: multiple of its period too, whose region would shadow the real grid's
    long_step_defer: bool = True
    #: runner-up phase of a tile, tested too from ``runner_up_min_p`` (few grid lines per
    #: tile, a straight patch border can outvote one) when it has this share of the best
    #: phase's steps
    runner_up: float = 0.4
    runner_up_min_p: int = 16
    #: also test the next smaller period that scores near the best (see ``near_best``)
    divisor_option: bool = True

    #: run the searches that do not depend on the integer one (non-integer grids, blurred
    #: grids, smooth islands) in two more threads (same result either way)
    parallel: bool = True

    # --- non-integer periods (fractional.py) -------------------------------------------
    #: look for grids with a non-integer period or phase (mosaics rescaled after pixelation)
    fractional: bool = True
    #: ... on lossless input only (cells exactly constant; see ``detect_fractional``)
    frac_lossless_only: bool = True
    #: a grid at a 2 or 3 x smaller period than another (``fractional.is_divisor``) is
    #: tested when that one found no region (a beat of a mosaic over screentone combs at 3
    #: periods of it)
    frac_divisor_tested: bool = True
    #: refine a non-integer grid with the area-filter block model (``resampled.py``)
    #: around its best-combing tiles; of that and the grid the group's combs give, the one
    #: that blends more cut pixels is tried first (0: off)
    #: ... first on frac_local_lines rows and columns of a seed tile (then resampled_lines
    #: over resampled_reach px around it)
    frac_local_lines: int = 24
    #: ... for the frac_local_max best-combing grids of an image
    frac_local_max: int = 2
    #: straight steps (persisting 3 px along the edge) above this count, capped at frac_cap
    frac_min_step: float = 2.0
    frac_cap: float = 64.0
    #: real periods searched per tile
    frac_min_period: float = 3.5
    frac_max_period: float = 24.0
    #: a tile holds a comb when |sum w e^(-2 pi i x / P)| / sum w, less its chance level,
    #: reaches this on both axes, with at least frac_mass summed step per axis; the
    #: frac_peaks best periods of a tile are candidates, taken when frac_min_tiles
    #: neighbouring tiles agree
    frac_score: float = 0.15
    frac_mass: float = 400.0
    frac_peaks: int = 3
    frac_min_tiles: int = 3
    #: tiles whose periods differ by at most this share make one grid; its period is then
    #: searched over that range in relative steps of frac_fine
    frac_agree: float = 0.05
    frac_fine: float = 0.0005
    #: per-axis periods further apart than this share are replaced by one for both axes
    frac_axes_agree: float = 0.005
    #: grids whose periods are within frac_integer_period and phases within frac_integer of
    #: an integer are left to the integer search
    frac_integer_period: float = 0.05
    frac_integer: float = 0.1
    #: a cell's pixels are those wholly inside its edges, give or take this
    frac_edge_tol: float = 0.15
    #: a non-integer grid must blend the pixels its edges cut (cut frac_blend_cut ..
    #: 1 - frac_blend_cut, steps of frac_blend_step or more): "cut pixel = its neighbours
    #: mixed in the cut's proportions", with flat pixels beside them. It is tested when a
    #: stride x stride block of its tiles has frac_blend_min such pixels within
    #: frac_blend_max of their step, frac_blend_share of its cut pixels; each region keeps
    #: when its residuals sum to at most frac_region_blend of its steps and it has at least
    #: frac_region_density such pixels per `period` px of its area; frac_exact_density when
    #: its residuals sum to at most frac_exact_blend of its steps (blends that exact come
    #: from a rescaled grid, even over flat art whose cells seldom step; areas that are not
    #: such a grid were measured at 0.48 or more).
    frac_blend_cut: float = 0.2
    frac_blend_step: float = 8.0
    frac_blend_max: float = 0.15
    frac_blend_min: int = 20
    frac_blend_share: float = 0.3
    frac_region_blend: float = 0.3
    frac_region_density: float = 0.15
    frac_exact_blend: float = 0.1
    frac_exact_density: float = 0.05
    #: the densities count per edge that cuts a pixel: a period of k + 1/2 px puts every
    #: other edge on a pixel border, where nothing blends (at most 1 / frac_cut_floor x)
    frac_per_cut: bool = True
    frac_cut_floor: float = 0.25
    #: a region that fails these tests is judged again without the pixels around which
    #: (frac_rescue_cells periods square) its cut pixels misfit their blends (0: not)
    frac_rescue_cells: float = 2.0
    #: ... and then needs frac_rescue_min cut pixels with a step, the usual density, and
    #: frac_rescue_axis_share of those cut pixels on each axis's grid lines
    frac_rescue_min: int = 100
    frac_rescue_axis_share: float = 0.25

    # --- non-integer periods blurred by a resampling filter (resampled.py) -------------------
    #: look for grids whose block steps a bilinear, bicubic or Lanczos rescale blurred
    resampled: bool = True
    #: a line pixel is explained by the block model when its residual is at most
    #: resampled_tol levels (1.5 x that on the seed tile, 4 x in the first refining pass)
    resampled_tol: float = 1.0
    #: at most this many candidate grids per image (best comb first); periods within
    #: resampled_integer of an integer on both axes are the integer search's
    resampled_max_grids: int = 8
    resampled_integer: float = 0.02
    #: ... and periods within resampled_jpeg_period of 8 px on both axes are JPEG's own 8 x 8
    #: blocks (the model is for lossless input)
    resampled_jpeg_period: float = 0.12
    #: the seed is the first of a grid's resampled_seeds best-combing tiles on which the grid
    #: explains resampled_seed_gain more of the step pixels than itself shifted by half a
    #: period; after the coarse passes that gain must still be resampled_seed_score
    resampled_seeds: int = 3
    resampled_seed_gain: float = 0.18
    resampled_seed_score: float = 0.15
    #: lines (rows and columns) of a box the period and phase are fitted on; the last pass
    #: runs over up to resampled_reach px around the seed
    resampled_lines: int = 24
    resampled_reach: int = 320
    #: after the last pass the grid must explain this share of the step pixels on both axes
    resampled_score: float = 0.1
    #: the area filter's model explaining more by this share leaves the grid to step 7
    #: (``detect_fractional``)
    resampled_area_margin: float = 0.05
    #: cells are fitted over at most resampled_box px around the grid's core; a cell is
    #: explained when every pixel it holds has a residual of at most resampled_tol plus
    #: resampled_rel of its step to its neighbours (Pillow samples its kernel, which differs
    #: from the kernel's integral the model uses by 2-5% of a step)
    resampled_box: int = 640
    resampled_rel: float = 0.06
    #: the integer-grid image has min(resampled_q, period) px per cell; explained cells take
    #: their fitted color when they step by resampled_min_step or more, or by at most
    #: resampled_flat (a smooth gradient fits as blocks a level apart)
    resampled_q: int = 8
    resampled_min_step: float = 6.0
    resampled_flat: float = 0.25
    #: a region needs resampled_min_cells explained cells stepping by resampled_min_step or
    #: more, resampled_share of its such cells; regions that other grids found for
    #: resampled_overlap of their area are left to those
    resampled_min_cells: int = 8
    resampled_share: float = 0.7
    resampled_overlap: float = 0.3

    # --- mosaics that flattened a texture (islands.py) ------------------------------------
    #: look for smooth islands in rough surroundings whose exact color changes lie on a grid
    islands: bool = True
    #: smooth: every channel within island_smooth of the 4 neighbours
    island_smooth: int = 4
    #: islands of island_min_area px up to island_max_share of the image
    island_min_area: int = 400
    island_max_share: float = 0.25
    #: the ring island_ring px wide around an island is at least island_rough non-smooth
    island_ring: int = 6
    island_rough: float = 0.5
    #: ... first checked on the half-size map, with this lower bar
    island_rough_half: float = 0.35
    #: exact color changes inside the island: at least island_min_changes per axis, with a
    #: chance-corrected share of island_grid on one phase of one period for both axes
    island_min_changes: int = 40
    #: ... on at most this share of its neighbour pairs (blocks: one pair per block length)
    island_change_share: float = 0.4
    island_grid: float = 0.9
    #: an island whose changes score island_leak_grid or more (but under island_grid) on one
    #: grid both ways is judged again on its cells of that grid that are wholly smooth and of
    #: one luma: a patch over hatching runs on into the flat gaps between the lines, whose
    #: anti-aliased edges change off the grid (1: off)
    island_leak_grid: float = 0.5
    #: mean colors of the island and of its ring within this (blocks average the texture)
    island_mean_tol: float = 12.0
    #: ... or of the ring's pixels outside the cells of the island's grid that are of one
    #: luma (the same patch's blocks over an outline or a black fill; the exact pass only)
    island_mean_texture: bool = True
    #: an island is cut to the convex hull of its exact changes grown by this many blocks
    #: (-1: off)
    island_hull_margin: int = 1
    #: rescaled islands, a second pass: a pixel strictly between its two neighbours along an
    #: axis (an area filter's blend of two blocks) is inside a block that way too, and the
    #: exact changes may comb on a real period instead (chance-corrected comb score
    #: island_frac_grid per axis); its islands that overlap the first pass's are dropped
    island_blends: bool = True
    island_frac_grid: float = 0.8
    #: lossy islands (JPEG), a third pass: smooth where the 3 x 3 mean of the largest
    #: neighbour step is at most island_lossy_smooth; the changes are the steps that hold
    #: along island_lossy_run pixels across (their mean at least island_lossy_step), with a
    #: chance-corrected share of island_lossy_grid on one phase of one period for both axes,
    #: not JPEG's own 8 x 8 grid
    island_lossy: bool = True
    island_lossy_smooth: float = 3.0
    island_lossy_run: int = 5
    island_lossy_step: float = 1.5
    island_lossy_grid: float = 0.5
    #: ... on smooth areas opened by a disc of island_lossy_open px (0: not opened)
    island_lossy_open: int = 10
    #: ... with blocks of island_lossy_min_p px or more (JPEG's chroma, subsampled 2 x and
    #: rebuilt, and fine photo texture fold on 3-4 px steps after JPEG)
    island_lossy_min_p: int = 5
    #: exact passes, on a grid aligned with JPEG's own 8 x 8 blocks: an island is left out
    #: when over 1 - island_jpeg_grid_exact of its whole cells are one luma but not one color
    #: (0: not asked). JPEG at q80 and below decodes a smooth gradient's blocks flat in luma,
    #: stepping on its own grid lines, with the chroma rebuilt smoothly; between the lines of
    #: a hatching they made smooth "islands" of 8 px blocks (up to 26% of a clean hatched
    #: gradient at q70). A lossless mosaic's blocks are one color, a rescaled one's blend in
    #: luma at their sides. Opt-in (e.g. 0.5): a JPEG-saved mosaic's blocks on that grid
    #: are JPEG's blocks too, and where only an island found it, it is lost (art-set s301
    #: ``illust2`` q80 0.774 -> 0.682, s101 ``illust2`` q80 0.829 -> 0.819).
    island_jpeg_grid_exact: float = 0.0
    #: exact passes, on a grid aligned with JPEG's own 8 x 8 blocks: an island is left out
    #: when it is a strip (its minimum-area rectangle at least island_jpeg_grid_strip times
    #: as long as wide) whose whole cells, 12 or more, have mean lumas within
    #: island_jpeg_grid_plane levels (rms) of a plane: a smooth gradient that JPEG flattened
    #: into its own blocks in the gap between two lines of a hatching (0 for either: not
    #: asked). Not in images judged lossless (``looks_lossless``). On the clean hatched
    #: gradients at q70-q80 those islands had aspect 5.6-48 and residual 0.25-0.62 over
    #: 31-418 cells; the islands of mosaics on that grid, whose blocks average different
    #: content, had aspect 3.9 at most, or residual 0.8 and up.
    island_jpeg_grid_strip: float = 4.0
    island_jpeg_grid_plane: float = 1.0
    #: ... also asked of islands (every pass) on a grid of JPEG's period whose phases lie
    #: within island_jpeg_grid_near px of its lines (0: on them only), with the cells laid
    #: on JPEG's lines: at q70 a flattened gradient between lines of a 45 degree hatching
    #: stepped a pixel off them (up to 5.9% of a clean hatched page, in strips of aspect
    #: 27-44 whose cells lie on a plane)
    island_jpeg_grid_near: int = 1
    #: images not judged lossless (``looks_lossless``), grids along JPEG's own 8 x 8 lines: a
    #: region is left out when its cell means follow a smooth shading
    #: (``Grid.drop_smooth_regions``): of its cells with all eight neighbours in it,
    #: jpeg_smooth_min_cells or more (fewer: not asked; 0: never), at most a share
    #: jpeg_smooth_rough lie over jpeg_smooth_step levels from their neighbours' mean. JPEG at
    #: q70 decodes the soft shading of painted skin as flat blocks stepping on its lines: up
    #: to 1.3% of a clean drawn sheet was taken, in regions of 77-120 such cells and none
    #: rough; the 215 mosaic regions on those grids with 15 such cells or more (art groups
    #: 0, 100, 300, 500, 800 and 1000, drawn sheets, cartoons; JPEG q95-q70) had 8.5% of
    #: them rough or more.
    jpeg_smooth_min_cells: int = 20
    jpeg_smooth_step: float = 2.0
    jpeg_smooth_rough: float = 0.02
    #: ... or when jpeg_smooth_plane_cells of its cells or more (0: not asked) lie within
    #: jpeg_smooth_plane levels (rms) of their least-squares plane: small regions of such
    #: shading (rescaled then saved at q70, or q60) have few cells with eight neighbours in
    #: them. Over final regions of 8 whole cells or more on those grids: JPEG's shadings
    #: 0.35-1.48 at q70-q95 (up to 2.86 at q60, curved highlights), the mosaics 5.0 and up.
    jpeg_smooth_plane_cells: int = 8
    jpeg_smooth_plane: float = 1.5

    # --- pixel-repetition upscales (period.repetition) ----------------------------------
    #: factors k tried for "the image was enlarged k x by repeating pixels"
    rep_factors: tuple[int, ...] = (2, 3, 4)
    #: luma differences up to this are JPEG noise
    rep_noise: float = 1.0
    #: the off phases carry at most this share of the on phase's steps (image and tiles)
    rep_ratio: float = 0.55
    #: tile size for the per-tile repetition test
    rep_tile: int = 64
    #: a tile is textured when its on-phase mean step reaches this
    rep_texture: float = 0.5
    #: share of the textured tiles that must show repetition
    rep_tiles: float = 0.75
    #: share of a tile's on-phase columns (rows) carrying ``rep_column`` of their mean step
    rep_spread: float = 0.5
    rep_column: float = 0.25

    # --- cell tests (cells.py) ----------------------------------------------------------
    #: a cell side is a step when its mean gradient is >= side_ratio x the cell's interior
    #: gradient + side_min
    side_ratio: float = 2.0
    side_min: float = 1.5
    #: grids on JPEG's 8 x 8 blocks (period a multiple of 8, phase 0): a side's step must
    #: exceed side_ratio x the interior gradient of both cells it separates (not just this
    #: one's) + side_min
    jpeg_pair_sides: bool = True
    #: on JPEG's own 8 x 8 lines of a lossy image: a weak cell needs this many stepping sides
    #: toward cells that are as flat as weak cells on the unfiltered luma (0: off)
    jpeg_weak_flat_sides: int = 1
    #: on JPEG's own 8 x 8 lines of a lossy image whose grid reads as lossless: a strong cell
    #: whose luma is exactly flat counts as a constant block (JPEG keeps the luma of its own
    #: flat blocks, not their chroma)
    jpeg_luma_strong: bool = True
    #: a side only counts when the two cells' mean lumas differ by at least this share of the
    #: side's step (blocks: the whole step; screentone or hatching with the grid's period:
    #: alike cells, ~0); 0 turns the check off
    mean_step_ratio: float = 0.25
    #: lossless input: a region's strong cells must take at least this many distinct mean
    #: lumas (half their count when fewer; 1-bit screentone aligned with a grid fills cells
    #: with ink or paper only, blocks take many levels); 0: off. (After JPEG, bins of a few
    #: levels also dropped low-contrast mosaics, e.g. over brick.)
    min_levels: int = 4
    #: a region whose cell means differ by repeat_min_step or more between neighbours on
    #: average, but by less than repeat_ratio of that 2 or 3 cells apart, is a periodic
    #: texture (checks, 45-degree dot screens), judged over at least repeat_min_pairs pairs
    #: (at 24, the 17-21-cell spots where a JPEG-saved 1-bit 4 px checker screen lines up
    #: with a 4 px grid were never judged: 0.224% of a clean page taken at q95-q80; at 16
    #: none, and no mosaic of the art groups, drawn sheets or cartoons moved)
    repeat_min_step: float = 6.0
    repeat_ratio: float = 0.25
    repeat_min_pairs: int = 16
    #: ... less than repeat_ratio_small of it for blocks up to small_block px: blocks about
    #: half a dot screen's period, over it, alternate dark and light (cells 2 apart a fifth
    #: as far apart as neighbours after JPEG), a screen on such a grid a few hundredths
    repeat_ratio_small: float = 0.15
    #: ... judged from repeat_strong_pairs pairs when neighbours differ by repeat_strong_step
    #: or more and cells 2 or 3 apart by less than repeat_ratio_small of that: cells of
    #: ink and paper in turn (0: off). Blocks average what they cover; 11 cells of a 45
    #: degree dot screen whose dots fill every other 6 px cell after JPEG (neighbours 224
    #: levels apart, cells 2 apart 0.3) took 0.104% of a clean page.
    repeat_strong_step: float = 96.0
    repeat_strong_pairs: int = 4
    #: blocks over small_block px: the steps between neighbouring cells must repeat too,
    #: within ``repeat_step_ratio`` x the neighbours' mean difference, 2-4 cells apart, and
    #: the means within repeat_ratio, 2-4 apart (0: the means alone, 2-3 apart, as before).
    #: A texture whose period is a whole number of cells repeats its steps exactly, and a
    #: smooth shading under it moves them little (24 px checks under a gradient: cell means
    #: 2 apart 0.08 of neighbours, steps 0.07); a mosaic over a hatching whose period is not
    #: (37 px lines at 45 degrees, 3.08 cells of 17 px) drifts: means 3 apart 0.10-0.22 of
    #: neighbours, which the means' test read as a texture, steps 0.16 or more. (The steps
    #: alone dropped a 12 px patch whose means did not repeat at all, steps 0.099, art-set s0
    #: ``manga1`` q80. Up to 4 apart: 16 px checks read on their 8 px half grid repeat
    #: every 4.)
    repeat_step_ratio: float = 0.1
    #: ... unless most strong cells are exactly constant (all channels) and the region's
    #: constant ones take at least repeat_max_levels distinct lumas (0: always asked):
    #: blocks in that many levels follow the picture, a texture aligned with the grid gives
    #: constant cells in a few colors (paper, ink). (4 px blocks over a dot screen of about
    #: twice their period alternate dark and light, and repeat every 2 cells as a texture
    #: does.)
    repeat_max_levels: int = 16
    #: lossless (``looks_lossless``): a step between two exactly constant cells of
    #: different colors is a side of each, however small (blocks over vertical hatching
    #: and a soft gradient step by a level or less down the hatching)
    exact_sides: bool = True
    #: a cell whose interior gradient exceeds this is not flat
    flat_max: float = 20.0
    #: weak cells: interior <= weak_ratio x (median interior of the strong cells) +
    #: weak_min, with steps >= weak_ratio x interior + weak_min on two sides
    weak_ratio: float = 1.5
    weak_min: float = 0.5
    #: ... each step side stepping so on at least this share of its pixels (0: off)
    weak_cover: float = 0.5
    #: weak cells that step on two opposite sides only (top and bottom, or left and right),
    #: in a band one cell thick running on for this many cells or more, do not join a
    #: region (0: off). JPEG decodes a smooth gradient into constant bands a level apart,
    #: and on a grid whose lines meet them a row of such cells passed the weak test and
    #: carried a region along the picture. Such bands step by a level or two; a row of
    #: blocks over an edge of the art (the same cells) steps by much more
    band_min_cells: int = 14
    #: ... stepping on those sides by at most this (mean luma step)
    band_max_step: float = 3.0
    #: a strong cell has block edges when the step reaches the side threshold on at least
    #: this share of a vertical and of a horizontal side's pixels
    edge_cover: float = 0.5
    #: faint small blocks (p <= small_block): mean grid-line step >= faint_ratio x interior
    #: mean step + faint_min on both axes, over faint_vote of the 3 x 3 neighbourhood
    faint_ratio: float = 1.5
    faint_min: float = 0.3
    faint_vote: float = 0.75
    #: ... and a mean step inside the cells of at most this (faint blocks lie on smooth areas)
    faint_inner_max: float = 3.0
    #: pixels kept around a grid's crop
    margin: int = 2
    #: pixels added around the tiles that found a grid before testing its cells
    box_margin: int = 128

    # --- lossless / lossy decisions (detect.py) -----------------------------------------
    #: median interior gradient of the strong cells up to which blocks count as exact
    clean_noise: float = 0.25
    #: strong cells needed before "exact" counts as lossless input
    lossless_min_cells: int = 12
    #: ... or fewer, when the image looks lossless: at least this share of its luma steps
    #: of lossless_step or more have an exactly flat 3 x 3 patch (no channel at 0 or 255)
    #: within 2 px (0: off)
    lossless_flat_share: float = 0.15
    lossless_step: int = 24
    #: fewer steps than this: not judged (not lossless); at most lossless_sample are read
    lossless_min_steps: int = 50
    lossless_sample: int = 2048
    #: share of strong cells exactly constant in all channels for weak cells to have to be
    exact_share: float = 0.5
    #: ... and from this share on, weak cells alone must be (a lossless box whose strong
    #: cells also lie over hatching or dots; JPEG's chroma noise leaves few strong cells
    #: exactly constant: 0-14% in the boxes where asking it lost patches) (1: off)
    weak_exact_share: float = 0.2
    #: lossy input: cell tests rerun on a 3x3 median-filtered luma from this block size,
    #: 5x5 from median5_min_p
    median_min_p: int = 5
    median5_min_p: int = 10
    #: lossy input: only strong cells with block edges (see ``edge_cover``) seed and carry
    #: regions; the others still let completion boxes grow
    edged_only: bool = True
    #: a grid counts as over flat art when this share of its cells is exactly flat on the
    #: unfiltered luma (JPEG decodes a flat fill exactly constant away from edges)
    fill_share: float = 0.25

    # --- regions in cell space (regions.py) ---------------------------------------------
    #: a region needs min(min_cells, min_area / p^2) (>= 3) strong cells ...
    min_cells: int = 6
    min_area: int = 2500
    #: ... making up this share of its cells (jpeg_grid_seed_share for grids aligned with
    #: JPEG's own 8x8 blocks, small_seed_share for blocks up to small_block px)
    seed_share: float = 0.1
    jpeg_grid_seed_share: float = 0.4
    #: ... or, on lossy input, with fewer seeds (at least near_min_seeds, the same share),
    #: within near_reach cells of a region kept on the same grid: a patch over a fill or a
    #: bubble shows its blocks in pieces, and after JPEG few cells of a piece pass the strong
    #: test (0: off). (Not on lossless input, where strong cells are many: there such a
    #: piece on a divisor of the true grid outgrew it.)
    near_min_seeds: int = 3
    near_reach: int = 3
    #: a region of two or more cells needs a step (the weak test's) on a grid line between
    #: two of its cells: one flat area whose outline falls on the grid lines (a grey box in a
    #: crosshatch, cut by a 37 px grid into 2 x 2 cells) passes the strong test in every
    #: cell, while a mosaic's blocks differ from each other
    stepped_inside: bool = True
    #: on a grid whose strong cells are not exactly flat (lossy input), off JPEG's lines (p
    #: not a multiple or divisor of 8, ``period.jpeg_period``) and of at least
    #: two_sided_min_p px, a flat cell whose block edges run along both its left and right
    #: sides (or top and bottom) seeds a region like a strong cell: after JPEG, blocks over
    #: a shading that changes along one axis step on that axis only, and none passes the
    #: strong test (which needs both axes). On JPEG's lines the flat 8 x 8 bands JPEG makes
    #: of a smooth gradient do the same (0: off)
    two_sided_min_p: int = 5
    #: on lossy input, a weak cell of a grid on JPEG's lines with blocks over 8 px whose luma
    #: is exactly flat over the whole cell counts as a seed there: it spans several JPEG
    #: blocks, which JPEG's flattening of a smooth area leaves stepping from each other
    jpeg_wide_flat_seeds: bool = True
    small_block: int = 6
    small_seed_share: float = 0.05
    #: regions must hold a k x k square of cells: 3 up to small_block px, else 2
    thick_small: int = 3
    thick: int = 2
    #: regions are completed over their bounding box when they fill this share of it ...
    complete_density: float = 0.2
    #: ... or sparse_density when at least sparse_strong of their cells are strong
    sparse_density: float = 0.1
    sparse_strong: float = 0.3
    #: completion takes cells with interior <= complete_ratio x (80th percentile of the
    #: region's cells) + complete_min
    complete_ratio: float = 1.5
    complete_min: float = 0.5
    #: lossy input: ... and cells whose luma spread (max - min inside, unfiltered) is at
    #: most complete_spread_ratio x (80th percentile of the region's cells) +
    #: complete_spread_min (0: off; 1 cuts spill over hatching on the art set but loses
    #: partial border cells of patches over line art: off by default)
    complete_spread_ratio: float = 0.0
    complete_spread_min: float = 8.0
    #: lossy input: completion (and box growth) leaves cells whose luma rises or falls
    #: across them (``Grid.ramp``: mean of the last third of the interior less the first,
    #: per axis) by more than complete_ramp_max levels, or complete_ramp_ratio x the 80th
    #: percentile of the region's own cells when that is more (JPEG's ringing ramps blocks
    #: too, more at low quality): a smooth gradient, not a block. From complete_ramp_min_p
    #: px blocks (smaller cells hold too few pixels for a ramp). complete_ramp_max 0: off
    complete_ramp_max: float = 0.75
    complete_ramp_ratio: float = 2.0
    complete_ramp_min_p: int = 6
    #: completion takes only flat cells 4-connected to the region through flat cells
    complete_connected: bool = True
    #: ... and not groups of them bordering more than rough_border x as many rough cells
    #: (not flat, not in the region) as region cells (inf: off)
    rough_border: float = 1.0
    #: lossless input: completion stays within the convex hull of the region's cells grown
    #: by this many cells (-1: off). Blocks over a flat fill or paper look exactly like it,
    #: so only the found cells' shape tells where a patch ends: a brush stroke or an ellipse
    #: leaves the corners of its box to the surroundings (a rectangle keeps its box, see
    #: complete_rect_corners; the flat corners of one that the hull leaves out are cells the
    #: pixelation did not change)
    complete_hull_margin: int = 1
    #: lossy input: the same with this margin (-1: off). After JPEG the found cells of a
    #: blob-shaped patch over a flat fill span its box, whose corners are the fill beyond
    #: the patch border
    lossy_hull_margin: int = 1
    #: ... from this block size (JPEG leaves small blocks' found cells a scattered sample of
    #: the patch: faint cells, the edges crossing it)
    lossy_hull_min_p: int = 5
    #: ... (either margin) but not when found cells lie in complete_rect_corners or more of
    #: the four corner squares of the box (complete_rect_corner of its extent on a side, at
    #: least 2 cells): a rectangular patch (an ellipse reaches into them only at their tips)
    complete_rect_corner: float = 0.15
    complete_rect_corners: int = 3
    #: box growth reaches at most box_reach x the box's extent in each direction
    box_reach: float = 2.0
    #: lossy flat art: when no cell with block edges is in reach, the box grows to any strong
    #: cell, by at most box_reach_any x its extent. 0 (off): such a cell is as often an
    #: outline of the art beyond a flat fill beside a blob-shaped patch (the fill was taken)
    #: as a partial block on a rectangle's border
    box_reach_any: float = 0.0
    #: box growth reaches a block-like cell with no other one among its 8 neighbours only
    #: within box_reach_lone x the box's extent (-1: as far as any). Blocks show in runs (a
    #: line or a fill edge crossing the patch, a row of partial blocks on its border), while
    #: an outline of the art crossing the grid leaves single strong cells a few cells apart,
    #: which pulled a box over the flat background up to them
    box_reach_lone: float = 0.5
    #: lossless: a region with at least cert_min exclusive blocks is kept even when thin
    cert_min: int = 4
    #: lossless: regions grow over exactly constant cells in exclusive colors (found in the
    #: zone only inside such cells) within this many cells of them (0: off)
    exclusive_rings: int = 3
    #: ... and, when the zone has no other cell (all are constant), found nowhere in the crop
    #: beyond the zone either (a fill goes on there, a block's own color does not)
    exclusive_beyond: bool = True
    #: lossless input: the region also grows this many cells over cells that pixelation made
    #: exactly constant (``Grid.grow_stepped_constant``; 0: off), kept where a square of
    #: stepped_thick_px pixels (3 cells at least) fits and in parts where this share of the
    #: cells steps to a cell outside the region
    stepped_rings: int = 30
    stepped_thick_px: int = 24
    stepped_apart_share: float = 0.2
    #: the holes a region encloses are filled when together they are at most this share
    #: of its area (0: off). Blocks equal to the picture under them (a block over a flat
    #: fill) leave holes; a ring-shaped region around more than itself is left as found
    hole_fill_share: float = 1.0
    #: the smallest region kept, in blocks (p x p px) of its grid (``detect.drop_specks``;
    #: 0: off)
    min_region_blocks: float = 0.5
    #: a region found on a grid whose lines are all lines of a coarser grid found too is
    #: dropped when that grid's regions cover this share of it (0: off)
    divisor_overlap: float = 0.5

    # --- blocks that erased a texture (erased.py) -------------------------------------------
    #: a found region runs on over a flat area of its texture's mean color that the texture
    #: encloses (below)
    erased: bool = True
    #: ... when this share of the area's new pixels lie a block or more from its border
    erased_deep_share: float = 0.15
    #: flat: luma std over 3 x 3 px at most erased_smooth, and within erased_level_tol of
    #: the area's level where it meets the region
    erased_smooth: float = 3.0
    erased_level_tol: float = 6.0
    #: enclosed within erased_reach x the region's size around it, at most erased_max_reach
    #: px (at least 3 blocks)
    erased_reach: float = 2.0
    erased_max_reach: int = 256
    #: and at most erased_max_growth x the region's area
    erased_max_growth: float = 3.0
    #: the flat area cut, before it is judged, to within erased_trim + 2 px of its pixels
    #: erased_trim px or more inside it (0: off); with erased_trim_lossless only where the
    #: input looks lossless (``detect.looks_lossless``) or exact_share of the region's whole
    #: cells are exactly one color (``detect.exact_block_share``: black-and-white manga,
    #: which the first cannot tell). Where blocks erased a sparse hatching, the flat area
    #: runs on into the hatching's flat gaps: the strands count against erased_max_growth
    #: and bring the hatching's lines into the outline test (art set s1100 ``illust0`` PNG
    #: 0.895 -> 0.939, x0.75 0.860 -> 0.921; s400 ``manga0`` PNG 0.932 -> 0.982). On JPEG
    #: input it lost more than it found (34 seeds at q80: 3 pictures up, 6 down, s2200
    #: ``illust1`` 0.886 -> 0.784), and there it is off.
    erased_trim: int = 6
    erased_trim_lossless: bool = True
    #: rough: luma std over 7 x 7 px at least erased_rough, around erased_rough_share of
    #: its border
    erased_rough: float = 6.0
    erased_rough_share: float = 0.7
    #: its color (any channel) within erased_color_tol of the texture's block means a half
    #: to one block out, and within erased_edge_tol of the mean of the pixels up to half a
    #: block out (an outline is not the texture)
    erased_color_tol: float = 4.0
    erased_edge_tol: float = 16.0
    #: ... the texture's block means read over boxes of 1 to erased_texture_scales blocks
    #: (1: one block only): a hatching sparser than a block averages to its tone only
    #: over a box of a few of its periods
    erased_texture_scales: int = 3
    #: ... a box of k > 1 blocks counting when its tone lies within erased_scale_tol of
    #: the tone over k - 1 blocks (a chance match of a box that holds a line or none)
    erased_scale_tol: float = 8.0
    #: a flat area found with no grid (``flat_areas_in_texture``) that fails these tests all
    #: around is judged again by erased_sectors sectors of its surroundings around its
    #: centre (0: off): it passes when the sectors that pass both tests hold
    #: erased_sector_share of the rough pixels around it (sectors within two blocks of a
    #: found region not counting: its unfound border cells average to the fill beside
    #: it). Blocks over the border of a texture's region border that texture on one side
    #: only (art set s4503 ``illust2`` q90: 11 px blocks over a dot screen, a sky and a
    #: skin fill; the medians all around matched nothing, two sectors of eight matched
    #: the screen: 0 -> 0.502)
    erased_sectors: int = 8
    erased_sector_share: float = 0.25
    #: the same tests find such areas where no grid found anything (``flat_areas_in_texture``;
    #: after JPEG the blocks of a uniform texture show no step): flat over 7 x 7 px (luma
    #: std at most erased_alone_smooth), erased_alone_min_px or more, within a box of at most
    #: erased_alone_max_share of the image, judged with blocks of erased_alone_block px
    erased_alone: bool = True
    erased_alone_smooth: float = 3.0
    erased_alone_min_px: int = 600
    #: ... the area keeps all of its flat core (False: only the core's pixels within
    #: erased_level_tol of its median luma, as before the thirty-fourth session). A mosaic
    #: over a screen under a shading leaves a core whose blocks take lumas 20 apart (art set
    #: s4705 ``illust2`` q80: 69-89); cut to one level, its pieces border blocks of other
    #: levels and fail the ring test (0.240 -> 0.871)
    erased_alone_whole_core: bool = True
    erased_alone_max_share: float = 0.1
    erased_alone_block: int = 12
    #: ... its color within erased_edge_tol of the pixels up to erased_alone_edge_px out
    #: (over half a block, a flat shape's 1-2 px outline and the screen of its tone beyond
    #: it average to the shape's color)
    erased_alone_edge_px: int = 3
    #: ... taken only within erased_alone_trim + 2 px of its pixels that lie erased_alone_trim
    #: or more inside it (0: all of it): a sparse hatching's gaps are as flat and of its
    #: level, and the area runs into them as thin strands
    erased_alone_trim: int = 6
    #: ... and an area that touches the picture's edge is judged when at most this share of
    #: its outline runs along the edge (0: only enclosed areas; a background goes on past
    #: the picture)
    erased_alone_edge_share: float = 0.25
    #: ... and with the pixels up to erased_alone_edge_px out within erased_alone_edge_cut_tol
    #: of its color (not erased_edge_tol): less of its border shows. (The shaded part of an
    #: outlined shape cut by the edge, beside a hatching of its tone, gave 14.9; the patches
    #: cut by the edge that the evaluation sets hold, 0.8-5.4.)
    erased_alone_edge_cut_tol: float = 8.0
    #: ... and with at least erased_alone_edge_cut_share of the pixels 2-6 px around it of
    #: its tone over 7 x 7 px (within 12 levels): the shaded parts of outlined shapes cut by
    #: the edge beside a screen or hatching of their tone gave 0.01-0.05 (their border runs
    #: along the lighter fill), the patches 0.95-0.96
    erased_alone_edge_cut_share: float = 0.5

    # --- region borders (border.py) -----------------------------------------------------
    #: lossless input: region borders pixel by pixel (``border.exact_block_pixels``), and
    #: completion over exactly constant cells only (every whole block is one)
    exact_pixels: bool = True
    #: ... a block color must hold this share of the side pixels that step to the region
    exact_votes: float = 0.3
    #: ... and cover at least this many pixels of the cell (a noisy surrounding's colors
    #: are single pixels)
    exact_min_area: int = 3
    #: partial blocks: share of a cell's lines whose constant run ends at the same place
    partial_agree: float = 0.7
    #: lossy input: border cells cut pixel by pixel (``border.lossy_block_pixels``) to the
    #: pixels within lossy_pixel_tol x the strip tolerance below of the block's luma
    lossy_pixels: bool = True
    lossy_pixel_tol: float = 2.0
    #: on an image that does not look lossless, exact partial blocks (runs of equal pixels)
    #: only where exact_share of the region's inner cells are exactly constant in every
    #: channel (otherwise the lossy partial blocks and ``lossy_block_pixels``)
    exact_runs_rgb: bool = True
    #: ... and on a grid on JPEG's own 8 x 8 lines, only when exact_share of the grid's
    #: strong cells are exactly constant in every channel: JPEG keeps a whole block there
    #: exact (its DC only), not a partial block beside a texture, whose runs end at the first
    #: pixel of ringing
    jpeg_lossy_partials: bool = True
    #: lossy input: the partial blocks in the cells beside a region (``border.beside_blocks``),
    #: added once the regions are grown: a cell's part near its side's color, when it covers
    #: beside_min_share of the cell or more and at most beside_beyond of the pixels within
    #: half a block around the cell (not taken) are near that color too; also beside exact
    #: blocks on a grid on JPEG's 8 x 8 lines in an image that does not look lossless
    #: (``detect.looks_lossless``)
    beside_blocks: bool = True
    beside_min_share: float = 0.1
    beside_beyond: float = 0.3
    #: lossy partial strips: pixels equal within partial_tol + partial_tol_noise x noise
    partial_tol: float = 3.0
    partial_tol_noise: float = 3.0
    #: lossy: a cell without a straight run of its own takes its grid line's border width
    #: from this block size
    strip_fill_min_p: int = 10
    #: lossy border cells without a step: the part whose roughness is <= tex_ratio x that of
    #: its first two lines + tex_min is the partial block, when the rest is tex_outer x rougher
    tex_ratio: float = 2.0
    tex_min: float = 0.5
    tex_outer: float = 2.0


DEFAULT_PARAMS = MosaicParams()
