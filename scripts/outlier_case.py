#!/usr/bin/env python3
"""Issue 12's outlier case on the shipped MNIST digits: a dense network whose first layer's
rows each hold one weight 100× the largest of the others.

    python3 scripts/outlier_case.py /tmp/outlier.onnx
    veil report /tmp/outlier.onnx --input-range 0,255 --images models/data/mnist/test-images-idx3-ubyte.gz --labels models/data/mnist/test-labels-idx1-ubyte.gz
    veil report /tmp/outlier.onnx --input-range 0,255 --weight-bits auto --images ... --labels ...

Needs torch (CPU). Trains Flatten → Linear(784, 32) → x*x → Linear(32, 10) for two epochs on
the shipped training digits (seed 1, a few seconds), then sets, in each row of the first layer,
the weight of one pixel of the top image row (always 0 in MNIST, so the float accuracy does not
change) to 100× the row's largest weight, and exports the module with torch.onnx.export.
"""

import gzip
import os
import sys

import numpy as np
import torch
from torch import nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "models", "data", "mnist")


def idx(name, offset):
    with gzip.open(os.path.join(DATA, name)) as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def main(out):
    torch.manual_seed(1)
    x = torch.from_numpy(idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32))
    y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))

    class Square(nn.Module):
        def forward(self, v):
            return v * v

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(784, 32)
            self.act1 = Square()
            self.fc2 = nn.Linear(32, 10)

        def forward(self, v):
            return self.fc2(self.act1(self.fc1(self.flatten(v / 255.0))))

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        perm = torch.randperm(len(x))
        for s in range(0, len(x), 128):
            i = perm[s:s + 128]
            loss = nn.functional.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        w = model.fc1.weight
        for r in range(w.shape[0]):
            w[r, r % 28] = 100.0 * w[r].abs().max()
    model.eval()
    torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), out, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["scores"])
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/outlier.onnx")
