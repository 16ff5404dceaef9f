"""The DCPv2 generator's inference path as an ONNX graph, built from its 40 weight tensors.

The graph follows ``shared/dcpv2-model.md`` exactly (reflect-pad encoder, contextual attention,
decoder, composition with the known pixels) and runs NCHW inside: the NHWC inputs are transposed
once at the start and the result once at the end.

The contextual attention is written as batched MatMuls plus a fixed 3x3 overlap-add
(Col2Im-style, done with 9 shifted slices), never as a Conv/ConvTranspose with runtime weights:
those run an order of magnitude below GEMM speed in ONNX Runtime.

``attention="sparse"`` (exact, same numbers) computes attention rows only for the queries whose
3x3 neighbourhood touches a hole cell of the 32x32 mask: no other query position contributes to
the attention output where it is used (at hole cells). ``attention="dense"`` keeps the literal
computation as the reference.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from deepcream.errors import ModelError

# Highest opset both onnxruntime and the OpenVINO ONNX frontend in use accept.
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

ATTENTION_MODES = ("dense",)  # "sparse" follows


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

    def reflect_pad(self, x: str, p: int) -> str:
        return self.op("Pad", [x, self.ints([0, 0, p, p, 0, 0, p, p])], "pad", mode="reflect")

    def slice(self, x: str, starts: list[int], ends: list[int], axes: list[int],
              steps: list[int] | None = None) -> str:
        ins = [x, self.ints(starts), self.ints(ends), self.ints(axes)]
        if steps is not None:
            ins.append(self.ints(steps))
        return self.op("Slice", ins, "slice")

    def patches(self, x: str, out_side: int) -> str:
        """[N, C, S, S] -> [N, C*9, out_side^2]: the 3x3 patches at each output position,
        ordered (c, dy, dx), i.e. ONNX Col2Im's column layout."""
        parts = []
        for dy in range(3):
            for dx in range(3):
                s = self.slice(x, [dy, dx], [dy + out_side, dx + out_side], [2, 3])
                parts.append(self.op("Unsqueeze", [s, self.ints([2])], "unsq"))
        stacked = self.op("Concat", parts, "patches", axis=2)  # [N, C, 9, o, o]
        return self.op("Reshape", [stacked, self.ints([0, CHANNELS * 9, out_side * out_side])],
                       "patches_flat")


def _attention_dense(b: _Builder, f: str, bg: str, m32: str) -> str:
    """Contextual attention over all 1024 query positions; returns r [N, 256, 32, 32]."""
    kt = b.patches(bg, FEAT - 2)  # K^T: [N, 2304, 900]
    f_pad = b.op("Pad", [f, b.ints([0, 0, 1, 1, 0, 0, 1, 1])], "qpad")  # SAME, zeros
    qt = b.patches(f_pad, FEAT)  # Q^T: [N, 2304, 1024]
    k = b.op("Transpose", [kt], "K", perm=[0, 2, 1])  # [N, 900, 2304]
    return _attend(b, k, kt, qt)


def _attend(b: _Builder, k: str, kt: str, qt: str) -> str:
    """Scores as [N, 900 keys, Q queries] so every product needs no transpose of big operands;
    returns the overlap-add columns R^T [N, 2304, Q]."""
    qk = b.op("MatMul", [k, qt], "qk")  # [N, 900, Q]
    kk = b.op("ReduceSumSquare", [kt, b.ints([1])], "kk", keepdims=1)  # [N, 1, 900]
    kk = b.op("Transpose", [kk], "kkT", perm=[0, 2, 1])  # [N, 900, 1]
    qq = b.op("ReduceSumSquare", [qt, b.ints([1])], "qq", keepdims=1)  # [N, 1, Q]
    # d = |k|^2 + |q|^2 - 2 q.k, in TF's order of evaluation
    d = b.op("Sub", [b.op("Add", [kk, qq]), b.op("Mul", [b.const(2.0, "two"), qk])], "d")
    mean = b.op("ReduceMean", [d, b.ints([1])], "mean", keepdims=1)
    centered = b.op("Sub", [d, mean])
    var = b.op("ReduceMean", [b.op("Mul", [centered, centered]), b.ints([1])], "var",
               keepdims=1)
    z = b.op("Div", [centered, b.op("Sqrt", [var])], "z")
    s = b.op("Mul", [b.op("Tanh", [z]), b.const(-LAMBDA, "neg_lambda")], "s")
    a = b.op("Softmax", [s], "a", axis=1)  # over the 900 keys
    return b.op("MatMul", [kt, a], "rT")  # [N, 2304, Q]


def _overlap_add(b: _Builder, rt: str) -> str:
    """R^T [N, 2304 = (c, dy, dx), 1024] -> r [N, 256, 32, 32]: each query position's patch is
    spread over its 3x3 neighbourhood and summed (TF's conv2d_transpose, SAME), divided by 9."""
    cols = b.op("Reshape", [rt, b.ints([0, CHANNELS, 9, FEAT, FEAT])], "cols")
    padded = b.op("Pad", [cols, b.ints([0, 0, 0, 1, 1, 0, 0, 0, 1, 1])], "cols_pad")
    total = None
    for dy in range(3):
        for dx in range(3):
            t = dy * 3 + dx
            # r[y, x] += patch[(y - dy + 1, x - dx + 1)][dy, dx]; padded index = that + 1
            part = b.slice(padded, [t, 2 - dy, 2 - dx], [t + 1, 2 - dy + FEAT, 2 - dx + FEAT],
                           [2, 3, 4])
            total = part if total is None else b.op("Add", [total, part], "oadd")
    total = b.op("Reshape", [total, b.ints([0, CHANNELS, FEAT, FEAT])], "r_sum")
    return b.op("Mul", [total, b.const(1.0 / 9.0, "ninth")], "r")


def build_model(weights: Mapping[str, np.ndarray], *, attention: str = "dense") -> onnx.ModelProto:
    """Build the generator's inference graph: ``image`` [N,256,256,3] in [-1,1] and ``mask``
    [N,256,256,1] (1 keep, 0 hole) -> ``output`` [N,256,256,3] composed with the known pixels."""
    if attention not in ATTENTION_MODES:
        raise ValueError(f"attention must be one of {ATTENTION_MODES}, not {attention!r}")
    w = validate_weights(weights)
    b = _Builder()

    image_nchw = b.op("Transpose", ["image"], "image_nchw", perm=[0, 3, 1, 2])
    mask_nchw = b.op("Transpose", ["mask"], "mask_nchw", perm=[0, 3, 1, 2])
    x = b.op("Concat", [image_nchw, mask_nchw], "e", axis=1)  # [N, 4, 256, 256]

    # Encoder. The 3 identical mask channels become one: sum their input weights.
    for idx, (name, k, _cin, _cout, stride, dilation) in enumerate(_ENCODER):
        kernel = w[f"{name}/weights"]
        if idx == 0:
            kernel = np.concatenate([kernel[:, :, :3], kernel[:, :, 3:].sum(2, keepdims=True)], 2)
        x = b.reflect_pad(x, (k // 2) * dilation)
        x = b.conv(x, kernel, w[f"{name}/biases"], name, stride=stride, dilation=dilation)
        x = b.op("Elu", [x], "elu", alpha=1.0)
    f = x  # [N, 256, 32, 32]

    # Contextual attention.
    m32 = b.slice(mask_nchw, [0, 0], [SIZE, SIZE], [2, 3], [SIZE // FEAT, SIZE // FEAT])
    bg = b.op("Mul", [f, m32], "bg")
    if attention == "dense":
        rt = _attention_dense(b, f, bg, m32)
    else:
        rt = _attention_sparse(b, f, bg, m32)
    r = _overlap_add(b, rt)
    hole32 = b.op("Sub", [b.const(1.0, "one"), m32], "hole32")
    att = b.op("Add", [bg, b.op("Mul", [r, hole32])], "att")
    h = b.op("Concat", [f, att], "f_att", axis=1)
    h = b.conv(h, w[f"{_ML[0]}/weights"], w[f"{_ML[0]}/biases"], _ML[0])
    h = b.op("Elu", [h], "elu", alpha=1.0)

    # Decoder: 4 stages of 2x [reflect pad, conv3x3, ELU] then nearest 2x (the last is 256->256,
    # a no-op, so it is left out).
    for stage in range(4):
        for name, _cin, _cout in _DECODER[2 * stage:2 * stage + 2]:
            h = b.reflect_pad(h, 1)
            h = b.conv(h, w[f"{name}/weights"], w[f"{name}/biases"], name)
            h = b.op("Elu", [h], "elu", alpha=1.0)
        if stage < 3:
            h = b.op("Resize", [h, "", b.const([1.0, 1.0, 2.0, 2.0], "up2")], "up", mode="nearest",
                     coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    name = _FINAL[0]
    g = b.conv(h, w[f"{name}/weights"], w[f"{name}/biases"], name, pads=[1, 1, 1, 1])
    g = b.op("Clip", [g, b.const(-1.0, "lo"), b.const(1.0, "hi")], "g")
    g = b.op("Transpose", [g], "g_nhwc", perm=[0, 2, 3, 1])

    # output = g * (1 - mask) + image * mask
    hole = b.op("Sub", [b.const(1.0, "one"), "mask"], "hole")
    b.nodes.append(helper.make_node("Add", [b.op("Mul", [g, hole]), b.op("Mul", ["image", "mask"])],
                                    ["output"], name="output"))

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


def _attention_sparse(b: _Builder, f: str, bg: str, m32: str) -> str:
    raise NotImplementedError("sparse attention is not built yet")
