#!/usr/bin/env python3
"""Write the ONNX test models of the importer and their float references.

    python3 scripts/export_onnx.py            # tests/data/onnx/*.{onnx,json}

Needs: onnx and numpy (pip install onnx numpy). No GPU, no network.

Each test model is a small network built node by node with onnx.helper, in the form
torch.onnx.export gives PyTorch modules (node names `/module/Op`, Gemm with transB=1, Pad
before Conv for asymmetric padding, x * x as Mul(x, x), torch.flatten as Flatten, weights as
initialisers), with weights drawn from a fixed seed. Together they use every operator the
importer supports. Beside each `<name>.onnx` a `<name>.json` holds a few fixed inputs (drawn in
the declared input range) and the outputs of ONNX's own reference evaluator
(onnx.reference.ReferenceEvaluator, float32): the independent float reference the Rust tests
compare Veil's float evaluation against. For a model that ends in Softmax or LogSoftmax, which
the importer drops, the reference is the scores before it (the argmax is the same).

The PyTorch exporter itself is not used here so that these files can be regenerated without a
multi-gigabyte install; scripts/export_torch.py adds files exported by torch.onnx.export.

The shipped models/cryptonets-*.onnx are exported by PyTorch itself from the trained weights:
python3 training/train_cryptonets.py --dataset mnist --export-onnx-only.
"""

import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "onnx")


class Net:
    """Collects nodes and initialisers; names follow torch.onnx.export's scheme."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.count = {}

    def _fresh(self, base):
        k = self.count.get(base, 0)
        self.count[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def const(self, name, array, dtype=np.float32, raw=True):
        array = np.asarray(array, dtype=dtype)
        if raw:
            self.inits.append(numpy_helper.from_array(array, name))
        else:  # float_data / int64_data fields instead of raw bytes
            kind = helper.np_dtype_to_tensor_dtype(array.dtype)
            self.inits.append(helper.make_tensor(name, kind, array.shape, array.reshape(-1).tolist()))
        return name

    def weight(self, name, shape, scale):
        return self.const(name, self.rng.normal(0.0, scale, size=shape))

    def op(self, op_type, inputs, module=None, outputs=1, **attrs):
        base = f"/{module}/{op_type}" if module else f"/{op_type}"
        name = self._fresh(base)
        outs = [f"{name}_output_{i}".lstrip("/").replace("/", "_") for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if outputs == 1 else outs

    def conv(self, module, x, cin, cout, k, stride=1, pads=(0, 0, 0, 0), bias=True):
        w = self.weight(f"{module}.weight", (cout, cin, k, k), 1.0 / np.sqrt(cin * k * k))
        inputs = [x, w]
        if bias:
            inputs.append(self.weight(f"{module}.bias", (cout,), 0.1))
        return self.op("Conv", inputs, module, kernel_shape=[k, k], strides=[stride, stride],
                       pads=list(pads), dilations=[1, 1], group=1)

    def linear(self, module, x, fin, fout):
        w = self.weight(f"{module}.weight", (fout, fin), 1.0 / np.sqrt(fin))
        b = self.weight(f"{module}.bias", (fout,), 0.1)
        return self.op("Gemm", [x, w, b], module, alpha=1.0, beta=1.0, transB=1)

    def batch_norm(self, module, x, c):
        scale = self.const(f"{module}.weight", self.rng.uniform(0.5, 1.5, c))
        bias = self.const(f"{module}.bias", self.rng.normal(0, 0.1, c))
        mean = self.const(f"{module}.running_mean", self.rng.normal(0, 0.1, c))
        var = self.const(f"{module}.running_var", self.rng.uniform(0.5, 2.0, c))
        return self.op("BatchNormalization", [x, scale, bias, mean, var], module, epsilon=1e-5,
                       momentum=0.9)

    def model(self, input_shape, output, opset=17, batch="batch", check=True):
        dims = [batch] + list(input_shape)
        graph = helper.make_graph(
            self.nodes, "main_graph",
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, dims)],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, None])],
            self.inits)
        m = helper.make_model(graph, producer_name="veil scripts/export_onnx.py",
                              opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        if check:
            onnx.checker.check_model(m)
        return m


# ----------------------------------------------------------------------------- test models
# Each builder returns (model, input shape, input range, scores value name, note).

def conv_relu_maxpool():
    """Conv (symmetric pads) → Relu → MaxPool → Flatten → Gemm → LogSoftmax."""
    n = Net(1)
    x = n.conv("conv1", "input", 1, 3, 3, pads=(1, 1, 1, 1))
    x = n.op("Relu", [x], "relu1")
    x = n.op("MaxPool", [x], "pool1", kernel_shape=[2, 2], strides=[2, 2])
    x = n.op("Flatten", [x], "flatten", axis=1)
    scores = n.linear("fc", x, 3 * 4 * 4, 4)
    out = n.op("LogSoftmax", [scores], None, axis=1)
    return n.model([1, 8, 8], out), [1, 8, 8], (0.0, 1.0), scores


def cnn_batchnorm_avgpool():
    """Pad → Conv (stride 2) → BatchNormalization → Mul(x, x) → AveragePool (padded) → Conv
    without bias → GlobalAveragePool → Reshape(1, -1) → MatMul + Add → Softmax."""
    n = Net(2)
    pads = n.const("pad_amounts", [0, 0, 1, 1, 0, 0, 0, 0], np.int64)
    x = n.op("Pad", ["input", pads], "pad", mode="constant")
    x = n.conv("conv1", x, 2, 4, 3, stride=2)
    x = n.batch_norm("bn1", x, 4)
    x = n.op("Mul", [x, x], "act1")
    x = n.op("AveragePool", [x], "pool1", kernel_shape=[3, 3], strides=[1, 1],
             pads=[1, 1, 1, 1], count_include_pad=1)
    x = n.conv("conv2", x, 4, 6, 3, bias=False)
    x = n.op("GlobalAveragePool", [x], "gap")
    shape = n.const("flat_shape", [1, -1], np.int64)
    x = n.op("Reshape", [x, shape], "flatten")
    w = n.const("fc.weight_t", n.rng.normal(0, 0.5, (6, 3)))
    x = n.op("MatMul", [x, w], "fc")
    b = n.const("fc.bias", n.rng.normal(0, 0.1, 3))
    scores = n.op("Add", [x, b], "fc")
    out = n.op("Softmax", [scores], None, axis=-1)
    return n.model([2, 9, 9], out), [2, 9, 9], (0.0, 255.0), scores


def mlp_gemm_activations():
    """Gemm with transB=0, alpha and beta → Sigmoid → Gemm → Pow(x, 2) → Dropout → Identity →
    Gemm; opset 13, batch dimension 1."""
    n = Net(3)
    w = n.const("fc1.weight_kn", n.rng.normal(0, 0.3, (12, 8)), raw=False)
    b = n.const("fc1.bias", n.rng.normal(0, 0.1, (1, 8)), raw=False)
    x = n.op("Gemm", ["input", w, b], "fc1", alpha=0.5, beta=2.0, transB=0)
    x = n.op("Sigmoid", [x], "act1")
    x = n.linear("fc2", x, 8, 6)
    two = n.const("two", 2.0)
    x = n.op("Pow", [x, two], "act3")
    x = n.op("Dropout", [x], "drop")
    x = n.op("Identity", [x], "keep")
    scores = n.linear("fc3", x, 6, 3)
    return n.model([12], scores, opset=13, batch=1), [12], (-1.0, 1.0), scores


def residual_scale():
    """Div by a constant (input scaling) → Conv → Relu → Conv (pads 1) → Add(branch, skip) →
    Mul by a per-channel constant → Sub a constant → GlobalAveragePool → Squeeze → Unsqueeze →
    Flatten → Gemm."""
    n = Net(4)
    scale = n.const("input_scale", 255.0)
    x = n.op("Div", ["input", scale], "normalize")
    skip = n.conv("conv1", x, 1, 3, 3, pads=(1, 1, 1, 1))
    x = n.op("Relu", [skip], "relu1")
    x = n.conv("conv2", x, 3, 3, 3, pads=(1, 1, 1, 1))
    x = n.op("Add", [x, skip], "residual")
    gamma = n.const("channel_gain", n.rng.uniform(0.5, 2.0, (1, 3, 1, 1)))
    x = n.op("Mul", [x, gamma], "gain")
    shift = n.const("shift", 0.25)
    x = n.op("Sub", [x, shift], "center")
    x = n.op("GlobalAveragePool", [x], "gap")
    axes = n.const("squeeze_axes", [2, 3], np.int64)
    x = n.op("Squeeze", [x, axes], "squeeze")
    axes2 = n.const("unsqueeze_axes", [2, 3], np.int64)
    x = n.op("Unsqueeze", [x, axes2], "unsqueeze")
    x = n.op("Flatten", [x], "flatten", axis=1)
    scores = n.linear("fc", x, 3, 2)
    return n.model([1, 6, 6], scores), [1, 6, 6], (0.0, 255.0), scores


def square_mlp():
    """The smallest network that runs encrypted quickly: Flatten → Gemm → Mul(x, x) → Gemm."""
    n = Net(5)
    x = n.op("Flatten", ["input"], "flatten", axis=1)
    x = n.linear("fc1", x, 16, 6)
    x = n.op("Mul", [x, x], "act1")
    scores = n.linear("fc2", x, 6, 3)
    return n.model([1, 4, 4], scores), [1, 4, 4], (0.0, 15.0), scores


def leaky_relu():
    """Gemm → LeakyRelu → Gemm → Tanh → Gemm. The importer maps LeakyRelu to Relu: the
    reference is therefore computed with Relu in its place (the note the importer prints says
    so)."""
    n = Net(6)
    x = n.linear("fc1", "input", 5, 4)
    x = n.op("LeakyRelu", [x], "act1", alpha=0.1)
    x = n.linear("fc2", x, 4, 4)
    x = n.op("Tanh", [x], "act2")
    scores = n.linear("fc3", x, 4, 2)
    return n.model([5], scores), [5], (-2.0, 2.0), scores


def gelu_variants():
    """Gemm → GELU written the other ways the Erf pattern appears: x · (1/√2) instead of
    x / √2, 1 + erf with the constant first, and x · ((1 + erf) · 0.5) → Gemm."""
    n = Net(12)
    x = n.linear("fc1", "input", 6, 4)
    inv = n.const("inv_sqrt2", np.float32(1.0 / np.sqrt(2.0)))
    s = n.op("Mul", [x, inv], "gelu")
    e = n.op("Erf", [s], "gelu")
    one = n.const("one", 1.0)
    a = n.op("Add", [one, e], "gelu")
    half = n.const("half", 0.5)
    h = n.op("Mul", [a, half], "gelu")
    g = n.op("Mul", [x, h], "gelu")
    scores = n.linear("fc2", g, 4, 3)
    return n.model([6], scores), [6], (-2.0, 2.0), scores


MODELS = {
    "conv_relu_maxpool": conv_relu_maxpool,
    "cnn_batchnorm_avgpool": cnn_batchnorm_avgpool,
    "mlp_gemm_activations": mlp_gemm_activations,
    "residual_scale": residual_scale,
    "square_mlp": square_mlp,
    "leaky_relu": leaky_relu,
    "gelu_variants": gelu_variants,
}


def reference(model, scores, inputs, leaky_as_relu=False):
    """Outputs of ONNX's reference evaluator for value `scores` (the graph output or the
    value before a final softmax)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    m.graph.output.append(helper.make_tensor_value_info(scores, TensorProto.FLOAT, [None, None]))
    if leaky_as_relu:
        for node in m.graph.node:
            if node.op_type == "LeakyRelu":
                node.op_type = "Relu"
                del node.attribute[:]
    ev = ReferenceEvaluator(m)
    return [ev.run(None, {"input": x[None].astype(np.float32)})[0].reshape(-1).tolist()
            for x in inputs]


def write_test_models():
    os.makedirs(OUT, exist_ok=True)
    for name, build in MODELS.items():
        model, shape, (lo, hi), scores = build()
        rng = np.random.default_rng(100)
        inputs = [rng.uniform(lo, hi, size=shape).astype(np.float32) for _ in range(3)]
        if lo == 0.0 and hi == 255.0:
            inputs = [np.round(x) for x in inputs]
        outputs = reference(model, scores, inputs, leaky_as_relu=(name == "leaky_relu"))
        onnx.save(model, os.path.join(OUT, f"{name}.onnx"))
        with open(os.path.join(OUT, f"{name}.json"), "w") as fh:
            json.dump({
                "model": f"{name}.onnx",
                "input_shape": shape,
                "input_range": [lo, hi],
                "inputs": [x.reshape(-1).tolist() for x in inputs],
                "outputs": outputs,
                "reference": "onnx.reference.ReferenceEvaluator, float32"
                + (", LeakyRelu evaluated as Relu" if name == "leaky_relu" else ""),
            }, fh)
            fh.write("\n")
        print(f"wrote {name}.onnx ({len(model.graph.node)} nodes)")


# ----------------------------------------------------------------------------- invalid models

def write_invalid_models():
    """Models the importer must refuse, each for one reason (tests/data/onnx/invalid/)."""
    out = os.path.join(OUT, "invalid")
    os.makedirs(out, exist_ok=True)
    models = {}
    # An operator with no encrypted equivalent.
    n = Net(7)
    x = n.linear("fc1", "input", 4, 3)
    x = n.op("Abs", [x], "abs")
    models["unsupported_op"] = n.model([4], n.linear("fc2", x, 3, 2))
    # A spatial size that is not fixed.
    n = Net(8)
    x = n.conv("conv1", "input", 1, 2, 3)
    x = n.op("GlobalAveragePool", [x], "gap")
    x = n.op("Flatten", [x], "flatten", axis=1)
    m = n.model([1, "height", "width"], n.linear("fc", x, 2, 2))
    models["dynamic_shape"] = m
    # A node reads a weight no initialiser provides.
    n = Net(9)
    x = n.op("Gemm", ["input", "fc1.weight", "fc1.bias"], "fc1", transB=1)
    models["missing_initializer"] = n.model([4], x, check=False)
    # Erf outside the GELU pattern.
    n = Net(10)
    x = n.linear("fc1", "input", 4, 3)
    x = n.op("Erf", [x], "erf")
    models["erf_alone"] = n.model([4], n.linear("fc2", x, 3, 2))
    # A ceil_mode average pool whose last window runs past the input (5 → 3 windows of 2).
    n = Net(11)
    x = n.conv("conv1", "input", 1, 2, 1)
    x = n.op("AveragePool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    x = n.op("Flatten", [x], "flatten", axis=1)
    models["avgpool_ceil_overhang"] = n.model([1, 5, 5], n.linear("fc", x, 18, 2))
    for name, m in models.items():
        onnx.save(m, os.path.join(out, f"{name}.onnx"))
        print(f"wrote invalid/{name}.onnx")


if __name__ == "__main__":
    write_test_models()
    write_invalid_models()
