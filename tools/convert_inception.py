#!/usr/bin/env python3
"""Convert pytorch-fid's FID Inception weights to safetensors for `onestep eval --metric fid --detector FILE`.

Input: pt_inception-2015-12-05-6726825d.pth, the state dict pytorch-fid publishes
(https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth),
ported from the TensorFlow graph inception-2015-12-05 that FID is defined with.

    python3 tools/convert_inception.py pt_inception-2015-12-05-6726825d.pth inception-fid.safetensors

Needs only torch (no pytorch-fid, no safetensors package). Tensor names are kept as they are ("Conv2d_1a_3x3.conv.weight",
"Mixed_7c.branch_pool.bn.running_var", ...): onestep's Inception module (src/metrics/inception.h) uses the same
names. num_batches_tracked counters are dropped; the fc classifier is kept (onestep ignores it).
"""
import argparse
import json
import struct
import sys

import torch

# 470 tensors (weights + batch-norm statistics) without the fc layer: 21,785,568 parameters + 34,432 statistics.
EXPECTED_TENSORS = 470
EXPECTED_VALUES = 21_820_000


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous().cpu()
        blob = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pth", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("out", help="output .safetensors")
    args = parser.parse_args()
    state = torch.load(args.pth, map_location="cpu", weights_only=True)
    if "state_dict" in state:
        state = state["state_dict"]
    tensors = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    body = {k: v for k, v in tensors.items() if not k.startswith("fc.")}
    values = sum(v.numel() for v in body.values())
    if len(body) != EXPECTED_TENSORS or values != EXPECTED_VALUES:
        sys.exit(f"{args.pth}: {len(body)} tensors / {values} values, expected {EXPECTED_TENSORS} / "
                 f"{EXPECTED_VALUES}: not pytorch-fid's FID Inception state dict")
    write_safetensors(args.out, tensors, {"source": args.pth.split("/")[-1],
                                          "format": "pytorch-fid FID Inception-v3 (TF inception-2015-12-05)"})
    print(f"wrote {args.out}: {len(tensors)} tensors")


if __name__ == "__main__":
    main()
