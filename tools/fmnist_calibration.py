#!/usr/bin/env python3
"""Image sets that calibrate FD-FMNIST for readers: Fashion-MNIST training images, unchanged and degraded in known
ways, written as uint8 .npy arrays [N, 28, 28, 1] that `onestep eval --images X.npy --ref test.npz` scores.
Standard library only (no numpy, no torch), so it runs with any python3:

    python3 tools/fmnist_calibration.py OUT_DIR [FASHION_MNIST_DIR]
    for f in OUT_DIR/*.npy; do build/onestep eval --images "$f" --ref fmnist-test.npz --metric fd-fmnist; done

Sets (each from the first 10,000 training images unless stated; their FDs are listed in docs/results.md, "What an
FD-FMNIST number means"):
- train10k: unchanged (the data floor against the test set)
- blur1, blur2: Gaussian blur, standard deviation 1 and 2 pixels (kernel radius 3 sigma, edges clamped)
- noise0.1, noise0.2, noise0.4: Gaussian noise of that standard deviation in the [-1, 1] scale, clipped
- quant4: 4 gray levels (posterized)
- oneclass: the first 6,000 training images of class 0 (T-shirt/top) only: perfect images, no diversity
- fiveclasses: 10,000 training images of classes 0-4 only
"""
import gzip
import math
import os
import random
import struct
import sys


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def write_npy(path, images, n, h=28, w=28):
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d, 1), }" % (n, h, w)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(bytes(images))


def gaussian_kernel(sigma):
    radius = int(math.ceil(3 * sigma))
    k = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    s = sum(k)
    return [v / s for v in k], radius


def blur_rows(rows, k, r):  # each row a list of 28 floats; edges clamped
    out = []
    for row in rows:
        padded = [row[0]] * r + row + [row[-1]] * r
        acc = [0.0] * 28
        for j, kj in enumerate(k):
            acc = [a + kj * s for a, s in zip(acc, padded[j:j + 28])]
        out.append(acc)
    return out


def blur(img, sigma):  # img: list of 784 floats; separable Gaussian
    k, r = gaussian_kernel(sigma)
    rows = blur_rows([img[y * 28:(y + 1) * 28] for y in range(28)], k, r)
    cols = blur_rows([list(c) for c in zip(*rows)], k, r)
    return [v for row in zip(*cols) for v in row]


def to_u8(v):  # v in [0, 255] scale
    return min(255, max(0, int(round(v))))


def main():
    out = sys.argv[1]
    src = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    os.makedirs(out, exist_ok=True)
    (n_all, h, w), pixels = read_idx(os.path.join(src, "train-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(src, "train-labels-idx1-ubyte.gz"))
    assert (h, w) == (28, 28)
    n = 10000
    first = pixels[:n * 784]
    write_npy(os.path.join(out, "train10k.npy"), first, n)
    images = [list(first[i * 784:(i + 1) * 784]) for i in range(n)]
    for sigma in (1.0, 2.0):
        data = bytearray()
        for img in images:
            data.extend(to_u8(v) for v in blur([float(p) for p in img], sigma))
        write_npy(os.path.join(out, "blur%g.npy" % sigma), data, n)
    rng = random.Random(20261130)
    for std in (0.1, 0.2, 0.4):  # in the [-1, 1] scale: 127.5 * std in pixel units
        data = bytearray()
        for img in images:
            data.extend(to_u8(p + 127.5 * std * rng.gauss(0.0, 1.0)) for p in img)
        write_npy(os.path.join(out, "noise%g.npy" % std), data, n)
    data = bytearray()
    for img in images:  # 4 levels: 0, 85, 170, 255
        data.extend(to_u8(85 * round(p / 85)) for p in img)
    write_npy(os.path.join(out, "quant4.npy"), data, n)
    for name, classes, count in (("oneclass", {0}, 6000), ("fiveclasses", {0, 1, 2, 3, 4}, 10000)):
        picked = [i for i in range(n_all) if labels[i] in classes][:count]
        data = bytearray()
        for i in picked:
            data.extend(pixels[i * 784:(i + 1) * 784])
        write_npy(os.path.join(out, name + ".npy"), data, len(picked))
    print("wrote", sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
