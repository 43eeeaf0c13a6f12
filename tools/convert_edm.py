#!/usr/bin/env python3
"""Convert an EDM or ECT network pickle into an onestep safetensors checkpoint.

EDM (NVlabs/edm) and ECT (locuslab/ect) save networks as pickles of their own Python classes
(EDMPrecond / VPPrecond / VEPrecond / ECT's precond wrapping a SongUNet), so unpickling needs their code.
Run this script with a checkout of that code on PYTHONPATH:

    PYTHONPATH=/path/to/edm python tools/convert_edm.py edm-cifar10-32x32-uncond-vp.pkl out.safetensors
    PYTHONPATH=/path/to/ect python tools/convert_edm.py network-snapshot.pkl out.safetensors \
        --train-scalings edm --sample-scalings consistency --sigma-min 0.002

Only trusted pickles may be loaded: unpickling runs arbitrary code. The output is plain safetensors (no
pickle): every tensor of the preconditioner's state dict under its EDM name ("model.enc.32x32_conv.weight",
buffers such as "model.map_noise.freqs" and "...resample_filter" included) plus the metadata key "onestep" =
JSON {"model": {...}, "precond": {...}, "method": "edm" | "ect"} in the form onestep's [model] and [precond]
sections take (the method when the preconditioner class tells it), so that
`onestep info --ckpt out.safetensors` and every command that loads a model work without further configuration.

The pickle's 'ema' network is converted (EDM's snapshots also hold 'augment_pipe' and 'dataset_kwargs', which are
ignored); --key picks another entry. Requires torch and numpy only; safetensors is written with struct + json.
The module can also be imported: `network_to_onestep(net)` returns (tensors, metadata) and `write_safetensors`
writes them.
"""

import argparse
import inspect
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch

_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: tensor} (insertion order kept) with string metadata; atomically (temp file + rename)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype not in _DTYPES:
            raise ValueError(f"tensor {name}: unsupported dtype {tensor.dtype}")
        # bfloat16 has no numpy type: reinterpret the bytes as int16.
        raw = (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy().tobytes()
        header[name] = {"dtype": _DTYPES[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # data starts 8-byte aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def _init_kwargs(module):
    """Constructor arguments of a module: EDM's persistence decorator records them as `init_kwargs`; missing
    ones take the constructor's defaults."""
    kwargs = dict(getattr(module, "init_kwargs", {}) or {})
    # The persistence decorator subclasses the original class with an (*args, **kwargs) constructor: take the
    # first class in the MRO whose constructor names its parameters.
    for cls in type(module).__mro__:
        params = inspect.signature(cls.__init__).parameters
        if "img_resolution" in params:
            for name, param in params.items():
                if param.default is not inspect.Parameter.empty:
                    kwargs.setdefault(name, param.default)
            break
    return kwargs


def song_unet_config(unet):
    """onestep's [model] section for an EDM SongUNet instance."""
    if type(unet).__name__ != "SongUNet":
        raise ValueError(f"only SongUNet (DDPM++ / NCSN++) networks convert, got {type(unet).__name__}")
    k = _init_kwargs(unet)
    if k["in_channels"] != k["out_channels"]:
        raise ValueError("onestep's SongUNet has as many output channels as input channels")
    fourier = k["embedding_type"] == "fourier"
    config = {
        "arch": "songunet",
        "variant": "ncsnpp" if fourier else "ddpmpp",
        "img_resolution": int(k["img_resolution"]),
        "img_channels": int(k["in_channels"]),
        "label_dim": int(k["label_dim"]),
        "augment_dim": int(k["augment_dim"]),
        "model_channels": int(k["model_channels"]),
        "channel_mult": [int(m) for m in k["channel_mult"]],
        "channel_mult_emb": int(k["channel_mult_emb"]),
        "num_blocks": int(k["num_blocks"]),
        "attn_resolutions": [int(r) for r in k["attn_resolutions"]],
        "dropout": float(k["dropout"]),
        "label_dropout": float(k["label_dropout"]),
        "embedding_type": k["embedding_type"],
        "channel_mult_noise": int(k["channel_mult_noise"]),
        "encoder_type": k["encoder_type"],
        "decoder_type": k["decoder_type"],
        "resample_filter": [float(v) for v in k["resample_filter"]],
    }
    if fourier:
        # The drawn frequencies travel as the buffer model.map_noise.freqs; the scale only matters for init.
        freqs = unet.map_noise.freqs.detach().float()
        config["fourier_scale"] = float(freqs.std()) if freqs.numel() > 1 else 16.0
    else:
        pos = unet.map_noise
        if not getattr(pos, "endpoint", True):
            raise ValueError("onestep's SongUNet uses the positional embedding with endpoint=True")
        config["max_positions"] = float(pos.max_positions)
    return config


def network_to_onestep(net, train_scalings=None, sample_scalings=None, sigma_min=None, prefix=""):
    """(tensors, metadata) for a preconditioner holding a SongUNet as `.model` (or a bare SongUNet)."""
    if type(net).__name__ == "SongUNet":
        holder = torch.nn.Module()
        holder.model = net
        net = holder
    unet = net.model
    is_edm_diffusion = type(net).__name__ in ("EDMPrecond", "VPPrecond", "VEPrecond", "iDDPMPrecond")
    sigma_data = float(getattr(net, "sigma_data", 0.5))
    if sigma_min is None:
        sigma_min = float(getattr(net, "sigma_min", 0.002))
        if sigma_min <= 0:
            sigma_min = 0.002
    precond = {
        "sigma_data": sigma_data,
        "sigma_min": float(sigma_min),
        "train_scalings": train_scalings or ("edm" if is_edm_diffusion else "consistency"),
        "sample_scalings": sample_scalings or ("edm" if is_edm_diffusion else "consistency"),
    }
    tensors = {prefix + name: t.detach().cpu().float() if t.is_floating_point() else t.detach().cpu()
               for name, t in net.state_dict().items() if name.startswith("model.")}
    onestep = {"model": song_unet_config(unet), "precond": precond}
    # The method the network was trained with, which onestep's 2-step sampler follows when re-noising
    # (ECT: x + t z; otherwise x + sqrt(t^2 - sigma_min^2) z).
    if type(net).__name__ == "ECMPrecond":
        onestep["method"] = "ect"
    elif is_edm_diffusion:
        onestep["method"] = "edm"
    metadata = {
        "format": "pt",
        "onestep": json.dumps(onestep),
        "converted_from": type(net).__name__,
    }
    return tensors, metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pickle", help="EDM/ECT network pickle (trusted file)")
    parser.add_argument("output", help="onestep .safetensors file to write")
    parser.add_argument("--key", default="ema", help="entry of the pickled dict holding the network (default: ema)")
    parser.add_argument("--train-scalings", choices=["edm", "consistency"], default=None,
                        help="default: edm for EDM's diffusion preconditioners, consistency otherwise")
    parser.add_argument("--sample-scalings", choices=["edm", "consistency"], default=None,
                        help="ECT samples with consistency scalings (boundary-exact at sigma_min)")
    parser.add_argument("--sigma-min", type=float, default=None, help="default: the network's sigma_min, else 0.002")
    args = parser.parse_args()

    with open(args.pickle, "rb") as f:
        data = pickle.load(f)
    net = data[args.key] if isinstance(data, dict) else data
    tensors, metadata = network_to_onestep(net, args.train_scalings, args.sample_scalings, args.sigma_min)
    write_safetensors(args.output, tensors, metadata)
    count = sum(int(np.prod(t.shape)) for name, t in tensors.items()
                if not name.endswith(("resample_filter", "map_noise.freqs")))
    print(f"{args.output}: {len(tensors)} tensors, {count:,} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
