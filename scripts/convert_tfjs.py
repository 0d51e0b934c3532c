#!/usr/bin/python3
"""Convert a TensorFlow.js Layers model into a TorchScript chain that graft can tap and cut.

usage: convert_tfjs.py MODEL_DIR OUT.pt [--preprocess SPEC] [--keep-softmax] [--classes a,b,...]

MODEL_DIR holds a tfjs Layers model: model.json (Keras topology + weightsManifest) and
its weight shards (quantised uint8/uint16/float16 weights are dequantised). A model
shipped as JavaScript modules (npm package nsfwjs) is unpacked first with
scripts/convert_tfjs_unpack.js.

The TorchScript module is a torch.nn.Sequential whose children are the network's
stages, with stable names:
  MobileNetV2 (Keras names Conv1, expanded_conv_*, block_N_*, Conv_1):
      stem, block_0 ... block_16, last_conv, pool (with the Flatten), classifier
  any other graph (e.g. InceptionV3): a stage per convolution / pooling layer on the
      chain (with its BatchNorm and activation), one stage per multi-branch block named
      after the block's last layer (mixed0 ... mixed10), then pool and classifier
      (everything after the Flatten / global pooling).
Every stage boundary is checked to be the only live tensor of the graph there.
Inputs are NCHW (channels first), as graft and PyTorch feed them.

By default the final softmax is removed, so the model outputs logits (graft's heads
and losses expect logits); --keep-softmax keeps it. The expected preprocessing is
stored inside the .pt as the extra file graft.json ({"preprocess": graft transform
spec, "input_shape": [C,H,W], "class_names": [...], "source": ...}); graft reads it.
Unsupported layer types stop the conversion with one line naming the type and layer.
"""
import argparse
import json
import os
import re
import sys
from collections import OrderedDict
from typing import List

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ConvertError(Exception):
    pass


# ---------------------------------------------------------------- weights

_QDTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
_DTYPES = {"float32": np.float32, "int32": np.int32}


def read_weights(model_dir, manifest):
    """All weights of the manifest by name, dequantised to float32 numpy arrays."""
    out = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(model_dir, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            shape, n = w["shape"], int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                dt = _QDTYPES.get(q["dtype"])
                if dt is None:
                    raise ConvertError(f"weight {w['name']}: unsupported quantisation dtype {q['dtype']}")
                raw = np.frombuffer(blob, dtype=dt, count=n, offset=off)
                off += raw.nbytes
                if q["dtype"] == "float16":
                    arr = raw.astype(np.float32)
                else:
                    # tfjs dequantises as min + q * scale (in float32 arithmetic)
                    arr = np.float32(q["min"]) + raw.astype(np.float32) * np.float32(q["scale"])
            else:
                dt = _DTYPES.get(w["dtype"])
                if dt is None:
                    raise ConvertError(f"weight {w['name']}: unsupported dtype {w['dtype']}")
                arr = np.frombuffer(blob, dtype=dt, count=n, offset=off)
                off += arr.nbytes
            out[w["name"]] = np.array(arr, dtype=np.float32).reshape(shape)
        if off != len(blob):
            raise ConvertError(f"weight shards {group['paths']} hold {len(blob)} bytes but the manifest describes {off}")
    return out


# ---------------------------------------------------------------- ops (scriptable)

ACTS = {"linear": 0, "relu": 1, "relu6": 2, "sigmoid": 3, "tanh": 4, "softmax": 5}


def apply_act(x: Tensor, kind: int) -> Tensor:
    if kind == 1:
        return torch.relu(x)
    if kind == 2:
        return torch.clamp(x, 0.0, 6.0)
    if kind == 3:
        return torch.sigmoid(x)
    if kind == 4:
        return torch.tanh(x)
    if kind == 5:
        return torch.softmax(x, 1)
    return x


def same_pads(size: int, k: int, s: int, d: int) -> List[int]:
    """TensorFlow 'same' padding of one dimension: the extra pixel goes after (bottom/right)."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return [total // 2, total - total // 2]


class Conv(nn.Module):
    """Conv2D / DepthwiseConv2D (groups) with TensorFlow padding and a fused activation."""

    def __init__(self, weight, bias, stride, dilation, same: bool, groups: int, act: int):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(weight))
        self.bias = nn.Parameter(torch.from_numpy(bias)) if bias is not None else None
        self.stride: List[int] = list(stride)
        self.dilation: List[int] = list(dilation)
        self.same = same
        self.groups = groups
        self.act = act

    def forward(self, xs: List[Tensor]) -> Tensor:
        x = xs[0]
        if self.same:
            kh, kw = self.weight.size(2), self.weight.size(3)
            ph = same_pads(x.size(2), kh, self.stride[0], self.dilation[0])
            pw = same_pads(x.size(3), kw, self.stride[1], self.dilation[1])
            if ph[0] == ph[1] and pw[0] == pw[1]:
                y = F.conv2d(x, self.weight, self.bias, self.stride, [ph[0], pw[0]], self.dilation, self.groups)
                return apply_act(y, self.act)
            x = F.pad(x, [pw[0], pw[1], ph[0], ph[1]])
        y = F.conv2d(x, self.weight, self.bias, self.stride, [0, 0], self.dilation, self.groups)
        return apply_act(y, self.act)


class BatchNorm(nn.Module):
    """Inference BatchNorm with TensorFlow's epsilon (the statistics are buffers)."""

    def __init__(self, gamma, beta, mean, var, eps: float):
        super().__init__()
        c = mean.shape[0]
        self.weight = nn.Parameter(torch.from_numpy(gamma if gamma is not None else np.ones(c, np.float32)))
        self.bias = nn.Parameter(torch.from_numpy(beta if beta is not None else np.zeros(c, np.float32)))
        self.register_buffer("running_mean", torch.from_numpy(mean))
        self.register_buffer("running_var", torch.from_numpy(var))
        self.eps = eps

    def forward(self, xs: List[Tensor]) -> Tensor:
        return F.batch_norm(xs[0], self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class Act(nn.Module):
    def __init__(self, act: int):
        super().__init__()
        self.act = act

    def forward(self, xs: List[Tensor]) -> Tensor:
        return apply_act(xs[0], self.act)


class Pad(nn.Module):
    def __init__(self, pads: List[int]):  # left, right, top, bottom
        super().__init__()
        self.pads = pads

    def forward(self, xs: List[Tensor]) -> Tensor:
        return F.pad(xs[0], self.pads)


class Pool(nn.Module):
    """Max/average pooling with TensorFlow padding ('same' average excludes the padding)."""

    def __init__(self, is_max: bool, k, s, same: bool, global_: bool = False):
        super().__init__()
        self.is_max = is_max
        self.global_ = global_
        self.k: List[int] = list(k)
        self.s: List[int] = list(s)
        self.same = same

    def forward(self, xs: List[Tensor]) -> Tensor:
        x = xs[0]
        if self.global_:  # a final pool that covers the whole map at the model's own input size
            return torch.amax(x, [2, 3], keepdim=True) if self.is_max else torch.mean(x, [2, 3], keepdim=True)
        if not self.same:
            if self.is_max:
                return F.max_pool2d(x, self.k, self.s)
            return F.avg_pool2d(x, self.k, self.s)
        ph = same_pads(x.size(2), self.k[0], self.s[0], 1)
        pw = same_pads(x.size(3), self.k[1], self.s[1], 1)
        pads = [pw[0], pw[1], ph[0], ph[1]]
        if self.is_max:
            return F.max_pool2d(F.pad(x, pads, value=float("-inf")), self.k, self.s)
        ones = torch.ones_like(x[:1, :1])
        num = F.avg_pool2d(F.pad(x, pads), self.k, self.s)
        den = F.avg_pool2d(F.pad(ones, pads), self.k, self.s)
        return num / den


class GlobalPool(nn.Module):
    def __init__(self, is_max: bool):
        super().__init__()
        self.is_max = is_max

    def forward(self, xs: List[Tensor]) -> Tensor:
        if self.is_max:
            return torch.amax(xs[0], [2, 3])
        return torch.mean(xs[0], [2, 3])


class Flatten(nn.Module):
    """Keras Flatten on channels-last data: flatten in (H, W, C) order."""

    def forward(self, xs: List[Tensor]) -> Tensor:
        x = xs[0]
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        return torch.flatten(x, 1)


class Dense(nn.Module):
    def __init__(self, weight, bias, act: int):
        super().__init__()
        self.weight = nn.Parameter(torch.from_numpy(weight))
        self.bias = nn.Parameter(torch.from_numpy(bias)) if bias is not None else None
        self.act = act

    def forward(self, xs: List[Tensor]) -> Tensor:
        x = xs[0]
        if x.dim() > 2:
            x = torch.flatten(x, 1)
        return apply_act(F.linear(x, self.weight, self.bias), self.act)


class Add(nn.Module):
    def forward(self, xs: List[Tensor]) -> Tensor:
        y = xs[0]
        for i in range(1, len(xs)):
            y = y + xs[i]
        return y


class Concat(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, xs: List[Tensor]) -> Tensor:
        return torch.cat(xs, self.dim)


class Identity(nn.Module):
    def forward(self, xs: List[Tensor]) -> Tensor:
        return xs[0]


class Stage(nn.Module):
    """A piece of the graph with one input and one output. inputs[i] lists the values
    op i reads: 0 is the stage input, j > 0 the output of op j-1."""

    def __init__(self, ops: "OrderedDict[str, nn.Module]", inputs: List[List[int]]):
        super().__init__()
        self.ops = nn.ModuleDict(ops)
        self.inputs: List[List[int]] = inputs

    def forward(self, x: Tensor) -> Tensor:
        vals: List[Tensor] = [x]
        i = 0
        for op in self.ops.values():
            ins: List[Tensor] = []
            for j in self.inputs[i]:
                ins.append(vals[j])
            vals.append(op(ins))
            i += 1
        return vals[-1]


# ---------------------------------------------------------------- layers -> ops

_IGNORED_CFG = {"trainable", "name", "dtype"}


def _act_code(layer, name):
    a = name or "linear"
    if a not in ACTS:
        raise ConvertError(f"layer '{layer['name']}' ({layer['class_name']}): unsupported activation '{a}'")
    return ACTS[a]


def _pad_mode(layer):
    p = layer["config"].get("padding", "valid")
    if p not in ("same", "valid"):
        raise ConvertError(f"layer '{layer['name']}' ({layer['class_name']}): unsupported padding '{p}'")
    if layer["config"].get("data_format", "channels_last") != "channels_last":
        raise ConvertError(f"layer '{layer['name']}': only channels_last models are supported")
    return p == "same"


def make_op(layer, W, keep_softmax):
    """The scriptable op for one Keras layer. Raises ConvertError for unsupported ones."""
    cls, c, n = layer["class_name"], layer["config"], layer["name"]

    def w(suffix, required=True):
        key = f"{n}/{suffix}"
        if key not in W:
            if required:
                raise ConvertError(f"layer '{n}' ({cls}): weight {key} missing from the manifest")
            return None
        return W[key]

    if cls in ("Conv2D", "DepthwiseConv2D"):
        act = _act_code(layer, c.get("activation"))
        bias = w("bias") if c.get("use_bias", True) else None
        if cls == "Conv2D":
            k = w("kernel")  # (kh, kw, in, out) -> (out, in, kh, kw)
            weight, groups = np.ascontiguousarray(k.transpose(3, 2, 0, 1)), 1
            if c.get("groups", 1) != 1:
                raise ConvertError(f"layer '{n}' (Conv2D): grouped convolutions are not supported")
        else:
            k = w("depthwise_kernel")  # (kh, kw, in, mult); output channel c*mult+m
            kh, kw, cin, mult = k.shape
            weight = np.ascontiguousarray(k.reshape(kh, kw, cin * mult).transpose(2, 0, 1)[:, None])
            groups = cin
        return Conv(weight, bias, c["strides"], c.get("dilation_rate", [1, 1]), _pad_mode(layer), groups, act)
    if cls == "BatchNormalization":
        if c.get("axis", -1) not in (-1, 3, [3], [-1]):
            raise ConvertError(f"layer '{n}' (BatchNormalization): axis {c.get('axis')} is not the channel axis")
        gamma = w("gamma") if c.get("scale", True) else None
        beta = w("beta") if c.get("center", True) else None
        return BatchNorm(gamma, beta, w("moving_mean"), w("moving_variance"), float(c.get("epsilon", 1e-3)))
    if cls == "ReLU":
        mv, ns, th = c.get("max_value"), c.get("negative_slope", 0) or 0, c.get("threshold", 0) or 0
        if ns != 0 or th != 0 or mv not in (None, 6, 6.0):
            raise ConvertError(f"layer '{n}' (ReLU): only max_value 6 or none with slope 0 and threshold 0 is supported")
        return Act(ACTS["relu6"] if mv is not None else ACTS["relu"])
    if cls == "Activation":
        return Act(_act_code(layer, c.get("activation")))
    if cls == "ZeroPadding2D":
        p = c["padding"]
        if isinstance(p, int):
            p = [[p, p], [p, p]]
        elif isinstance(p[0], int):
            p = [[p[0], p[0]], [p[1], p[1]]]
        return Pad([p[1][0], p[1][1], p[0][0], p[0][1]])
    if cls in ("MaxPooling2D", "AveragePooling2D"):
        k = c["pool_size"]
        s = c.get("strides") or k
        # A valid pool straight before Flatten becomes global (checked at the nominal input size
        # in convert()), so the network runs on other input sizes too.
        glob = layer.get("_before_flatten", False) and not _pad_mode(layer) and list(s) == list(k)
        return Pool(cls == "MaxPooling2D", k, s, _pad_mode(layer), glob)
    if cls in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        return GlobalPool(cls == "GlobalMaxPooling2D")
    if cls == "Flatten":
        return Flatten()
    if cls == "Dense":
        act = c.get("activation")
        if act == "softmax" and not keep_softmax:
            act = "linear"
        bias = w("bias") if c.get("use_bias", True) else None
        return Dense(np.ascontiguousarray(w("kernel").T), bias, _act_code(layer, act))
    if cls == "Add":
        return Add()
    if cls == "Concatenate":
        if c.get("axis", -1) not in (-1, 3):
            raise ConvertError(f"layer '{n}' (Concatenate): axis {c.get('axis')} is not the channel axis")
        return Concat(1)
    if cls in ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "ActivityRegularization"):
        return Identity()
    raise ConvertError(f"layer '{n}' has type {cls}, which this converter does not support "
                       "(supported: Conv2D, DepthwiseConv2D, BatchNormalization, ReLU, Activation, ZeroPadding2D, "
                       "MaxPooling2D, AveragePooling2D, Global*Pooling2D, Flatten, Dense, Add, Concatenate, Dropout)")


# ---------------------------------------------------------------- graph and stages

def parse_graph(topology):
    mc = topology.get("model_config", topology)
    if mc.get("class_name") == "Sequential":
        raise ConvertError("Keras Sequential topologies are not supported yet; export the model as a functional Model")
    if mc.get("class_name") not in ("Model", "Functional"):
        raise ConvertError(f"model.json holds a '{mc.get('class_name')}', not a Keras functional Model "
                           "(tfjs graph models cannot be converted)")
    cfg = mc["config"]
    layers = OrderedDict()
    for l in cfg["layers"]:
        nodes = l.get("inbound_nodes", [])
        if len(nodes) > 1:
            raise ConvertError(f"layer '{l['name']}' is called {len(nodes)} times (shared layers are not supported)")
        l["inputs"] = [x[0] for x in nodes[0]] if nodes else []
        layers[l["name"]] = l
    ins, outs = cfg["input_layers"], cfg["output_layers"]
    if len(ins) != 1 or len(outs) != 1:
        raise ConvertError(f"the model has {len(ins)} inputs and {len(outs)} outputs; one of each is supported")
    # stable topological order: JSON order, each layer after its inputs
    order, done = [], set()
    pending = list(layers)
    while pending:
        progressed = False
        for name in list(pending):
            if all(i in done for i in layers[name]["inputs"]):
                order.append(name)
                done.add(name)
                pending.remove(name)
                progressed = True
        if not progressed:
            raise ConvertError(f"the graph has a cycle or a missing input near layer '{pending[0]}'")
    return layers, order, ins[0][0], outs[0][0]


def valid_cuts(layers, order, output):
    """Positions after which exactly one tensor (that layer's output) is still needed."""
    last_use = {}
    for pos, name in enumerate(order):
        for i in layers[name]["inputs"]:
            last_use[i] = pos
    last_use[output] = len(order)
    cuts = set()
    for pos, name in enumerate(order):
        live = [n for n in order[: pos + 1] if last_use.get(n, -1) > pos]
        if live == [name]:
            cuts.add(pos)
    return cuts


_MOBILENET = re.compile(r"^(?:block_(\d+)_|expanded_conv)")


def stage_keys_mobilenet_v2(layers, order):
    keys, after_pool = [], False
    for name in order:
        cls = layers[name]["class_name"]
        m = _MOBILENET.match(name)
        if after_pool and cls == "Flatten" and keys and keys[-1] == "pool":
            k = "pool"  # the channels-last Flatten stays with the pool: later stages get vectors
        elif after_pool:
            k = "classifier"
        elif m:
            k = f"block_{m.group(1) or 0}"
        elif name in ("Conv1_pad", "Conv1", "bn_Conv1", "Conv1_relu"):
            k = "stem"
        elif name in ("Conv_1", "Conv_1_bn", "out_relu"):
            k = "last_conv"
        elif cls in ("AveragePooling2D", "GlobalAveragePooling2D"):
            k, after_pool = "pool", True
        else:
            raise ConvertError(f"layer '{name}' ({cls}) does not fit the MobileNetV2 stage names")
        keys.append(k)
    return keys


_STARTS = {"Conv2D", "DepthwiseConv2D", "MaxPooling2D", "AveragePooling2D", "ZeroPadding2D", "Dense"}


def stage_keys_generic(layers, order, cuts):
    keys, cur, after_flat, prev_pad = [], None, False, False
    pos = 0
    while pos < len(order):
        name = order[pos]
        cls = layers[name]["class_name"]
        if after_flat:
            keys.append("classifier")
            pos += 1
            continue
        if pos not in cuts and len(order) > 1 and (pos == 0 or (pos - 1) in cuts) and \
                any(p not in cuts for p in range(pos, len(order))):
            # a multi-branch block: runs to the next valid cut; named after its last layer
            end = min(p for p in cuts if p >= pos) if any(p >= pos for p in cuts) else len(order) - 1
            if any(len(layers[order[p]]["inputs"]) > 1 for p in range(pos, end + 1)) or end > pos + 3:
                keys.extend([order[end]] * (end - pos + 1))
                pos = end + 1
                cur = None
                continue
        if cls in ("Flatten", "GlobalAveragePooling2D", "GlobalMaxPooling2D"):
            after_flat = True
            if cls != "Flatten":
                cur = "pool"
        elif cls in _STARTS and not prev_pad:
            cur = "pool" if cls == "AveragePooling2D" and _is_last_pool(layers, order, pos) else name
        elif cur is None:
            cur = name
        prev_pad = cls == "ZeroPadding2D"
        # Flatten (channels-last order) stays with the stage before it, so that graft's own
        # flatten before a Linear never sees a spatial map in the wrong order.
        keys.append(cur)
        pos += 1
    return keys


def _is_last_pool(layers, order, pos):
    return any(layers[n]["class_name"] == "Flatten" for n in order[pos + 1: pos + 2])


def build_stages(layers, order, input_name, output_name, W, keep_softmax, scheme):
    order = [n for n in order if layers[n]["class_name"] != "InputLayer"]
    cuts = valid_cuts(layers, order, output_name)
    if scheme == "auto":
        scheme = "mobilenet_v2" if "block_16_project" in layers and "Conv1" in layers else "generic"
    keys = stage_keys_mobilenet_v2(layers, order) if scheme == "mobilenet_v2" else \
        stage_keys_generic(layers, order, cuts)
    stages = OrderedDict()
    pos = 0
    while pos < len(order):
        key = keys[pos]
        end = pos
        while end + 1 < len(order) and keys[end + 1] == key:
            end += 1
        if key in stages:
            raise ConvertError(f"stage '{key}' is not contiguous in the graph")
        if end not in cuts and end != len(order) - 1:
            raise ConvertError(f"stage '{key}' ends at layer '{order[end]}', but other tensors of the graph are still "
                               "needed there, so the network cannot be cut into a chain at this point")
        names = order[pos: end + 1]
        local = {n: i + 1 for i, n in enumerate(names)}
        ops, inputs = OrderedDict(), []
        for n in names:
            ins = []
            for i in layers[n]["inputs"]:
                if i in local:
                    ins.append(local[i])
                elif pos == 0 and i == input_name or pos > 0 and i == order[pos - 1]:
                    ins.append(0)
                else:
                    raise ConvertError(f"layer '{n}' in stage '{key}' reads '{i}' from an earlier stage")
            ops[n.replace("/", "_").replace(".", "_")] = make_op(layers[n], W, keep_softmax)
            inputs.append(ins)
        stages[key] = Stage(ops, inputs)
        pos = end + 1
    return stages


def convert(model_dir, keep_softmax=False, scheme="auto"):
    """Returns (nn.Sequential of stages, input shape [C,H,W])."""
    mj = os.path.join(model_dir, "model.json")
    if not os.path.exists(mj):
        raise ConvertError(f"{mj} does not exist; give the folder of a tfjs Layers model "
                           "(nsfwjs ships .min.js files: unpack them with scripts/convert_tfjs_unpack.js)")
    model = json.load(open(mj))
    if "modelTopology" not in model or "weightsManifest" not in model:
        raise ConvertError(f"{mj} is not a tfjs model.json (no modelTopology/weightsManifest)")
    layers, order, inp, outp = parse_graph(model["modelTopology"])
    shape = layers[inp]["config"].get("batch_input_shape")
    if not shape or len(shape) != 4:
        raise ConvertError(f"input layer '{inp}' has shape {shape}; an image input (N,H,W,C) is needed")
    for n in order:
        if layers[n]["class_name"] == "Flatten":
            for i in layers[n]["inputs"]:
                layers[i]["_before_flatten"] = True
    W = read_weights(model_dir, model["weightsManifest"])
    stages = build_stages(layers, order, inp, outp, W, keep_softmax, scheme)
    net = nn.Sequential(stages)
    net.eval()
    chw = [shape[3], shape[1], shape[2]]
    check_global_pools(net, chw)
    return net, chw


def check_global_pools(net, chw):
    """A pool made global must cover the whole map at the model's own input size."""
    bad = []

    def hook(mod, args):
        x = args[0][0]
        if list(x.shape[2:]) != list(mod.k):
            bad.append(f"pool {mod.k} on a {list(x.shape[2:])} map")

    hs = [m.register_forward_pre_hook(hook) for m in net.modules() if isinstance(m, Pool) and m.global_]
    with torch.no_grad():
        net(torch.zeros(1, *chw))
    for h in hs:
        h.remove()
    if bad:
        raise ConvertError("the pooling before Flatten does not cover the whole feature map (" + "; ".join(bad) +
                           "), so the model cannot be made independent of the input size")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--preprocess", default=None,
                    help="graft transform spec the model expects (default: resize=HxW of its input, values in [0,1])")
    ap.add_argument("--keep-softmax", action="store_true", help="keep a final softmax (default: output logits)")
    ap.add_argument("--classes", default="", help="comma-separated class names, stored with the model")
    ap.add_argument("--stages", default="auto", choices=["auto", "mobilenet_v2", "generic"])
    ap.add_argument("--source", default="", help="where the model came from, stored with it")
    a = ap.parse_args()
    try:
        net, shape = convert(a.model_dir, a.keep_softmax, a.stages)
    except (ConvertError, OSError, KeyError, ValueError) as e:
        print(f"convert_tfjs: error: {a.model_dir}: {e}", file=sys.stderr)
        sys.exit(1)
    scripted = torch.jit.script(net)
    meta = {"preprocess": a.preprocess if a.preprocess is not None else f"resize={shape[1]}x{shape[2]}",
            "input_shape": shape, "source": a.source or os.path.abspath(a.model_dir),
            "output": "probabilities (softmax kept)" if a.keep_softmax else "logits"}
    if a.classes:
        meta["class_names"] = a.classes.split(",")
    tmp = a.out + ".tmp"
    scripted.save(tmp, _extra_files={"graft.json": json.dumps(meta)})
    os.replace(tmp, a.out)
    print(f"converted {a.model_dir} -> {a.out}: stages {', '.join(n for n, _ in net.named_children())}")


if __name__ == "__main__":
    main()
