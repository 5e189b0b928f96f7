#!/usr/bin/env python3
"""Train the CryptoNets network (square activations, sum pooling) and write a Veil model.

    python3 training/train_cryptonets.py --dataset mnist     # models/cryptonets-mnist.{ron,safetensors}
    python3 training/train_cryptonets.py --dataset fashion   # models/cryptonets-fashion.{ron,safetensors}
    python3 training/train_cryptonets.py --dataset mnist --export-onnx-only   # models/cryptonets-mnist.onnx

After training, and alone with --export-onnx-only, the saved network is also exported with
torch.onnx.export to models/<name>.onnx: a module computing the declared function on raw bytes
with the saved tensors (conv1 with padding, x*x, average pool × 9, conv2, average pool × 9, flatten,
fc1, x*x, fc2; module names as the layer names of the model file). Compiled with
--input-range 0,255 it gives exactly the plan of models/<name>.ron.

The network trained is exactly the one that runs encrypted (see models/README.md):

    input 1x28x28 raw bytes 0..255
    conv1  5 maps 5x5 stride 2, zero padding top/left 1   -> 5x13x13
    act1   x^2
    pool1  3x3 window sum, stride 1, zero padding 1        -> 5x13x13
    conv2  50 maps 5x5 stride 2                             -> 50x5x5
    pool2  3x3 window sum, stride 1, zero padding 1        -> 50x5x5
    flatten                                                 -> 1250
    fc1    100, act2 x^2, fc2 10

For well-conditioned training the model sees pixels/255 and averages (window sum / 9); both
constants are folded into the following layer's weights when saving (conv1 / 255, conv2 / 9,
fc1 / 9), so the saved file computes the declared function on raw bytes. The training form
also has batch norms (after conv1, after pool2, after fc1); after training their statistics are
recomputed over the whole unaugmented training set and they are folded into conv1 and fc1. After saving, the
script reloads the safetensors file and runs an independent NumPy forward pass of the declared
network on the raw test bytes: that accuracy is the one reported.

Needs: torch, numpy, safetensors (pip install torch numpy safetensors).
"""

import argparse
import gzip
import json
import os
import struct
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DATASETS = {
    "mnist": {
        "dir": os.path.join(ROOT, "models", "data", "mnist"),
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("test-images-idx3-ubyte.gz", "test-labels-idx1-ubyte.gz"),
        "classes": [str(d) for d in range(10)],
        "name": "cryptonets-mnist",
        "epochs": 100,
        "batch": 64,
        "augment": "affine",
    },
    "fashion": {
        "dir": "/usr/share/datasets/fashion-mnist",
        "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
        "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "name": "cryptonets-fashion",
        "epochs": 20,
        "batch": 128,
        "augment": "none",
    },
}


# ----------------------------------------------------------------------------- data

def read_idx(path, magic, ndim):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    found, = struct.unpack(">I", data[:4])
    if found != magic:
        raise SystemExit(f"{path}: IDX magic {found:#010x}, expected {magic:#010x}")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise SystemExit(f"{path}: {body.size} bytes of data, header declares {dims}")
    return body.reshape(dims)


def load_split(spec, part):
    img_name, lab_name = spec[part]
    images = read_idx(os.path.join(spec["dir"], img_name), 0x803, 3)
    labels = read_idx(os.path.join(spec["dir"], lab_name), 0x801, 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise SystemExit(f"{part}: images {images.shape} vs labels {labels.shape}")
    return images, labels.astype(np.int64)


# ----------------------------------------------------------------------------- model file

RON_LAYERS = """\
    layers: [
        Layer(name: "conv1", op: Conv2d(out_channels: 5, kernel: (5, 5), stride: (2, 2),
              padding: (top: 1, left: 1, bottom: 0, right: 0), bias: true)),
        Layer(name: "act1", op: Activation(Square)),
        Layer(name: "pool1", op: SumPool2d(kernel: (3, 3), stride: (1, 1),
              padding: (top: 1, left: 1, bottom: 1, right: 1))),
        Layer(name: "conv2", op: Conv2d(out_channels: 50, kernel: (5, 5), stride: (2, 2),
              padding: (top: 0, left: 0, bottom: 0, right: 0), bias: true)),
        Layer(name: "pool2", op: SumPool2d(kernel: (3, 3), stride: (1, 1),
              padding: (top: 1, left: 1, bottom: 1, right: 1))),
        Layer(name: "flatten", op: Flatten),
        Layer(name: "fc1", op: Dense(out_features: 100, bias: true)),
        Layer(name: "act2", op: Activation(Square)),
        Layer(name: "fc2", op: Dense(out_features: 10, bias: true)),
    ],
"""


def write_ron(path, name, weights_file, classes, comment):
    class_list = ", ".join(json.dumps(c) for c in classes)
    text = (
        f"// {comment}\n"
        "Model(\n"
        f"    name: {json.dumps(name)},\n"
        "    input: Input(shape: [1, 28, 28], min: 0.0, max: 255.0),\n"
        f"    weights: Some({json.dumps(weights_file)}),\n"
        f"    classes: [{class_list}],\n"
        f"{RON_LAYERS}"
        ")\n"
    )
    with open(path, "w") as fh:
        fh.write(text)


# ----------------------------------------------------------------------------- NumPy check

def np_conv(x, w, b, stride, pad):
    """x [N,C,H,W], w [O,C,kh,kw]; pad = (top, left, bottom, right); via im2col."""
    top, left, bottom, right = pad
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x[:, :, i:i + stride * oh:stride, j:j + stride * ow:stride]
    cols = cols.reshape(n, c * kh * kw, oh * ow)
    out = np.einsum("ok,nkp->nop", w.reshape(o, -1), cols)
    return out.reshape(n, o, oh, ow) + b[None, :, None, None]


def np_sum_pool3(x):
    """3x3 window sum, stride 1, zero padding 1 on every side."""
    h, w = x.shape[2:]
    p = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    return sum(p[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3))


def np_forward(t, raw):
    """The declared network on raw bytes, float64."""
    x = raw.astype(np.float64)[:, None]
    x = np_conv(x, t["conv1.weight"], t["conv1.bias"], 2, (1, 1, 0, 0))
    x = x * x
    x = np_sum_pool3(x)
    x = np_conv(x, t["conv2.weight"], t["conv2.bias"], 2, (0, 0, 0, 0))
    x = np_sum_pool3(x)
    x = x.reshape(x.shape[0], -1)
    x = x @ t["fc1.weight"].T + t["fc1.bias"]
    x = x * x
    return x @ t["fc2.weight"].T + t["fc2.bias"]


def verify(weights_path, images, labels):
    from safetensors.numpy import load_file
    t = {k: v.astype(np.float64) for k, v in load_file(weights_path).items()}
    expected = {
        "conv1.weight": (5, 1, 5, 5), "conv1.bias": (5,),
        "conv2.weight": (50, 5, 5, 5), "conv2.bias": (50,),
        "fc1.weight": (100, 1250), "fc1.bias": (100,),
        "fc2.weight": (10, 100), "fc2.bias": (10,),
    }
    shapes = {k: tuple(v.shape) for k, v in t.items()}
    if shapes != expected:
        raise SystemExit(f"{weights_path}: tensors {shapes}, expected {expected}")
    correct = 0
    for i in range(0, len(images), 500):
        logits = np_forward(t, images[i:i + 500])
        correct += int((logits.argmax(1) == labels[i:i + 500]).sum())
    return correct / len(images)


# ----------------------------------------------------------------------------- ONNX

def export_onnx(torch, weights_path, onnx_path):
    """Exports the saved network (the function the model file declares) with torch.onnx.export."""
    from safetensors.numpy import load_file
    nn = torch.nn
    F = torch.nn.functional

    class Square(nn.Module):
        def forward(self, x):
            return x * x

    class SumPool(nn.Module):
        def forward(self, x):
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=True) * 9.0

    class Saved(nn.Module):
        def __init__(self):
            super().__init__()
            # Padding 1 on every side: with stride 2 over 28 rows no window reaches the bottom
            # or right padding, so this is the declared top/left padding (F.pad would export
            # as a subgraph of shape operations with a dynamic batch).
            self.conv1 = nn.Conv2d(1, 5, 5, stride=2, padding=1)
            self.act1 = Square()
            self.pool1 = SumPool()
            self.conv2 = nn.Conv2d(5, 50, 5, stride=2)
            self.pool2 = SumPool()
            self.flatten = nn.Flatten()
            self.fc1 = nn.Linear(1250, 100)
            self.act2 = Square()
            self.fc2 = nn.Linear(100, 10)

        def forward(self, x):
            x = self.pool1(self.act1(self.conv1(x)))
            x = self.flatten(self.pool2(self.conv2(x)))
            return self.fc2(self.act2(self.fc1(x)))

    model = Saved().eval()
    tensors = {k: torch.from_numpy(v) for k, v in load_file(weights_path).items()}
    model.load_state_dict(tensors)
    torch.onnx.export(model, (torch.zeros(1, 1, 28, 28),), onnx_path, opset_version=17,
                      dynamo=False, input_names=["input"], output_names=["scores"],
                      dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}})
    print(f"wrote {onnx_path}")


# ----------------------------------------------------------------------------- training

def build(torch):
    nn = torch.nn
    F = torch.nn.functional

    class CryptoNets(nn.Module):
        """Training form: pixels/255 in, average pools, batch norms; all folded when saving."""

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 5, 5, stride=2)
            self.bn1 = nn.BatchNorm2d(5)
            self.conv2 = nn.Conv2d(5, 50, 5, stride=2)
            self.bn2 = nn.BatchNorm2d(50)
            self.fc1 = nn.Linear(1250, 100)
            self.bn3 = nn.BatchNorm1d(100)
            self.fc2 = nn.Linear(100, 10)

        def forward(self, x01):
            x = F.pad(x01, (1, 0, 1, 0))  # left 1, right 0, top 1, bottom 0
            x = self.bn1(self.conv1(x))
            x = x * x
            x = F.avg_pool2d(x, 3, 1, 1, count_include_pad=True)
            x = self.conv2(x)
            x = self.bn2(F.avg_pool2d(x, 3, 1, 1, count_include_pad=True))
            x = torch.flatten(x, 1)
            x = self.bn3(self.fc1(x))
            x = x * x
            return self.fc2(x)

    return CryptoNets()


def fold(model):
    """The saved form: batch norms (eval mode, affine) folded into the neighbouring linear
    layers, then the training-form constants (1/255 input scale, 1/9 of each average pool)
    folded into the layer that follows, so the tensors compute the declared function."""
    sd = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}

    def bn(prefix, eps):
        g = sd[prefix + ".weight"] / np.sqrt(sd[prefix + ".running_var"] + eps)
        return g, sd[prefix + ".bias"] - sd[prefix + ".running_mean"] * g

    # conv1 -> bn1: scale each output map.
    g1, d1 = bn("bn1", model.bn1.eps)
    w1 = sd["conv1.weight"] * g1[:, None, None, None]
    b1 = sd["conv1.bias"] * g1 + d1
    # pool2 -> bn2 -> flatten -> fc1: a per-channel affine map on fc1's input.
    g2, d2 = bn("bn2", model.bn2.eps)
    g2r, d2r = np.repeat(g2, 25), np.repeat(d2, 25)  # flatten order: channel, row, col
    w3 = sd["fc1.weight"] * g2r[None, :]
    b3 = sd["fc1.bias"] + sd["fc1.weight"] @ d2r
    # fc1 -> bn3: scale each output.
    g3, d3 = bn("bn3", model.bn3.eps)
    w3 = w3 * g3[:, None]
    b3 = b3 * g3 + d3
    return {
        "conv1.weight": w1 / 255.0,
        "conv1.bias": b1,
        "conv2.weight": sd["conv2.weight"] / 9.0,
        "conv2.bias": sd["conv2.bias"],
        "fc1.weight": w3 / 9.0,
        "fc1.bias": b3,
        "fc2.weight": sd["fc2.weight"],
        "fc2.bias": sd["fc2.bias"],
    }


def recalibrate_batch_norms(torch, model, x):
    """Replace the batch norms' running statistics (an exponential average over the last
    augmented batches, which moves from one epoch to the next) by their exact average over the
    whole unaugmented training set. These are the statistics folded into the saved weights."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            model(x[i:i + 1000])


def augment(torch, x, kind, gen):
    """Random small rotations, scalings and shifts ("affine"), integer shifts of up to 2 pixels
    ("shift") or nothing ("none")."""
    F = torch.nn.functional
    n = x.shape[0]
    if kind == "none":
        return x
    if kind == "affine":
        angle = (torch.rand(n, generator=gen) * 2 - 1) * (12 * np.pi / 180)
        scale = 1 + (torch.rand(n, generator=gen) * 2 - 1) * 0.10
        shift = (torch.rand(n, 2, generator=gen) * 2 - 1) * (2.0 / 14)  # +-2 px
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, x.shape, align_corners=False)
        return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    # Integer shifts of up to 2 pixels in each direction.
    padded = F.pad(x, (2, 2, 2, 2))
    oy = torch.randint(0, 5, (n,), generator=gen)
    ox = torch.randint(0, 5, (n,), generator=gen)
    ar = torch.arange(28)
    rows = (oy[:, None] + ar)[:, :, None]
    cols = (ox[:, None] + ar)[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols][:, None]


def main():
    ap = argparse.ArgumentParser(description="Train the CryptoNets network and write a Veil model file.")
    ap.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    ap.add_argument("--data-dir", help="folder with the IDX files (default: per dataset)")
    ap.add_argument("--epochs", type=int, help="default: 100 for mnist, 20 for fashion")
    ap.add_argument("--batch", type=int, help="default: 64 for mnist, 128 for fashion")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--augment", choices=["affine", "shift", "none"],
                    help="default: affine for mnist, none for fashion")
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1 is fastest on a busy 2-core machine)")
    ap.add_argument("--out", default=os.path.join(ROOT, "models"))
    ap.add_argument("--export-onnx-only", action="store_true",
                    help="only export the saved network in --out to <name>.onnx")
    args = ap.parse_args()

    import torch
    if args.export_onnx_only:
        name = DATASETS[args.dataset]["name"]
        export_onnx(torch, os.path.join(args.out, f"{name}.safetensors"),
                    os.path.join(args.out, f"{name}.onnx"))
        return 0
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    spec = dict(DATASETS[args.dataset])
    if args.data_dir:
        spec["dir"] = args.data_dir
    epochs = args.epochs or spec["epochs"]
    batch = args.batch or spec["batch"]
    if args.augment:
        spec["augment"] = args.augment

    train_x, train_y = load_split(spec, "train")
    test_x, test_y = load_split(spec, "test")
    print(f"{args.dataset}: {len(train_x)} train, {len(test_x)} test images from {spec['dir']}")

    xt = torch.from_numpy(train_x.astype(np.float32) / 255.0)[:, None]
    yt = torch.from_numpy(train_y)
    xv = torch.from_numpy(test_x.astype(np.float32) / 255.0)[:, None]
    yv = torch.from_numpy(test_y)

    model = build(torch)
    # Small initial weights keep the two squarings from blowing up early on.
    with torch.no_grad():
        for layer in (model.conv1, model.conv2, model.fc1, model.fc2):
            layer.weight.mul_(0.5)
            layer.bias.zero_()
        # Start the squares' inputs at a small spread around zero.
        model.bn1.weight.fill_(0.5)
        model.bn3.weight.fill_(0.5)
    steps_per_epoch = (len(xt) + batch - 1) // batch
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    gen = torch.Generator().manual_seed(args.seed)

    def accuracy(x, y):
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
        model.train()
        return (pred == y).float().mean().item()

    start = time.time()
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * batch:(s + 1) * batch]
            xb = augment(torch, xt[idx], spec["augment"], gen)
            loss = loss_fn(model(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.item()
        if epoch % 5 == 0 or epoch == epochs:
            print(f"epoch {epoch:3d}  loss {total / steps_per_epoch:.4f}  "
                  f"train acc {accuracy(xt, yt):.4f}  test acc {accuracy(xv, yv):.4f}  "
                  f"{time.time() - start:.0f}s", flush=True)
    print(f"test acc with the running batch-norm statistics: {accuracy(xv, yv):.4f}")
    recalibrate_batch_norms(torch, model, xt)
    train_seconds = time.time() - start
    torch_acc = accuracy(xv, yv)

    tensors = fold(model)
    tensors = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}

    from safetensors.numpy import save_file
    os.makedirs(args.out, exist_ok=True)
    name = spec["name"]
    weights_file = f"{name}.safetensors"
    weights_path = os.path.join(args.out, weights_file)
    save_file(tensors, weights_path, metadata={
        "format": "pt",
        "model": name,
        "trainer": "training/train_cryptonets.py",
        "dataset": args.dataset,
        "epochs": str(epochs),
        "batch": str(batch),
        "augment": spec["augment"],
        "lr": str(args.lr),
        "weight_decay": str(args.weight_decay),
        "seed": str(args.seed),
    })
    ron_path = os.path.join(args.out, f"{name}.ron")
    write_ron(ron_path, name, weights_file, spec["classes"],
              f"CryptoNets on {args.dataset}: written by training/train_cryptonets.py "
              f"--dataset {args.dataset} (see models/README.md)")

    float_acc = verify(weights_path, test_x, test_y)
    print(f"wrote {ron_path} and {weights_path}")
    export_onnx(torch, weights_path, os.path.join(args.out, f"{name}.onnx"))
    print(f"training time {train_seconds:.0f}s ({epochs} epochs, {args.threads} threads)")
    print(f"torch accuracy (training form) on {len(test_x)} test images: {torch_acc:.4f}")
    print(f"float accuracy (NumPy, declared network on raw bytes, reloaded file): {float_acc:.4f}")
    for k, v in tensors.items():
        print(f"  {k:14s} {str(list(v.shape)):16s} max |w| {np.abs(v).max():.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
