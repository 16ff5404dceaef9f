"""The DCPv2 generator's inference path as an ONNX graph, built from its 40 weight tensors.

The graph computes exactly what ``shared/dcpv2-model.md`` describes (reflect-pad encoder,
contextual attention, decoder, composition with the known pixels), NCHW inside: the NHWC
inputs are transposed once at the start and the result once at the end. Exact rewrites, each
tested against the TF1 reference graph:

- The contextual attention is batched MatMuls plus a fixed 3x3 overlap-add (9 shifted slices),
  never a Conv/ConvTranspose with runtime weights, which run far below GEMM speed.
- ``attention="sparse"`` (the default) computes attention rows only for the queries whose 3x3
  neighbourhood touches a hole cell of the 32x32 mask: no other query reaches the cells where
  the attention output is used. ``attention="dense"`` is the literal computation.
- Attention weights that underflow to float32 denormals are flushed to 0 (they would make the
  reconstruction GEMM ~10x slower); the 3 identical mask channels are folded into 1;
  each nearest 2x upsampling is folded into the following conv (``_upsample_conv``).
- Where the crop has no known pixel, DCPv2 divides 0 by 0 (NaN output); here the attention
  falls back to uniform weights over the (all-zero) keys instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from deepcream.errors import ModelError

# onnxruntime 1.31 and OpenVINO 2026.4 (installed here) both run this graph at opsets 21..25
# (checked); 21 is the newest that onnxruntime 1.18, the oldest pyproject allows, supports,
# and no op used here changed after it.
OPSET = 21
SIZE = 256
FEAT = 32  # side of the encoder's output grid
CHANNELS = 256  # encoder output channels
LAMBDA = 50.0  # softmax temperature of the contextual attention

# (name, kernel, in, out, stride, dilation) in network order.
_ENCODER = [
    ("G_en/Conv", 5, 6, 32, 1, 1),
    ("G_en/Conv_1", 3, 32, 64, 2, 1),
    ("G_en/Conv_2", 3, 64, 64, 1, 1),
    ("G_en/Conv_3", 3, 64, 128, 2, 1),
    ("G_en/Conv_4", 3, 128, 128, 1, 1),
    ("G_en/Conv_5", 3, 128, 256, 2, 1),
    ("G_en/Conv_6", 3, 256, 256, 1, 2),
    ("G_en/Conv_7", 3, 256, 256, 1, 4),
    ("G_en/Conv_8", 3, 256, 256, 1, 8),
    ("G_en/Conv_9", 3, 256, 256, 1, 16),
]
_ML = ("CB1/ML", 1, 512, 256)
_DECODER = [
    ("G_de/Conv", 256, 128),
    ("G_de/Conv_1", 128, 128),
    ("G_de/Conv_2", 128, 64),
    ("G_de/Conv_3", 64, 64),
    ("G_de/Conv_4", 64, 32),
    ("G_de/Conv_5", 32, 32),
    ("G_de/Conv_6", 32, 16),
    ("G_de/Conv_7", 16, 16),
]
_FINAL = ("G_de/Conv_8", 16, 3)


def _generator_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    layers = [(n, k, i, o) for n, k, i, o, _, _ in _ENCODER] + [_ML]
    layers += [(n, 3, i, o) for n, i, o in _DECODER] + [(_FINAL[0], 3, _FINAL[1], _FINAL[2])]
    for name, k, cin, cout in layers:
        shapes[f"{name}/weights"] = (k, k, cin, cout)
        shapes[f"{name}/biases"] = (cout,)
    return shapes


#: The 40 generator tensors inference needs, by checkpoint name, with their HWIO/bias shapes.
GENERATOR_SHAPES: dict[str, tuple[int, ...]] = _generator_shapes()

ATTENTION_MODES = ("dense", "sparse")


def validate_weights(weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Check every generator tensor is present with its exact shape; return them as float32."""
    missing = [name for name in GENERATOR_SHAPES if name not in weights]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(f"generator variable {missing[0]} is missing{more}: "
                         "not a DCPv2 checkpoint")
    out: dict[str, np.ndarray] = {}
    for name, shape in GENERATOR_SHAPES.items():
        value = np.asarray(weights[name])
        if tuple(value.shape) != shape:
            raise ModelError(f"generator variable {name} has shape {list(value.shape)}, "
                             f"expected {list(shape)}: not a DCPv2 checkpoint")
        if not np.issubdtype(value.dtype, np.floating):
            raise ModelError(f"generator variable {name} has dtype {value.dtype}, "
                             "expected float32")
        value = value.astype(np.float32)
        if not np.all(np.isfinite(value)):
            raise ModelError(f"generator variable {name} contains NaN or infinite values")
        out[name] = value
    return out


class _Builder:
    """Accumulates nodes and initializers with unique names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0
        self.elu_op = False  # True: the plain ONNX Elu op (see ``elu``)

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray | list | float, name: str = "c", dtype=np.float32) -> str:
        arr = np.asarray(value, dtype=dtype)
        full = self.fresh(name)
        self.inits.append(numpy_helper.from_array(arr, full))
        return full

    def ints(self, values: list[int], name: str = "i") -> str:
        return self.const(values, name, np.int64)

    def op(self, op_type: str, inputs: list[str], name: str | None = None, **attrs) -> str:
        out = self.fresh(name or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def op_multi(self, op_type: str, inputs: list[str], n_out: int, name: str, **attrs):
        outs = [self.fresh(f"{name}_o{i}") for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh(name), **attrs))
        return outs

    # ---- layers -------------------------------------------------------------------------
    def conv(self, x: str, w_hwio: np.ndarray, b: np.ndarray, name: str, *, stride: int = 1,
             dilation: int = 1, pads: list[int] | None = None) -> str:
        w = self.const(np.ascontiguousarray(w_hwio.transpose(3, 2, 0, 1)), f"{name}/W")
        bias = self.const(b, f"{name}/B")
        k = int(w_hwio.shape[0])
        return self.op("Conv", [x, w, bias], name, kernel_shape=[k, k], strides=[stride, stride],
                       dilations=[dilation, dilation], pads=pads or [0, 0, 0, 0])

    def elu(self, x: str) -> str:
        """ELU (alpha 1) as max(x, exp(min(x, 0)) - 1): equal to TF's ``exp(x) - 1`` on the
        negative side and to x elsewhere (exp(x) - 1 >= x everywhere, with equality at 0).
        onnxruntime's own Elu kernel is scalar; these four vectorized passes take ~40% less
        time, and ELU follows every conv."""
        if self.elu_op:
            return self.op("Elu", [x], "elu", alpha=1.0)
        neg = self.op("Min", [x, self.const(0.0, "zero")], "elu_neg")
        expm1 = self.op("Sub", [self.op("Exp", [neg], "elu_exp"), self.const(1.0, "one")],
                        "elu_expm1")
        return self.op("Max", [x, expm1], "elu")

    def reflect_pad(self, x: str, p: int) -> str:
        return self.op("Pad", [x, self.ints([0, 0, p, p, 0, 0, p, p])], "pad", mode="reflect")

    def slice(self, x: str, starts: list[int], ends: list[int], axes: list[int],
              steps: list[int] | None = None) -> str:
        ins = [x, self.ints(starts), self.ints(ends), self.ints(axes)]
        if steps is not None:
            ins.append(self.ints(steps))
        return self.op("Slice", ins, "slice")

    def patch_rows(self, x_nhwc: str, out_side: int) -> str:
        """[N, S, S, C] -> [N, out_side^2, 9*C]: the 3x3 patch at each output position as one
        row, flattened (dy, dx, c) like TF's extract_image_patches."""
        parts = [self.slice(x_nhwc, [dy, dx], [dy + out_side, dx + out_side], [1, 2])
                 for dy in range(3) for dx in range(3)]
        stacked = self.op("Concat", parts, "patches", axis=3)  # [N, o, o, 9*C]
        return self.op("Reshape", [stacked, self.ints([0, out_side * out_side, 9 * CHANNELS])],
                       "patch_rows")


PADDED = FEAT + 2  # side of the zero-padded 32x32 grid


def _keys(b: _Builder, bg_nhwc: str) -> tuple[str, str]:
    """Keys: VALID 3x3 patches of bg, [N, 900, 2304], and their squared norms [N, 1, 900]."""
    return b.patch_rows(bg_nhwc, FEAT - 2), _key_norms(b, bg_nhwc)


def _key_norms(b: _Builder, bg_nhwc: str) -> str:
    """Squared norms of the 900 keys, [N, 1, 900]: a 3x3 box sum of the per-cell squared
    norms (9x less work than norming the patches)."""
    cell_norms = b.op("ReduceSumSquare", [bg_nhwc, b.ints([3])], "cell_norms", keepdims=1)
    cell_norms = b.op("Transpose", [cell_norms], "cell_norms_nchw", perm=[0, 3, 1, 2])
    box = b.const(np.ones((1, 1, 3, 3), np.float32), "box3")
    kk = b.op("Conv", [cell_norms, box], "key_norms", kernel_shape=[3, 3])  # [N, 1, 30, 30]
    return b.op("Reshape", [kk, b.ints([0, 1, (FEAT - 2) ** 2])], "kk")


def _attention_weights(b: _Builder, keys: str, kk: str, queries: str) -> str:
    """Attention weights a [N, Q, 900] of queries [N, Q, 2304] over keys [N, 900, 2304]
    (squared norms kk)."""
    qk = b.op("MatMul", [queries, b.op("Transpose", [keys], "keysT", perm=[0, 2, 1])], "qk")
    return _softmax_weights(b, qk, kk)


def _softmax_weights(b: _Builder, qk: str, kk: str) -> str:
    """Attention weights a [N, Q, 900] from the scores q.k [N, Q, 900] and |k|^2 [N, 1, 900]."""
    # d = |k|^2 + |q|^2 - 2 q.k. |q|^2 is the same for all keys of a query, so it cancels in
    # (d - mean_j d) and leaves std_j d unchanged: leave it out (exact, and less rounding).
    d = b.op("Add", [b.op("Mul", [qk, b.const(-2.0, "minus_two")]), kk], "d")
    mean = b.op("ReduceMean", [d, b.ints([2])], "mean", keepdims=1)
    centered = b.op("Sub", [d, mean], "centered")
    var = b.op("ReduceMean", [b.op("Mul", [centered, centered]), b.ints([2])], "var",
               keepdims=1)
    # No epsilon, as in DCPv2. Where all keys are equal (e.g. no known pixel in the crop)
    # centered and std are both 0: divide by a tiny floor instead of 0 so z = 0, not NaN
    # (the keys are then all equal, so any weights give the same reconstruction).
    std = b.op("Max", [b.op("Sqrt", [var]), b.const(1e-30, "std_floor")], "std")
    z = b.op("Div", [centered, std], "z")
    s = b.op("Mul", [b.op("Tanh", [z]), b.const(-LAMBDA, "neg_lambda")], "s")
    a = b.op("Softmax", [s], "a", axis=2)  # over the 900 keys
    # With lambda = 50 most weights underflow to float32 denormals, which make the next GEMM
    # ~10x slower (microcode assists). Flush weights below 1e-30 to zero, as TF's own
    # flush-to-zero threads do: they change r by < 1e-27.
    return b.op("Where", [b.op("Less", [a, b.const(1e-30, "tiny")]), b.const(0.0, "zero"), a],
                "a_ftz")


def _attend(b: _Builder, keys: str, kk: str, queries: str) -> str:
    """Reconstruction rows a @ keys, [N, Q, 2304]: what each query position spreads over its
    3x3 neighbourhood."""
    return b.op("MatMul", [_attention_weights(b, keys, kk, queries), keys], "recon")


def _attention_dense(b: _Builder, f_nhwc: str, bg_nhwc: str, hole32_nchw: str) -> str:
    """Contextual attention for all 1024 query positions: r [N, 32, 32, 256] (NHWC), the
    literal transposed convolution (every row spread over its 3x3 neighbourhood)."""
    keys, kk = _keys(b, bg_nhwc)
    f_pad = b.op("Pad", [f_nhwc, b.ints([0, 1, 1, 0, 0, 1, 1, 0])], "qpad")  # SAME, zeros
    rows = _attend(b, keys, kk, b.patch_rows(f_pad, FEAT))
    grid = b.op("Reshape", [rows, b.ints([0, FEAT, FEAT, 9 * CHANNELS])], "rows_grid")
    grid = b.op("Pad", [grid, b.ints([0, 1, 1, 0, 0, 1, 1, 0])], "rows_pad")
    return _overlap_add(b, b.op("Reshape", [grid, b.ints([0, PADDED * PADDED, 9 * CHANNELS])],
                                "rows_padded"))


def _attention_sparse(b: _Builder, f_nhwc: str, bg_nhwc: str, hole32_nchw: str) -> str:
    """The dense attention's r [N, 32, 32, 256] at every hole cell (0 elsewhere).

    The attention output is used only at hole cells of the 32x32 mask, and the value at a cell
    gathers the rows of the queries in its 3x3 neighbourhood. So only queries with a hole cell
    in their own 3x3 neighbourhood matter: take the K = max-over-batch count of them per
    sample (TopK on a 0/1 map picks all of them, plus harmless extras in samples with fewer),
    gather just their patches, attend for those rows only, and reconstruct r at the hole
    cells only (``_reconstruct_at_holes``).
    """
    # a cell's attention output is used wherever its mask is not 1 (so also for masks with
    # values between 0 and 1): mark those cells 1, then their 3x3 neighbourhoods
    is_hole = b.op("Cast", [b.op("Greater", [hole32_nchw, b.const(0.0, "zero")])], "is_hole",
                   to=TensorProto.FLOAT)
    near_hole = b.op("MaxPool", [is_hole], "near_hole", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    near_hole = b.op("Reshape", [near_hole, b.ints([0, FEAT * FEAT])], "near_hole_flat")
    count = b.op("ReduceMax", [b.op("ReduceSum", [near_hole, b.ints([1])], "count",
                                    keepdims=0)], "count_max", keepdims=1)
    count = b.op("Cast", [count], "count_i", to=TensorProto.INT64)
    k = b.op("Max", [count, b.ints([1])], "k")  # at least one row keeps every shape non-empty
    _, idx = b.op_multi("TopK", [near_hole, k], 2, "topk", axis=1, largest=1, sorted=0)
    # query (y, x) = idx -> its patch's top-left on the padded grid, y * 34 + x
    corner = b.op("Add", [idx, b.op("Mul", [b.op("Div", [idx, b.ints([FEAT])]),
                                            b.ints([PADDED - FEAT])])], "corner")  # [N, K]
    f_pad = b.op("Pad", [f_nhwc, b.ints([0, 1, 1, 0, 0, 1, 1, 0])], "qpad")  # SAME, zeros
    f_cells = b.op("Reshape", [f_pad, b.ints([0, PADDED * PADDED, CHANNELS])], "f_cells")
    qk = _sparse_scores(b, f_cells, bg_nhwc, idx, corner)  # [N, K, 900]
    a = _softmax_weights(b, qk, _key_norms(b, bg_nhwc))
    return _reconstruct_at_holes(b, a, corner, is_hole, bg_nhwc)


def _sparse_scores(b: _Builder, f_cells: str, bg_nhwc: str, idx: str, corner: str) -> str:
    """q.k [N, K, 900] for the queries at 32x32 cells ``idx`` (patch top-left ``corner`` on
    the zero-padded 34x34 grid ``f_cells`` [N, 1156, 256]), without forming query patches.

    q_i.k_j = sum over the 9 offsets t of f(corner_i + t) . bg(j + t): one product of cell
    vectors. Neighbouring queries share 2/3 of their cells, so the products of every cell
    their patches cover with every bg cell (P [N, U, 1024], U ~ 1.5 K) are computed once,
    a 256-deep GEMM with ~1/6 of the multiply-adds of the patch GEMM [K, 2304] x [2304, 900];
    each score then adds up 9 entries of P (two gathers and a sum).
    """
    n_dim = b.op("Shape", [corner], "sc_n", start=0, end=1)
    # the cells the picked queries' patches cover: the picked cells, dilated by one on the
    # padded grid
    picked = b.op("ScatterElements", [
        b.op("ConstantOfShape", [b.op("Concat", [n_dim, b.ints([FEAT * FEAT])], "sc_grid", axis=0)],
             "sc_zero", value=numpy_helper.from_array(np.zeros(1, np.float32))),
        idx, b.op("Cast", [b.op("Add", [b.op("Mul", [idx, b.ints([0])]), b.ints([1])])],
                  "sc_one", to=TensorProto.FLOAT)], "sc_picked", axis=1)
    covered = b.op("MaxPool", [b.op("Pad", [b.op("Reshape", [picked, b.ints([0, 1, FEAT, FEAT])]),
                                            b.ints([0, 0, 1, 1, 0, 0, 1, 1])], "sc_pad")],
                   "sc_covered", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    covered = b.op("Reshape", [covered, b.ints([0, PADDED * PADDED])], "sc_covered_flat")
    u = b.op("Max", [b.op("Cast", [b.op("ReduceMax", [b.op("ReduceSum", [
        covered, b.ints([1])], "sc_count", keepdims=0)], "sc_count_max", keepdims=1)],
        "sc_count_i", to=TensorProto.INT64), b.ints([1])], "sc_u")
    _, cells = b.op_multi("TopK", [covered, u], 2, "sc_topk", axis=1, largest=1, sorted=0)
    # row of each padded cell in P (cells not covered are never looked up)
    u_scalar = b.op("Squeeze", [b.op("Shape", [cells], "sc_u_dim", start=1, end=2),
                                b.ints([0])], "sc_u_scalar")
    rows = b.op("Range", [b.const(0, "zero_i", np.int64), u_scalar, b.const(1, "one_i", np.int64)],
                "sc_rows")
    rows = b.op("Expand", [b.op("Unsqueeze", [rows, b.ints([0])]), b.op("Shape", [cells])],
                "sc_rows_nu")
    table = b.op("ScatterElements", [b.op("Cast", [b.op("Reshape", [b.op(
        "ConstantOfShape", [b.op("Concat", [n_dim, b.ints([PADDED * PADDED])], "sc_tshape",
                            axis=0)], "sc_t0", value=numpy_helper.from_array(np.zeros(1, np.float32))),
        b.op("Concat", [n_dim, b.ints([PADDED * PADDED])], "sc_tshape2", axis=0)])],
        "sc_t0i", to=TensorProto.INT64), cells, rows], "sc_table", axis=1)  # [N, 1156]
    f_u = b.op("GatherND", [f_cells, b.op("Unsqueeze", [cells, b.ints([2])])], "sc_f_u",
               batch_dims=1)  # [N, U, 256]
    bg_t = b.op("Transpose", [b.op("Reshape", [bg_nhwc, b.ints([0, FEAT * FEAT, CHANNELS])])],
                "sc_bg_t", perm=[0, 2, 1])  # [N, 256, 1024]
    products = b.op("MatMul", [f_u, bg_t], "sc_products")  # [N, U, 1024]
    # each query's 9 patch cells -> their rows of P
    offsets = b.ints([dy * PADDED + dx for dy in range(3) for dx in range(3)])
    patch = b.op("Add", [b.op("Unsqueeze", [corner, b.ints([2])]), offsets], "sc_patch")
    k9 = b.op("Mul", [b.op("Shape", [corner], "sc_k", start=1, end=2), b.ints([9])], "sc_k9")
    patch = b.op("Reshape", [patch, b.op("Concat", [n_dim, k9], "sc_nk9", axis=0)],
                 "sc_patch_flat")
    patch_rows = b.op("GatherElements", [table, patch], "sc_patch_rows", axis=1)  # [N, K*9]
    per_cell = b.op("GatherND", [products, b.op("Unsqueeze", [patch_rows, b.ints([2])])],
                    "sc_per_cell", batch_dims=1)  # [N, K*9, 1024]
    nk = b.op("Shape", [corner], "sc_nk")
    per_cell = b.op("Reshape", [per_cell, b.op("Concat", [nk, b.ints([9, FEAT, FEAT])],
                                               "sc_shape1", axis=0)], "sc_per_query")
    # offset t = (dy, dx) of key j = (y, x) is bg cell (y + dy, x + dx): 9 shifted windows
    side = FEAT - 2
    terms = [b.slice(per_cell, [t, dy, dx], [t + 1, dy + side, dx + side], [2, 3, 4])
             for t, (dy, dx) in enumerate((dy, dx) for dy in range(3) for dx in range(3))]
    qk = b.op("Sum", terms, "sc_sum")  # [N, K, 1, 30, 30]
    return b.op("Reshape", [qk, b.op("Concat", [nk, b.ints([side * side])], "sc_shape2",
                                      axis=0)], "qk")


def _reconstruct_at_holes(b: _Builder, a: str, corner: str, is_hole: str, bg_nhwc: str) -> str:
    """r [N, 32, 32, 256] at the hole cells (0 elsewhere) from the sparse attention weights
    a [N, K, 900] of the queries whose padded-grid top-left cells are ``corner`` [N, K].

    The transposed convolution gives r[y, x] = 1/9 sum over (dy, dx) of
    a[query (y - dy + 1, x - dx + 1)] @ bg[key cells shifted by (dy, dx)]. It is computed
    only at hole cells (half the near-hole queries on thin strokes), with the 9 weight rows
    of a hole cell first merged into one weight per bg cell, so no patch matrix and no
    padded 34x34x2304 grid are formed.
    """
    # Row of a for each padded-grid cell; K, an appended zero row, where the cell is no query
    # (off the 32x32 grid, or too far from a hole to matter).
    k_dim = b.op("Shape", [corner], "k_dim", start=1, end=2)  # [1]
    n_dim = b.op("Shape", [corner], "n_dim", start=0, end=1)
    k_scalar = b.op("Squeeze", [k_dim, b.ints([0])], "k_scalar")
    table = b.op("Expand", [k_dim, b.op("Concat", [n_dim, b.ints([PADDED * PADDED])],
                                        "table_shape", axis=0)], "row_table_init")
    rows = b.op("Range", [b.const(0, "zero_i", np.int64), k_scalar,
                          b.const(1, "one_i", np.int64)], "query_rows")
    rows = b.op("Expand", [b.op("Unsqueeze", [rows, b.ints([0])], "query_rows_1k"),
                           b.op("Shape", [corner], "corner_shape")], "query_rows_nk")
    centre = b.op("Add", [corner, b.ints([PADDED + 1])], "query_centre")
    table = b.op("ScatterElements", [table, centre, rows], "row_table", axis=1)  # [N, 1156]
    zero_row = b.op("ConstantOfShape", [b.op("Concat", [n_dim, b.ints([1, (FEAT - 2) ** 2])],
                                             "zero_row_shape", axis=0)], "zero_row",
                    value=numpy_helper.from_array(np.zeros(1, np.float32)))
    a_rows = b.op("Concat", [a, zero_row], "a_rows", axis=1)  # [N, K + 1, 900]
    # the hole cells: H = the batch's largest count (TopK on the 0/1 map; extras in samples
    # with fewer holes are non-hole cells, whose r is multiplied by 0 later)
    hole_flat = b.op("Reshape", [is_hole, b.ints([0, FEAT * FEAT])], "hole_flat")
    h = b.op("Max", [b.op("Cast", [b.op("ReduceMax", [b.op("ReduceSum", [
        hole_flat, b.ints([1])], "hole_count", keepdims=0)], "hole_count_max", keepdims=1)],
        "hole_count_i", to=TensorProto.INT64), b.ints([1])], "h")
    _, hole_idx = b.op_multi("TopK", [hole_flat, h], 2, "hole_topk", axis=1, largest=1,
                             sorted=0)  # [N, H]
    hole_centre = b.op("Add", [b.op("Add", [hole_idx, b.op("Mul", [
        b.op("Div", [hole_idx, b.ints([FEAT])]), b.ints([PADDED - FEAT])])]),
        b.ints([PADDED + 1])], "hole_centre")  # padded index of each hole cell
    # offset t = dy * 3 + dx takes the query at padded index centre + (1 - dy) * 34 + (1 - dx)
    offsets = b.ints([(1 - dy) * PADDED + (1 - dx) for dy in range(3) for dx in range(3)])
    cells = b.op("Add", [b.op("Unsqueeze", [hole_centre, b.ints([2])]), offsets],
                 "hole_queries")  # [N, H, 9]
    hole_shape = b.op("Shape", [hole_idx], "hole_shape")  # [N, H]
    # [N, H * 9], spelled out: -1 cannot be resolved for an empty batch
    h9 = b.op("Mul", [b.op("Shape", [hole_idx], "h_dim", start=1, end=2), b.ints([9])], "h9")
    cells = b.op("Reshape", [cells, b.op("Concat", [n_dim, h9], "n_h9", axis=0)],
                 "hole_queries_flat")
    picked_rows = b.op("GatherElements", [table, cells], "hole_query_rows", axis=1)
    weights = b.op("GatherND", [a_rows, b.op("Unsqueeze", [picked_rows, b.ints([2])])],
                   "hole_weights", batch_dims=1)  # [N, H * 9, 900]
    # Offset t = (dy, dx) of key j = (y, x) is bg cell (y + dy, x + dx), so
    # r[h] = sum_t sum_j a[q(h, t), j] bg[j + t] = sum_c bg[c] * sum_t a[q(h, t), c - t]:
    # shift each of the 9 weight maps (30x30) to its place on the 32x32 grid and add them
    # up, then one [H, 1024] x [1024, 256] GEMM (1/8 of the multiply-adds of weighting the
    # 9 shifted copies of the keys).
    side = FEAT - 2
    weights = b.op("Reshape", [weights, b.op("Concat", [hole_shape, b.ints([9, side, side])],
                                             "hole_weights_shape", axis=0)], "hole_weight_maps")
    placed = [b.op("Pad", [b.slice(weights, [t], [t + 1], [2]),
                           b.ints([0, 0, 0, dy, dx, 0, 0, 0, 2 - dy, 2 - dx])], "hole_weight_at")
              for t, (dy, dx) in enumerate((dy, dx) for dy in range(3) for dx in range(3))]
    cell_weights = b.op("Reshape", [b.op("Sum", placed, "hole_cell_weights"),
                                    b.op("Concat", [hole_shape, b.ints([FEAT * FEAT])],
                                         "hole_cells_shape", axis=0)],
                        "hole_cell_weights_flat")  # [N, H, 1024]
    bg_cells = b.op("Reshape", [bg_nhwc, b.ints([0, FEAT * FEAT, CHANNELS])], "bg_cells")
    r_holes = b.op("MatMul", [cell_weights, bg_cells], "r_holes")  # [N, H, 256]
    grid = b.op("ConstantOfShape", [b.op("Concat", [n_dim, b.ints([FEAT * FEAT, CHANNELS])],
                                         "r_grid_shape", axis=0)], "r_grid_zero",
                value=numpy_helper.from_array(np.zeros(1, np.float32)))
    where = b.op("Expand", [b.op("Unsqueeze", [hole_idx, b.ints([2])], "hole_idx3"),
                            b.op("Shape", [r_holes], "r_holes_shape")], "hole_idx_c")
    grid = b.op("ScatterElements", [grid, where, r_holes], "r_grid", axis=1)
    grid = b.op("Reshape", [grid, b.ints([0, FEAT, FEAT, CHANNELS])], "r_sum")
    return b.op("Mul", [grid, b.const(1.0 / 9.0, "ninth")], "r")


def _overlap_add(b: _Builder, rows: str) -> str:
    """Rows on the padded grid [N, 34*34, 2304 = (dy, dx, c)] -> r [N, 32, 32, 256] (NHWC):
    each query position's row is spread over its 3x3 neighbourhood and summed (TF's
    conv2d_transpose with SAME padding), divided by 9."""
    padded = b.op("Reshape", [rows, b.ints([0, PADDED, PADDED, 9, CHANNELS])], "cols")
    total = None
    for dy in range(3):
        for dx in range(3):
            t = dy * 3 + dx
            # r[y, x] += row(y - dy + 1, x - dx + 1)[dy, dx]; the padded index is that + 1
            part = b.slice(padded, [2 - dy, 2 - dx, t], [2 - dy + FEAT, 2 - dx + FEAT, t + 1],
                           [1, 2, 3])
            total = part if total is None else b.op("Add", [total, part], "oadd")
    total = b.op("Reshape", [total, b.ints([0, FEAT, FEAT, CHANNELS])], "r_sum")
    return b.op("Mul", [total, b.const(1.0 / 9.0, "ninth")], "r")


def _upsample_conv(b: _Builder, x: str, kernel: np.ndarray, bias: np.ndarray, name: str) -> str:
    """conv3x3(reflect_pad1(nearest_up2x(x))) computed at the low resolution, exactly.

    Output pixel (2i+a, 2j+b) sees upsampled rows 2i+a-1 .. 2i+a+1, i.e. source rows
    (i-1, i, i) for a = 0 and (i, i, i+1) for a = 1 (likewise columns): each of the 4 phases
    is a 2x2 conv of the source with summed taps, 4/9 of the multiply-adds. Reflect padding
    of the upsampled map equals edge padding of the source (row -1 reflects to upsampled row
    1 = source row 0). The phases are computed as one 2x2 conv with 4x the output channels on
    the edge-padded source, shifted by their phase and interleaved with DepthToSpace.
    """
    cout = kernel.shape[3]
    merge = [np.array([[1, 0, 0], [0, 1, 1]], np.float32),  # phase 0: taps (i-1), (i, i)
             np.array([[1, 1, 0], [0, 0, 1]], np.float32)]  # phase 1: taps (i, i), (i+1)
    phases = [np.einsum("yk,xl,klio->yxio", merge[a], merge[c], kernel)
              for a in (0, 1) for c in (0, 1)]
    stacked = np.concatenate(phases, axis=3)  # [2, 2, cin, 4*cout], phase-major channels
    padded = b.op("Pad", [x, b.ints([0, 0, 1, 1, 0, 0, 1, 1])], "edge_pad", mode="edge")
    y = b.conv(padded, stacked, np.tile(bias, 4), name)  # [N, 4*cout, H+1, W+1]
    # phase (a, c) at source position (i, j) is y[(a, c)][i + a, j + c]: y has one more row
    # and column than the source, so phase 0 drops the last one and phase 1 the first
    big = np.iinfo(np.int64).max
    parts = [b.slice(y, [t * cout, a, c], [(t + 1) * cout, big if a else -1, big if c else -1],
                     [1, 2, 3])
             for t, (a, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)])]
    phases_nchw = b.op("Concat", parts, "phases", axis=1)
    return b.op("DepthToSpace", [phases_nchw], "interleave", blocksize=2, mode="DCR")


WINDOW_MARGIN = 4  # cells of the 32x32 grid


def _hole_window(b: _Builder, h: str) -> tuple[str, tuple[str, str, str]]:
    """Cut the decoder input [N, 256, 32, 32] to the cells around the batch's holes.

    The output takes the decoder's result only at hole pixels. A window edge inside the crop
    pads with the wrong neighbours, and each 3x3 conv carries that error one pixel further in:
    2 convs at 32x32, 2 at 64, 2 at 128, 3 at 256 make 2*8 + 2*4 + 2*2 + 3 = 31 pixels at
    256x256, less than the 4-cell (32-pixel) margin. Where the window reaches the crop's edge
    it pads exactly as the full decoder does. Returns the cut input and, in pixels, the
    window's (y, x) start and end and the NHWC Pad amounts that put a window-sized result
    back in place.
    """
    # g is used wherever the mask is not 1: 1 there, 0 elsewhere, [N, 256, 256, 1]
    hole = b.op("Cast", [b.op("Less", ["mask", b.const(1.0, "one")])], "hole_px",
                to=TensorProto.FLOAT)
    step = SIZE // FEAT
    bounds = []
    for axis in (1, 2):  # rows, then columns
        other = [0, 3 - axis, 3]
        line = b.op("ReduceMax", [hole, b.ints(other)], "hole_line", keepdims=0)  # [256]
        cells = b.op("ReduceMax", [b.op("Reshape", [line, b.ints([FEAT, step])]), b.ints([1])],
                     "hole_cells", keepdims=0)  # [32]
        # first and last cell with a hole (0 and 31 when there is none: the whole grid)
        first = b.op("ArgMax", [cells], "first", keepdims=1, select_last_index=0)
        last = b.op("ArgMax", [cells], "last", keepdims=1, select_last_index=1)
        lo = b.op("Max", [b.op("Sub", [first, b.ints([WINDOW_MARGIN])]), b.ints([0])], "lo")
        hi = b.op("Min", [b.op("Add", [last, b.ints([WINDOW_MARGIN + 1])]), b.ints([FEAT])],
                  "hi")
        bounds.append((lo, hi))
    (y0, y1), (x0, x1) = bounds
    starts = b.op("Concat", [y0, x0], "win_starts", axis=0)
    ends = b.op("Concat", [y1, x1], "win_ends", axis=0)
    cut = b.op("Slice", [h, starts, ends, b.ints([2, 3])], "h_window")
    before = b.op("Mul", [starts, b.ints([step])], "pad_before")
    end_px = b.op("Mul", [ends, b.ints([step])], "win_end_px")
    after = b.op("Sub", [b.ints([SIZE, SIZE]), end_px], "pad_after")
    # the window in pixels, for NHWC tensors [N, 256, 256, C]: Slice starts/ends (axes 1, 2)
    # and the Pad amounts that put a window-sized result back in place
    pads = b.op("Concat", [b.ints([0]), before, b.ints([0, 0]), after, b.ints([0])],
                "win_pads_nhwc", axis=0)
    return cut, (before, end_px, pads)


def build_model(weights: Mapping[str, np.ndarray], *, attention: str = "sparse",
                upsample: str = "subpixel", decoder_window: bool | None = None,
                elu: str = "minexp") -> onnx.ModelProto:
    """Build the generator's inference graph: ``image`` [N,256,256,3] in [-1,1] and ``mask``
    [N,256,256,1] (1 keep, 0 hole) -> ``output`` [N,256,256,3] composed with the known pixels.

    ``upsample``:
    ``subpixel`` folds each nearest 2x upsampling into the next conv (see ``_upsample_conv``),
    ``resize`` is the literal Resize + reflect Pad + Conv. ``decoder_window`` runs the decoder
    only over the batch's hole bounding box plus a margin (see ``_hole_window``); by default
    it goes with the sparse attention, so the dense graph stays the plain reference.
    ``elu``: ``minexp`` (see ``_Builder.elu``) or ``op``, the ONNX Elu op."""
    if elu not in ("minexp", "op"):
        raise ValueError(f"elu must be minexp or op, not {elu!r}")
    if upsample not in ("subpixel", "resize"):
        raise ValueError(f"upsample must be subpixel or resize, not {upsample!r}")
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, not {attention!r}")
    if decoder_window is None:
        decoder_window = attention == "sparse"
    w = validate_weights(weights)
    b = _Builder()
    b.elu_op = elu == "op"

    f = _encoder(b, w)  # [N, 256, 32, 32]
    h = _attention_block(b, f, w, attention)
    window_pads = None
    if decoder_window:
        h, window_pads = _hole_window(b, h)
    g = _decoder(b, h, w, upsample)
    _compose_output(b, g, window_pads)
    return _model_of(b, attention)


def _encoder(b: _Builder, w: Mapping[str, np.ndarray]) -> str:
    """image + mask -> the [N, 256, 32, 32] features. The 3 identical mask channels of the
    original input become one: their input weights are summed."""
    image_nchw = b.op("Transpose", ["image"], "image_nchw", perm=[0, 3, 1, 2])
    mask_nchw = b.op("Transpose", ["mask"], "mask_nchw", perm=[0, 3, 1, 2])
    x = b.op("Concat", [image_nchw, mask_nchw], "e", axis=1)  # [N, 4, 256, 256]
    for idx, (name, k, _cin, _cout, stride, dilation) in enumerate(_ENCODER):
        kernel = w[f"{name}/weights"]
        if idx == 0:
            kernel = np.concatenate([kernel[:, :, :3], kernel[:, :, 3:].sum(2, keepdims=True)], 2)
        x = b.reflect_pad(x, (k // 2) * dilation)
        x = b.conv(x, kernel, w[f"{name}/biases"], name, stride=stride, dilation=dilation)
        x = b.elu(x)
    return x


def _attention_block(b: _Builder, f: str, w: Mapping[str, np.ndarray], attention: str) -> str:
    """Contextual attention over the features (in NHWC, so patches are contiguous rows of
    9*256), concatenated with them and mixed by the 1x1 conv."""
    f_nhwc = b.op("Transpose", [f], "f_nhwc", perm=[0, 2, 3, 1])
    m32 = b.slice("mask", [0, 0], [SIZE, SIZE], [1, 2], [SIZE // FEAT, SIZE // FEAT])
    bg = b.op("Mul", [f_nhwc, m32], "bg")  # [N, 32, 32, 256]
    hole32 = b.op("Sub", [b.const(1.0, "one"), m32], "hole32")  # [N, 32, 32, 1]
    hole32_nchw = b.op("Transpose", [hole32], "hole32_nchw", perm=[0, 3, 1, 2])
    attend = _attention_dense if attention == "dense" else _attention_sparse
    r = attend(b, f_nhwc, bg, hole32_nchw)  # [N, 32, 32, 256]
    att = b.op("Add", [bg, b.op("Mul", [r, hole32])], "att_nhwc")
    att = b.op("Transpose", [att], "att", perm=[0, 3, 1, 2])
    h = b.op("Concat", [f, att], "f_att", axis=1)
    h = b.conv(h, w[f"{_ML[0]}/weights"], w[f"{_ML[0]}/biases"], _ML[0])
    return b.elu(h)


def _decoder(b: _Builder, h: str, w: Mapping[str, np.ndarray], upsample: str) -> str:
    """4 stages of 2x [reflect pad, conv3x3, ELU] then nearest 2x (the last is 256->256, a
    no-op, so it is left out); the final conv and clip -> ``g`` in NHWC."""
    upsampled = False
    for stage in range(4):
        for name, _cin, _cout in _DECODER[2 * stage:2 * stage + 2]:
            kernel, bias = w[f"{name}/weights"], w[f"{name}/biases"]
            if upsampled and upsample == "subpixel":
                h = _upsample_conv(b, h, kernel, bias, name)
            else:
                if upsampled:
                    h = b.op("Resize", [h, "", b.const([1.0, 1.0, 2.0, 2.0], "up2")], "up",
                             mode="nearest", coordinate_transformation_mode="asymmetric",
                             nearest_mode="floor")
                h = b.conv(b.reflect_pad(h, 1), kernel, bias, name)
            h = b.elu(h)
            upsampled = False
        upsampled = stage < 3
    name = _FINAL[0]
    g = b.conv(h, w[f"{name}/weights"], w[f"{name}/biases"], name, pads=[1, 1, 1, 1])
    g = b.op("Clip", [g, b.const(-1.0, "lo"), b.const(1.0, "hi")], "g")
    return b.op("Transpose", [g], "g_nhwc", perm=[0, 2, 3, 1])


def _compose_output(b: _Builder, g: str, window_pads: tuple[str, str, str] | None) -> None:
    """output = g * (1 - mask) + image * mask. With the decoder window, g * (1 - mask) is
    formed on the window only and padded with zeros: outside it the mask is 1, so the term is
    0 there anyway (the same values, with two full-size passes fewer)."""
    if window_pads is not None:
        win_start, win_end, win_pads = window_pads
        hole = b.op("Sub", [b.const(1.0, "one"), b.op("Slice", ["mask", win_start, win_end,
                                                                b.ints([1, 2])], "mask_window")],
                    "hole_window")
        g_term = b.op("Pad", [b.op("Mul", [g, hole]), win_pads], "g_term")
    else:
        g_term = b.op("Mul", [g, b.op("Sub", [b.const(1.0, "one"), "mask"], "hole")])
    b.nodes.append(helper.make_node("Add", [g_term, b.op("Mul", ["image", "mask"])],
                                    ["output"], name="output"))


def _model_of(b: _Builder, attention: str) -> onnx.ModelProto:
    """The built nodes as a checked model with a symbolic batch."""
    batch = "N"
    graph = helper.make_graph(
        b.nodes, "dcpv2_generator",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, SIZE, SIZE, 3]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [batch, SIZE, SIZE, 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, SIZE, SIZE, 3])],
        initializer=b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="deepcream")
    model.ir_version = 10  # what onnxruntime >= 1.18 accepts for opset 21
    helper.set_model_props(model, {"attention": attention})
    onnx.checker.check_model(model)
    return model
