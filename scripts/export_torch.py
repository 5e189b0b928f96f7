#!/usr/bin/env python3
"""Export small PyTorch modules to ONNX with torch.onnx.export, beside torch's own outputs.

    python3 scripts/export_torch.py        # tests/data/onnx/torch_*.{onnx,json}

Needs: torch (CPU is enough) and onnx. No GPU, no network. Runs in a few seconds.

Where scripts/export_onnx.py writes graphs node by node in the form the exporter gives, this
script runs the exporter itself, so the committed files are what a PyTorch user's
`torch.onnx.export(model, x, "net.onnx")` produces: constant-folded Constant nodes, Conv with
its own pads, Gemm with transB=1, nn.GELU as the Erf pattern (opset 17) or the Gelu operator
(opset 20), x * x and x ** 2, ceil_mode pools, grouped and depthwise Conv. Together the modules
cover every operator family the importer supports.

Beside each `torch_<name>.onnx` a `torch_<name>.json` holds a few fixed inputs, drawn from a
fixed seed in the declared input range, and torch's own float32 outputs for them (the module
run in eval mode): the independent reference the Rust tests compare Veil's float evaluation
against. A module that ends in Softmax is recorded before it (the importer drops a final
softmax; the argmax is the same). The legacy TorchScript exporter is used (dynamo=False): the
torch.export-based one needs the onnxscript package.
"""

import json
import os

import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "onnx")


class Scored(nn.Module):
    """`body` gives the class scores; `forward` optionally ends in a softmax, as trained
    classifiers are often exported."""

    def __init__(self, body, final=None):
        super().__init__()
        self.body = body
        self.final = final

    def forward(self, x):
        s = self.body(x)
        return s if self.final is None else self.final(s)


class Square(nn.Module):
    def __init__(self, pow_op=False):
        super().__init__()
        self.pow_op = pow_op

    def forward(self, x):
        return x ** 2 if self.pow_op else x * x


class Residual(nn.Module):
    """conv → x*x → conv (+ skip) → pow 2 → average pool → flatten → linear."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.act1 = Square()
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.act2 = Square(pow_op=True)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(3 * 3 * 3, 4)

    def forward(self, x):
        skip = self.conv1(x / 16.0)
        y = self.conv2(self.act1(skip)) + skip
        y = self.pool(self.act2(y) * 0.5)
        return self.fc(torch.flatten(y, 1))


def conv_bn_relu_maxpool():
    """Conv (pads 1) → ReLU → BatchNorm2d (after the ReLU, so not folded by the exporter) →
    MaxPool → Conv (stride 2, pads 1) → Tanh → AvgPool → Flatten → Linear → Dropout → Linear →
    Softmax."""
    body = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.Tanh(), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(6, 10), nn.Dropout(0.2), nn.Linear(10, 3))
    return Scored(body, nn.Softmax(dim=1)), [1, 12, 12], (0.0, 1.0), 17


def gelu_mlp():
    """Flatten → Linear → GELU (the Erf pattern of opset 17) → Linear → Sigmoid →
    BatchNorm1d → Linear."""
    body = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 8), nn.GELU(), nn.Linear(8, 8), nn.Sigmoid(),
        nn.BatchNorm1d(8), nn.Linear(8, 3))
    return Scored(body), [3, 4], (-2.0, 2.0), 17


def gelu_op():
    """Linear → GELU → Linear with opset 20, where GELU is one Gelu operator."""
    body = nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.Linear(5, 3))
    return Scored(body), [6], (-1.0, 1.0), 20


def grouped_ceil():
    """Grouped Conv (2 groups) → ReLU → depthwise Conv (4 groups) → ReLU → MaxPool with
    ceil_mode (5×5 → 3×3: an extra window) → AvgPool with ceil_mode (no extra window) →
    Flatten → Linear → LogSoftmax."""
    body = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(),
        nn.MaxPool2d(2, ceil_mode=True), nn.AvgPool2d(2, stride=1, ceil_mode=True),
        nn.Flatten(), nn.Linear(4 * 2 * 2, 3))
    return Scored(body, nn.LogSoftmax(dim=1)), [2, 5, 5], (0.0, 1.0), 17


def residual_square():
    """Input scaling, residual Add, x * x and x ** 2, a scalar Mul, AvgPool, Flatten, Linear:
    a network of squares that runs encrypted."""
    return Scored(Residual()), [1, 6, 6], (0.0, 15.0), 17


def square_cnn():
    """A small CryptoNets-style network: Conv (stride 2) → x*x → Flatten → Linear → x*x →
    Dropout → Linear → LogSoftmax; runs encrypted."""
    body = nn.Sequential(
        nn.Conv2d(1, 2, 3, stride=2), Square(), nn.Flatten(), nn.Linear(2 * 3 * 3, 6),
        Square(), nn.Dropout(0.5), nn.Linear(6, 3))
    return Scored(body, nn.LogSoftmax(dim=1)), [1, 8, 8], (0.0, 15.0), 13


MODELS = {
    "conv_bn_relu_maxpool": conv_bn_relu_maxpool,
    "gelu_mlp": gelu_mlp,
    "gelu_op": gelu_op,
    "grouped_ceil": grouped_ceil,
    "residual_square": residual_square,
    "square_cnn": square_cnn,
}


def randomise_batch_norms(model, gen):
    """Fresh BatchNorm statistics are the identity; give them values worth testing."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
            m.weight.data.copy_(torch.rand(c, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def main():
    os.makedirs(OUT, exist_ok=True)
    for seed, (name, build) in enumerate(MODELS.items()):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(100 + seed)
        model, shape, (lo, hi), opset = build()
        with torch.no_grad():
            randomise_batch_norms(model, gen)
        model.eval()
        inputs = [torch.rand([1] + shape, generator=gen) * (hi - lo) + lo for _ in range(3)]
        if hi == 15.0:
            inputs = [torch.round(x) for x in inputs]
        with torch.no_grad():
            outputs = [model.body(x).reshape(-1).tolist() for x in inputs]
        path = os.path.join(OUT, f"torch_{name}.onnx")
        torch.onnx.export(model, (inputs[0],), path, opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        with open(os.path.join(OUT, f"torch_{name}.json"), "w") as fh:
            json.dump({
                "model": f"torch_{name}.onnx",
                "input_shape": shape,
                "input_range": [lo, hi],
                "inputs": [x.reshape(-1).tolist() for x in inputs],
                "outputs": outputs,
                "reference": f"torch {torch.__version__.split('+')[0]} module outputs, float32"
                + (" (before the final softmax)" if model.final is not None else ""),
            }, fh)
            fh.write("\n")
        print(f"wrote torch_{name}.onnx (opset {opset})")


if __name__ == "__main__":
    main()
