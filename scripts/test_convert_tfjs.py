#!/usr/bin/python3
"""Test of scripts/convert_tfjs.py on a small tfjs Layers model written here by hand.

usage: test_convert_tfjs.py OUT_DIR
Writes OUT_DIR/tiny_tfjs/ (model.json + two weight shards, one uint8-quantised group
and one float32 group), converts it to OUT_DIR/tiny_tfjs.pt and compares the
TorchScript output with an independent NumPy implementation of the same Keras layers
computed on channels-last arrays (max abs diff <= 1e-5). Also writes
OUT_DIR/tiny_tfjs_input.npy (NCHW) and tiny_tfjs_out.npy for the C++ tests, and checks
that an unsupported layer type stops the converter with a line naming type and layer.
No TensorFlow is needed: the tfjs format is plain JSON plus little-endian buffers.
"""
import json
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(7)


def layer(cls, name, inputs, **cfg):
    cfg["name"] = name
    return {"class_name": cls, "name": name, "config": cfg, "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []}


def tiny_model():
    """A functional graph with every kind of step the real models need: odd input size,
    stride-2 'same' conv (asymmetric padding), depthwise conv with multiplier 2, BatchNorm
    with and without scale, ReLU6, a residual Add, a two-branch Concatenate, same-padded
    average and max pooling, Flatten in channels-last order and a softmax Dense."""
    L = [layer("InputLayer", "input_1", [], batch_input_shape=[None, 11, 9, 3]),
         layer("Conv2D", "stem_conv", ["input_1"], filters=4, kernel_size=[3, 3], strides=[2, 2], padding="same",
               activation="linear", use_bias=False),
         layer("BatchNormalization", "stem_bn", ["stem_conv"], axis=-1, epsilon=1e-3, center=True, scale=True),
         layer("ReLU", "stem_relu", ["stem_bn"], max_value=6, negative_slope=0, threshold=0),
         layer("ZeroPadding2D", "b1_pad", ["stem_relu"], padding=[[1, 1], [2, 0]]),
         layer("DepthwiseConv2D", "b1_dw", ["b1_pad"], kernel_size=[3, 3], strides=[1, 1], padding="valid",
               depth_multiplier=2, activation="linear", use_bias=True),
         layer("BatchNormalization", "b1_bn", ["b1_dw"], axis=-1, epsilon=1e-3, center=True, scale=False),
         layer("Activation", "b1_act", ["b1_bn"], activation="relu"),
         layer("Conv2D", "b1_proj", ["b1_act"], filters=4, kernel_size=[1, 1], strides=[1, 1], padding="same",
               activation="linear", use_bias=True),
         layer("Add", "b1_add", ["stem_relu", "b1_proj"]),
         layer("Conv2D", "m_a", ["b1_add"], filters=3, kernel_size=[1, 1], strides=[1, 1], padding="valid",
               activation="relu", use_bias=True),
         layer("AveragePooling2D", "m_pool", ["b1_add"], pool_size=[3, 3], strides=[1, 1], padding="same"),
         layer("Conv2D", "m_b", ["m_pool"], filters=2, kernel_size=[3, 1], strides=[1, 1], padding="same",
               activation="relu", use_bias=True),
         layer("Concatenate", "mixed0", ["m_a", "m_b"], axis=-1),
         layer("MaxPooling2D", "max_pool", ["mixed0"], pool_size=[2, 2], strides=[2, 2], padding="same"),
         layer("Flatten", "flatten", ["max_pool"]),
         layer("Dense", "dense_1", ["flatten"], units=6, activation="relu", use_bias=True),
         layer("Dropout", "dropout", ["dense_1"], rate=0.5),
         layer("Dense", "dense_2", ["dropout"], units=3, activation="softmax", use_bias=True)]
    shapes = {"stem_conv/kernel": (3, 3, 3, 4), "stem_bn/gamma": (4,), "stem_bn/beta": (4,),
              "stem_bn/moving_mean": (4,), "stem_bn/moving_variance": (4,),
              "b1_dw/depthwise_kernel": (3, 3, 4, 2), "b1_dw/bias": (8,), "b1_bn/beta": (8,),
              "b1_bn/moving_mean": (8,), "b1_bn/moving_variance": (8,), "b1_proj/kernel": (1, 1, 8, 4),
              "b1_proj/bias": (4,), "m_a/kernel": (1, 1, 4, 3), "m_a/bias": (3,), "m_b/kernel": (3, 1, 4, 2),
              "m_b/bias": (2,), "dense_1/kernel": (3 * 3 * 5, 6), "dense_1/bias": (6,), "dense_2/kernel": (6, 3),
              "dense_2/bias": (3,)}
    topo = {"keras_version": "2.2.4", "backend": "tensorflow",
            "model_config": {"class_name": "Model", "config": {"name": "tiny", "layers": L,
                                                               "input_layers": [["input_1", 0, 0]],
                                                               "output_layers": [["dense_2", 0, 0]]}}}
    return topo, shapes


def write_model(d, topo, shapes):
    """Weights: group 1 uint8-quantised (as nsfwjs ships), group 2 float32. Returns the
    dequantised values the converter must read."""
    os.makedirs(d, exist_ok=True)
    names = list(shapes)
    vals, groups = {}, []
    for gi, group in enumerate([names[: len(names) // 2], names[len(names) // 2:]]):
        specs, blob = [], b""
        for n in group:
            v = rng.normal(0, 0.5, size=shapes[n]).astype(np.float32)
            if "moving_variance" in n:
                v = np.abs(v) + 0.2
            if gi == 0:
                lo, hi = float(v.min()), float(v.max())
                scale = (hi - lo) / 255 if hi > lo else 1.0
                q = np.round((v - lo) / scale).astype(np.uint8)
                blob += q.tobytes()
                vals[n] = (np.float32(lo) + q.astype(np.float32) * np.float32(scale)).astype(np.float32)
                specs.append({"name": n, "shape": list(shapes[n]), "dtype": "float32",
                              "quantization": {"min": lo, "scale": scale, "dtype": "uint8"}})
            else:
                blob += v.astype("<f4").tobytes()
                vals[n] = v
                specs.append({"name": n, "shape": list(shapes[n]), "dtype": "float32"})
        path = f"group{gi + 1}-shard1of1"
        open(os.path.join(d, path), "wb").write(blob)
        groups.append({"paths": [path], "weights": specs})
    json.dump({"modelTopology": topo, "weightsManifest": groups}, open(os.path.join(d, "model.json"), "w"))
    return vals


# ---- NumPy reference on channels-last arrays, written from the Keras definitions

def tf_same(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def np_conv(x, k, s, same, bias=None, depthwise=False):
    kh, kw = k.shape[:2]
    if same:
        (t, b), (l, r) = tf_same(x.shape[1], kh, s), tf_same(x.shape[2], kw, s)
        x = np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)))
    n, H, W, C = x.shape
    oh, ow = (H - kh) // s + 1, (W - kw) // s + 1
    out = None
    for i in range(kh):
        for j in range(kw):
            patch = x[:, i: i + s * (oh - 1) + 1: s, j: j + s * (ow - 1) + 1: s, :]
            if depthwise:  # (kh,kw,C,M): output channel c*M+m
                term = (patch[..., :, None] * k[i, j][None, None, None]).reshape(n, oh, ow, -1)
            else:
                term = patch @ k[i, j]
            out = term if out is None else out + term
    return out + bias if bias is not None else out


def np_bn(x, v, p, eps=1e-3):
    g = v.get(p + "/gamma", 1.0)
    return (x - v[p + "/moving_mean"]) / np.sqrt(v[p + "/moving_variance"] + eps) * g + v[p + "/beta"]


def np_pool(x, k, s, is_max):
    (t, b), (l, r) = tf_same(x.shape[1], k, s), tf_same(x.shape[2], k, s)
    n, H, W, C = x.shape
    oh, ow = -(-H // s), -(-W // s)
    out = np.zeros((n, oh, ow, C), np.float64)
    for i in range(oh):
        for j in range(ow):
            y0, x0 = i * s - t, j * s - l
            win = x[:, max(y0, 0): min(y0 + k, H), max(x0, 0): min(x0 + k, W), :]
            out[:, i, j] = win.max((1, 2)) if is_max else win.mean((1, 2))
    return out


def reference(x, v):
    h = np.clip(np_bn(np_conv(x, v["stem_conv/kernel"], 2, True), v, "stem_bn"), 0, 6)
    skip = h
    h = np.pad(h, ((0, 0), (1, 1), (2, 0), (0, 0)))
    h = np_conv(h, v["b1_dw/depthwise_kernel"], 1, False, v["b1_dw/bias"], depthwise=True)
    h = np.maximum(np_bn(h, v, "b1_bn"), 0)
    h = skip + np_conv(h, v["b1_proj/kernel"], 1, True, v["b1_proj/bias"])
    a = np.maximum(np_conv(h, v["m_a/kernel"], 1, False, v["m_a/bias"]), 0)
    b = np.maximum(np_conv(np_pool(h, 3, 1, False), v["m_b/kernel"], 1, True, v["m_b/bias"]), 0)
    h = np_pool(np.concatenate([a, b], -1), 2, 2, True).reshape(x.shape[0], -1)
    h = np.maximum(h @ v["dense_1/kernel"] + v["dense_1/bias"], 0)
    z = h @ v["dense_2/kernel"] + v["dense_2/bias"]
    return z  # logits (the converter drops the final softmax by default)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/generated"
    d = os.path.join(out, "tiny_tfjs")
    topo, shapes = tiny_model()
    vals = write_model(d, topo, shapes)
    pt = os.path.join(out, "tiny_tfjs.pt")
    conv = os.path.join(HERE, "convert_tfjs.py")
    r = subprocess.run([sys.executable, conv, d, pt, "--classes", "a,b,c", "--preprocess", "resize=11x9"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: converter:", r.stderr.strip())
        sys.exit(1)
    x = rng.uniform(0, 1, size=(2, 11, 9, 3)).astype(np.float32)
    want = reference(x.astype(np.float64), {k: v.astype(np.float64) for k, v in vals.items()})
    extra = {"graft.json": ""}
    m = torch.jit.load(pt, _extra_files=extra)
    meta = json.loads(extra["graft.json"])
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        got = m(xt).numpy()
    diff = float(np.abs(got - want).max())
    children = [n for n, _ in m.named_children()]
    print(f"tiny tfjs model: stages {children}; max |torchscript - numpy| = {diff:.3g}")
    ok = diff <= 1e-5 and meta["preprocess"] == "resize=11x9" and meta["class_names"] == ["a", "b", "c"]
    ok &= children == ["stem_conv", "b1_add", "mixed0", "max_pool", "classifier"]
    np.save(os.path.join(out, "tiny_tfjs_input.npy"), xt.numpy())
    np.save(os.path.join(out, "tiny_tfjs_out.npy"), got)
    # An unsupported layer type: one line naming the type and the layer, exit 1.
    bad = json.loads(json.dumps(topo))
    bad["model_config"]["config"]["layers"][7] = layer("LSTM", "b1_act", ["b1_bn"], units=4)
    bd = os.path.join(out, "tiny_tfjs_bad")
    write_model(bd, bad, shapes)
    r = subprocess.run([sys.executable, conv, bd, os.path.join(out, "bad.pt")], capture_output=True, text=True)
    err = r.stderr.strip()
    print("unsupported layer ->", err)
    ok &= r.returncode == 1 and "LSTM" in err and "'b1_act'" in err and len(err.splitlines()) == 1
    ok &= not os.path.exists(os.path.join(out, "bad.pt"))
    print("ok" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
