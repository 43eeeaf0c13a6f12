#!/usr/bin/env python3
"""Writes the small seed files of the fuzz drivers (fuzz/seeds/<target>/) with the standard library only.

Usage: python3 tools/make_fuzz_seeds.py [fuzz/seeds]. The files are committed; rerun only to change them.
"""
import gzip
import io
import json
import os
import struct
import sys
import zipfile
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "seeds")


def write(target, name, data):
    os.makedirs(os.path.join(OUT, target), exist_ok=True)
    with open(os.path.join(OUT, target, name), "wb") as f:
        f.write(data)


def png(width, height, channels, pixels):
    """A PNG (8-bit gray, RGB or RGBA by channel count) of the given row-major bytes."""
    color_type = {1: 0, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\x00" + pixels[y * width * channels:(y + 1) * width * channels] for y in range(height))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def safetensors(tensors, metadata):
    """tensors: list of (name, dtype, shape, raw bytes)."""
    header, offset, data = {}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(count, start=0.0):
    return struct.pack("<%df" % count, *[start + 0.01 * i for i in range(count)])


# A points model as `onestep train` writes it: MLP in_dim 2, hidden 4, one hidden layer, noise_channels 4.
MLP = {"arch": "mlp", "in_dim": 2, "hidden": 4, "num_layers": 1, "noise_channels": 4, "label_dim": 0,
       "dropout": 0.0, "max_positions": 10000.0}
MLP_SHAPES = [("map_layer0.weight", [4, 4]), ("map_layer0.bias", [4]), ("map_layer1.weight", [4, 4]),
              ("map_layer1.bias", [4]), ("input.weight", [4, 2]), ("input.bias", [4]), ("layers.0.weight", [4, 4]),
              ("layers.0.bias", [4]), ("output.weight", [2, 4]), ("output.bias", [2])]


def mlp_tensors(prefix, start):
    out = []
    for name, shape in MLP_SHAPES:
        count = 1
        for d in shape:
            count *= d
        out.append((prefix + "model." + name, "F32", shape, f32(count, start)))
    return out


model_meta = {"format": "pt", "onestep": json.dumps({"model": MLP, "precond": {"sigma_data": 0.5, "sigma_min": 0.002}})}
model_file = safetensors(mlp_tensors("", 0.0), model_meta)
train_meta = dict(model_meta)
train_meta["onestep_train"] = json.dumps({"step": 2, "images_seen": 32, "emas": ["0.9"], "optimizer": "adam",
                                          "loader": {"epoch": 0, "position": 32}})
checkpoint_file = safetensors(mlp_tensors("", 0.0) + mlp_tensors("ema.0.9.", 1.0) +
                              [("optim.step", "I64", [1], struct.pack("<q", 2))], train_meta)
for target in ("safetensors", "checkpoint"):
    write(target, "points-model.safetensors", model_file)
    write(target, "points-checkpoint.safetensors", checkpoint_file)
write("safetensors", "dtypes.safetensors",
      safetensors([("a", "F16", [2], b"\x00\x3c\x00\x40"), ("b", "I64", [1, 1], struct.pack("<q", -5)),
                   ("c", "U8", [3], b"\x01\x02\x03"), ("d", "BF16", [0], b"")], {"note": "dtypes"}))

fixtures = os.path.join(ROOT, "tests", "fixtures", "io")
for name in ("f4_2x3.npy", "u1_4.npy", "i8_3_v2.npy", "f8_fortran.npy"):
    write("npy", name, open(os.path.join(fixtures, name), "rb").read())
for name in ("savez.npz", "savez_compressed.npz"):
    data = open(os.path.join(fixtures, name), "rb").read()
    write("npz", name, data)
    write("zip", name, data)

images = {"gray.png": png(4, 4, 1, bytes(range(0, 160, 10))), "rgb.png": png(3, 2, 3, bytes(range(18))),
          "rgba.png": png(2, 2, 4, bytes(range(0, 256, 16)))}
for name, data in images.items():
    write("image", name, data)
for compression, name in ((zipfile.ZIP_STORED, "images-stored.zip"), (zipfile.ZIP_DEFLATED, "images-deflated.zip")):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        z.writestr("00000/img00000000.png", images["gray.png"])
        z.writestr("00000/img00000001.png", images["gray.png"])
        z.writestr("dataset.json", json.dumps({"labels": [["00000/img00000000.png", 0], ["00000/img00000001.png", 1]]}))
    write("zip", name, buffer.getvalue())

idx = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 4, 4) + bytes(range(32))
write("idx", "images-idx3-ubyte", idx)
write("idx", "images-idx3-ubyte.gz", gzip.compress(idx, mtime=0))

for name in ("points-edm.toml", "mlp-2d.toml", "fmnist-ict-cpu.toml"):
    write("toml", name, open(os.path.join(ROOT, "configs", name), "rb").read())
write("dataset_json", "labels.json", json.dumps({"labels": [["a.png", 0], ["sub/b.png", 3]]}).encode())
write("dataset_json", "null.json", b'{"labels": null}')
