"""Build a DCPv2-layout training checkpoint with random weights, in TensorFlow 1-style graph code.

(In the benchmark package, not under tests/, so that ``deepcream bench`` can generate its
fixture models at run time; the test suite's ``dcpv2_release`` fixture runs this same file. It
also has ``inference_graph`` for the TensorFlow and tf2onnx baselines. It imports nothing of
deepcream's, so it runs as a plain script.)

This is the ground truth the converter is tested against. It follows the architecture in
``shared/dcpv2-model.md`` literally: batch 8, a per-sample Python loop for the contextual
attention (unrolled in the graph), the coarse decoder path and a discriminator (both unused by
the output), Adam slots, and the normal ``tf.compat.v1.train.Saver``. The graph's tensors are
``Placeholder:0`` (x), ``Placeholder_1:0`` (y), ``Placeholder_2:0`` (m) -> ``add:0``.

Usage: python -m deepcream_bench.baselines.fixture OUT_DIR [--kinds bar,mosaic] [--seed N]
Writes OUT_DIR/<kind>/Train_<step>.{index,data-00000-of-00001,meta}, OUT_DIR/<kind>/checkpoint
and OUT_DIR/<kind>/reference.npz (inputs and the graph's outputs for a batch of 8 crops).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_slim as slim  # noqa: E402

tf1 = tf.compat.v1
STEPS = {"bar": 775000, "mosaic": 290000}
BATCH = 8
SIZE = 256


def reflect_conv(x, out_ch, k, scope, stride=1, rate=1, act=tf.nn.elu):
    pad = (k // 2) * rate
    x = tf.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    return slim.conv2d(x, out_ch, [k, k], stride=stride, rate=rate, padding="VALID",
                       activation_fn=act, scope=scope)


def encoder(x, m):
    with tf1.variable_scope("G_en", reuse=tf1.AUTO_REUSE):
        e = tf.concat([x, m], 3)
        e = reflect_conv(e, 32, 5, "Conv")
        e = reflect_conv(e, 64, 3, "Conv_1", stride=2)
        e = reflect_conv(e, 64, 3, "Conv_2")
        e = reflect_conv(e, 128, 3, "Conv_3", stride=2)
        e = reflect_conv(e, 128, 3, "Conv_4")
        e = reflect_conv(e, 256, 3, "Conv_5", stride=2)
        e = reflect_conv(e, 256, 3, "Conv_6", rate=2)
        e = reflect_conv(e, 256, 3, "Conv_7", rate=4)
        e = reflect_conv(e, 256, 3, "Conv_8", rate=8)
        e = reflect_conv(e, 256, 3, "Conv_9", rate=16)
    return e


def decoder(h):
    with tf1.variable_scope("G_de", reuse=tf1.AUTO_REUSE):
        size = 32
        names = iter(f"Conv_{i}" if i else "Conv" for i in range(8))
        for ch in (128, 64, 32, 16):
            h = reflect_conv(h, ch, 3, next(names))
            h = reflect_conv(h, ch, 3, next(names))
            size = min(size * 2, SIZE)
            h = tf1.image.resize_nearest_neighbor(h, [size, size])
        h = slim.conv2d(h, 3, [3, 3], padding="SAME", activation_fn=None, scope="Conv_8")
        return tf.clip_by_value(h, -1.0, 1.0)


def contextual_block(f, m, lamda=50.0):
    b, h, w, c = f.get_shape().as_list()
    with tf1.variable_scope("CB1", reuse=tf1.AUTO_REUSE):
        m32 = tf1.image.resize_nearest_neighbor(m[..., :1], [h, w])
        bg = f * m32
        outs = []
        for i in range(b):
            bgi, fi = bg[i:i + 1], f[i:i + 1]
            k = tf1.extract_image_patches(bgi, [1, 3, 3, 1], [1, 1, 1, 1], [1, 1, 1, 1], "VALID")
            k = tf.reshape(k, [-1, 3, 3, c])
            k = tf.transpose(k, [1, 2, 3, 0])  # [3, 3, c, 900]
            kk = tf.reduce_sum(tf.square(k), axis=[0, 1, 2])
            qq = tf.nn.conv2d(tf.square(fi), tf.ones([3, 3, c, 1]), [1, 1, 1, 1], "SAME")
            qk = tf.nn.conv2d(fi, k, [1, 1, 1, 1], "SAME")
            d = kk + qq - 2.0 * qk
            mean, var = tf.nn.moments(d, axes=[3], keepdims=True)
            s = -tf.tanh((d - mean) / tf.sqrt(var))
            a = tf.nn.softmax(lamda * s - 3.0, axis=3)
            r = tf1.nn.conv2d_transpose(a, k, [1, h, w, c], [1, 1, 1, 1], "SAME") / 9.0
            outs.append(r)
        r = tf.concat(outs, 0)
        att = bg + r * (1.0 - m32)
        return slim.conv2d(tf.concat([f, att], 3), c, [1, 1], activation_fn=tf.nn.elu, scope="ML")


def discriminator(img):
    """Spectral-norm-style discriminator variables (unused by inference, present in releases)."""
    with tf1.variable_scope("disc_red", reuse=tf1.AUTO_REUSE):
        h = img
        for i, ch in enumerate((64, 128, 256, 256, 256, 512)):
            w = tf1.get_variable(f"conv{i}/w", [5, 5, h.shape[-1], ch])
            tf1.get_variable(f"conv{i}/u", [1, ch], trainable=False)
            bias = tf1.get_variable(f"conv{i}/b", [ch], initializer=tf1.zeros_initializer())
            h = tf.nn.leaky_relu(tf.nn.conv2d(h, w, [1, 2, 2, 1], "SAME") + bias)
        return tf.reduce_mean(h)


def randomize(sess, rng):
    """He-scaled random weights and non-zero biases, so activations stay in a useful range."""
    for v in tf1.global_variables():
        shape = v.shape.as_list()
        if v.name.startswith(("G_en", "G_de", "CB1")) and v.name.endswith("weights:0"):
            fan_in = int(np.prod(shape[:-1]))
            scale = np.sqrt(1.0 / fan_in)
            if v.name.startswith("G_de/Conv_8/"):
                scale *= 0.5  # keep most outputs inside the final clip
            val = rng.normal(0.0, scale, shape)
        elif v.name.endswith("biases:0"):
            val = rng.normal(0.0, 0.1, shape)
        else:
            val = rng.normal(0.0, 0.05, shape) if shape else rng.uniform(0.5, 1.0)
        v.load(np.asarray(val, dtype=np.float32), sess)


def sample_inputs(rng):
    """Crops in [-1, 1] and masks (1 keep, 0 hole) with rectangles, strokes, border holes."""
    imgs = rng.uniform(0, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    # smooth-ish content so attention has structure
    for i in range(BATCH):
        imgs[i] = 0.5 + 0.4 * np.sin(xx[..., None] / (7 + i) + yy[..., None] / (11 + 2 * i)
                                     + np.array([0.0, 1.0, 2.0]))
    masks = np.ones((BATCH, SIZE, SIZE, 3), np.float32)
    masks[0, 100:160, 90:170] = 0  # central rectangle
    masks[1, 0:40, 0:256] = 0  # touches the top border
    masks[2, 200:256, 210:256] = 0  # bottom-right corner
    for t in range(-6, 7):  # thin diagonal stroke
        idx = np.arange(30, 220)
        masks[3, np.clip(idx + t, 0, 255), idx] = 0
    masks[4, 20:60, 20:60] = 0
    masks[4, 180:240, 120:140] = 0  # two holes
    masks[5, 128:136, :] = 0  # thin horizontal bar across
    masks[6, 60:200, 60:200] = 0  # large hole
    masks[7, rng.integers(0, 256, 300), rng.integers(0, 256, 300)] = 0  # scattered pixels
    x = imgs * 2 - 1
    return x.astype(np.float32), masks


def build_and_save(out_dir: str, kind: str, seed: int) -> None:
    tf1.reset_default_graph()
    x = tf1.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])  # Placeholder
    y = tf1.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])  # Placeholder_1
    m = tf1.placeholder(tf.float32, [BATCH, SIZE, SIZE, 3])  # Placeholder_2
    f = encoder(x, m)
    g = decoder(contextual_block(f, m))
    out = g * (1 - m) + y * m
    assert out.name == "add:0", out.name
    coarse = decoder(f)  # training-only coarse path
    d_loss = discriminator(out) + discriminator(y)
    loss = tf.reduce_mean(tf.abs(out - y)) + tf.reduce_mean(tf.abs(coarse - y)) + 1e-3 * d_loss
    tf1.train.AdamOptimizer(1e-4).minimize(loss)
    saver = tf1.train.Saver(max_to_keep=1)
    rng = np.random.default_rng(seed)
    kind_dir = os.path.join(out_dir, kind)
    os.makedirs(kind_dir, exist_ok=True)
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        randomize(sess, rng)
        xs, ms = sample_inputs(rng)
        xin = xs.copy()
        if kind == "bar":
            xin = np.where(ms == 0, -1.0, xs).astype(np.float32)
        result = sess.run("add:0", {"Placeholder:0": xin, "Placeholder_1:0": xin,
                                    "Placeholder_2:0": ms})
        saver.save(sess, os.path.join(kind_dir, f"Train_{STEPS[kind]}"))
    np.savez_compressed(os.path.join(kind_dir, "reference.npz"), x=xin, m=ms, out=result)


def inference_graph(batch: int = 1):
    """Build the generator's inference path alone at a fixed batch (the same graph code as the
    training checkpoint, so a Saver restores it): returns the (x, y, m) placeholders and the
    output tensor. DCP feeds the model one crop at a time; batch 1 is what it effectively runs."""
    x = tf1.placeholder(tf.float32, [batch, SIZE, SIZE, 3], name="x")
    y = tf1.placeholder(tf.float32, [batch, SIZE, SIZE, 3], name="y")
    m = tf1.placeholder(tf.float32, [batch, SIZE, SIZE, 3], name="m")
    g = decoder(contextual_block(encoder(x, m), m))
    out = tf.identity(g * (1 - m) + y * m, name="output")
    return x, y, m, out


def restore_generator(sess, prefix: str) -> None:
    """Load the generator variables of a checkpoint into the current graph's variables."""
    gen = [v for v in tf1.global_variables() if v.name.startswith(("G_en", "G_de", "CB1"))]
    tf1.train.Saver(var_list=gen).restore(sess, prefix)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--kinds", default="bar,mosaic")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    tf1.disable_eager_execution()
    for i, kind in enumerate(args.kinds.split(",")):
        build_and_save(args.out_dir, kind, args.seed + i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
