#!/usr/bin/env python3
"""Convert an EDM2 or ECT-ImageNet network pickle into an onestep safetensors checkpoint.

EDM2 (NVlabs/edm2) saves its magnitude-preserving U-Net as a pickle of `training.networks_edm2.Precond`, e.g. the
post-hoc EMA reconstructions `edm2-img64-s-1073741-0.075.pkl` that ECT fine-tunes from; ECT's ImageNet branch
(locuslab/ect, branch imgnet) saves the same class. Unpickling needs that code, so run this with a checkout of
either repository on PYTHONPATH:

    PYTHONPATH=/path/to/edm2 python tools/convert_edm2.py edm2-img64-s-1073741-0.075.pkl edm2-img64-s.safetensors

Only trusted pickles may be loaded: unpickling runs arbitrary code. The output is plain safetensors: every tensor
of the U-Net under "model.<EDM2 name>" ("model.enc.64x64_block0.conv_res0.weight", buffers "model.emb_fourier.freqs"
and ".phases" included) plus the metadata key "onestep" = {"model": {"arch": "edm2", ...}, "precond": {...},
"method": ...} so that every onestep command loads it without further configuration.

EDM2's Precond also holds the uncertainty head of its loss (logvar_fourier, logvar_linear, EDM2 paper Eq. 21). It
is not part of the denoiser D(x; sigma) and is dropped, as ECT's loader drops it (ct_training_loop.py copies the
network's own tensors from the pickle, require_all=True over the destination's names). The weights are stored as
they are; EDM2 normalises them at every forward pass, so stored and forced-normalised weights give the same output.
"""

import argparse
import inspect
import json
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_edm import write_safetensors  # noqa: E402


def _defaults(module, marker):
    """Constructor defaults of the first class in `module`'s MRO whose constructor has parameter `marker` (EDM2's
    persistence decorator subclasses the original class with an (*args, **kwargs) constructor)."""
    for cls in type(module).__mro__:
        params = inspect.signature(cls.__init__).parameters
        if marker in params:
            return {name: p.default for name, p in params.items() if p.default is not inspect.Parameter.empty}
    return {}


def edm2_config(precond):
    """onestep's [model] section (arch = "edm2") for an EDM2 Precond."""
    unet = precond.unet
    if type(unet).__name__ != "UNet" or not hasattr(unet, "emb_fourier"):
        raise ValueError(f"not an EDM2 magnitude-preserving UNet: {type(unet).__name__}")
    k = dict(_defaults(unet, "concat_balance"))
    blocks = [b for b in unet.enc.values() if hasattr(b, "res_balance")]
    k.update(getattr(precond, "init_kwargs", {}) or {})
    k.update(getattr(unet, "init_kwargs", {}) or {})
    block = blocks[0] if blocks else None
    mc = int(k["model_channels"])
    cnoise = unet.emb_fourier.freqs.numel()
    cemb = unet.emb_noise.weight.shape[0]
    if cnoise % mc or cemb % mc:
        raise ValueError(f"embedding widths {cnoise}, {cemb} are not multiples of model_channels {mc}")
    heads = [b for b in list(unet.enc.values()) + list(unet.dec.values()) if getattr(b, "num_heads", 0)]
    cph = heads[0].out_channels // heads[0].num_heads if heads else int(k.get("channels_per_head", 64))
    dropout_res = k.get("dropout_res", None)
    clip_act = block.clip_act if block is not None else k.get("clip_act", 256)
    return {
        "arch": "edm2",
        "img_resolution": int(precond.img_resolution),
        "img_channels": int(precond.img_channels),
        "label_dim": int(precond.label_dim),
        "model_channels": mc,
        "channel_mult": [int(m) for m in k["channel_mult"]],
        "channel_mult_noise": cnoise // mc,
        "channel_mult_emb": cemb // mc,
        "num_blocks": int(k["num_blocks"]),
        "attn_resolutions": [int(r) for r in k["attn_resolutions"]],
        "label_balance": float(unet.label_balance),
        "concat_balance": float(unet.concat_balance),
        "res_balance": float(block.res_balance if block is not None else 0.3),
        "attn_balance": float(block.attn_balance if block is not None else 0.3),
        "clip_act": float(clip_act) if clip_act is not None else 0.0,
        "channels_per_head": int(cph),
        "dropout": float(k.get("dropout", 0.0)),
        "dropout_res": int(dropout_res) if dropout_res else 0,
        "resample_filter": [float(v) for v in (block.resample_filter if block is not None else [1, 1])],
    }


def network_to_onestep(precond, method="edm"):
    """(tensors, metadata) for an EDM2 Precond: the U-Net's state dict under "model.", the logvar head dropped."""
    if type(precond).__name__ != "Precond" or not hasattr(precond, "unet"):
        raise ValueError(f"expected EDM2's training.networks_edm2.Precond, got {type(precond).__name__}")
    tensors = {"model." + name: t.detach().cpu().float() for name, t in precond.unet.state_dict().items()}
    onestep = {
        "model": edm2_config(precond),
        # EDM2's Precond: c_skip, c_out, c_in of EDM (Karras et al. 2022) and c_noise = ln(sigma) / 4 (EDM2
        # networks_edm2.py Precond.forward) for training and sampling alike; ECT's ImageNet branch keeps them.
        "precond": {"sigma_data": float(precond.sigma_data), "sigma_min": 0.002, "train_scalings": "edm",
                    "sample_scalings": "edm"},
        "method": method,
    }
    metadata = {"format": "pt", "onestep": json.dumps(onestep), "converted_from": "edm2.Precond"}
    return tensors, metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pickle", help="EDM2 / ECT-ImageNet network pickle (trusted file)")
    parser.add_argument("output", help="onestep .safetensors file to write")
    parser.add_argument("--key", default="ema", help="entry of the pickled dict holding the network (default: ema)")
    parser.add_argument("--method", default="edm", choices=["edm", "ect"],
                        help="objective the weights were trained with: edm (EDM2's release, default) or ect")
    args = parser.parse_args()
    with open(args.pickle, "rb") as f:
        data = pickle.load(f)
    net = data[args.key] if isinstance(data, dict) else data
    tensors, metadata = network_to_onestep(net, args.method)
    write_safetensors(args.output, tensors, metadata)
    count = sum(int(np.prod(t.shape)) for name, t in tensors.items() if not name.startswith("model.emb_fourier."))
    print(f"{args.output}: {len(tensors)} tensors, {count:,} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
