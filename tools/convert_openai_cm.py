#!/usr/bin/env python3
"""Convert a checkpoint of openai/consistency_models (the ImageNet-64 / LSUN ADM networks) into onestep safetensors.

The release saves its UNetModel (cm/unet.py, guided-diffusion's ADM) as a plain `torch.save(model.state_dict())`:
`cd_imagenet64_l2.pt`, `cd_imagenet64_lpips.pt`, `ct_imagenet64.pt` (consistency models) and `edm_imagenet64_ema.pt`
(the EDM teacher). onestep's ADM (`model.arch = "adm"`) uses the release's parameter names, so conversion is a
rename table of one rule: every key gets the prefix "model.". The architecture is read from the tensor shapes
(model_channels, channel_mult, num_res_blocks, attention levels, scale-shift norm, label_dim); the image size and the
channels per attention head are not in the weights and come from the command line (defaults: the ImageNet-64
release, --image_size 64 --num_head_channels 64).

    python tools/convert_openai_cm.py cd_imagenet64_l2.pt cd-imagenet64-l2.safetensors --mode cd
    onestep sample --ckpt cd-imagenet64-l2.safetensors --class 3 --steps 2 --out grid.png

The file's metadata records what the release's sampling script does with that checkpoint (scripts/launch.sh,
scripts/image_sample.py, cm/karras_diffusion.py), so `onestep sample` reproduces it without options:
  - preconditioning: sigma_data 0.5; consistency models use the boundary-condition scalings with sigma_min 0.002
    (karras_diffusion.py get_scalings_for_boundary_condition, used when training_mode contains "consistency"), the
    EDM teacher EDM's scalings; the network's time input is 1000 * 0.25 ln(sigma) (model.noise_label_scale 1000).
  - sampler: consistency models the "multistep" sampler at the Karras levels t_i = (80^(1/7) + i / (N - 1)
    (0.002^(1/7) - 80^(1/7)))^7 with launch.sh's --ts: CD 0,22,39 of N = 40, CT 0,106,200 of N = 201; 1 step is
    sigma 80 ("onestep"); re-noising sqrt(t^2 - 0.002^2) z; every denoised output clamped to [-1, 1]
    (image_sample.py clip_denoised = True). The EDM teacher: Heun with 40 Karras levels (launch.sh).
Only trusted files should be loaded; this script loads with torch.load(weights_only=True).
"""

import argparse
import json
import os
import re
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_edm import write_safetensors  # noqa: E402

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
# launch.sh's two-step schedules (--ts, --steps) per training mode.
TWO_STEP = {"cd": ((0, 22, 39), 40), "ct": ((0, 106, 200), 201)}


def karras_level(index, steps):
    """The release's stochastic_iterative_sampler level of index `index` out of `steps` (Python floats)."""
    hi, lo = SIGMA_MAX ** (1 / RHO), SIGMA_MIN ** (1 / RHO)
    return (hi + index / (steps - 1) * (lo - hi)) ** RHO


def _entries(state, prefix):
    """Sorted entry numbers N of keys "<prefix>N.<...>"."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state for m in [pattern.match(k)] if m})


def adm_config(state, image_size=64, num_head_channels=64, dropout=0.0):
    """onestep's [model] section (arch = "adm") read from a release state dict."""
    if "time_embed.0.weight" not in state or "input_blocks.0.0.weight" not in state:
        raise ValueError("not a consistency_models UNetModel state dict (no time_embed.0.weight / input_blocks.0.0)")
    mc = int(state["time_embed.0.weight"].shape[1])
    out_channels = int(state["out.2.weight"].shape[0])
    img_channels = int(state["input_blocks.0.0.weight"].shape[1])
    if out_channels != img_channels:
        raise ValueError(f"the network outputs {out_channels} channels for {img_channels} input channels "
                         "(learn_sigma): onestep's ADM predicts the denoiser only")
    outputs = _entries(state, "output_blocks.")
    # The up-sampling ResBlock closes each level but the first; it is the only layer of index >= 1 with in_layers.
    ups = [n for n in outputs if any(f"output_blocks.{n}.{i}.in_layers.0.weight" in state for i in (1, 2))]
    num_res_blocks = ups[0] if ups else len(outputs) - 1
    levels = len(outputs) // (num_res_blocks + 1)
    mult, attn = [], []
    for level in range(levels):
        first = 1 + level * (num_res_blocks + 1)
        width = int(state[f"input_blocks.{first}.0.out_layers.3.weight"].shape[0])
        if width % mc:
            raise ValueError(f"level {level} has {width} channels, not a multiple of model_channels {mc}")
        mult.append(width // mc)
        if f"input_blocks.{first}.1.qkv.weight" in state:
            attn.append(image_size >> level)
    emb_out = int(state["input_blocks.1.0.emb_layers.1.weight"].shape[0])
    config = {
        "arch": "adm", "img_resolution": image_size, "img_channels": img_channels,
        "label_dim": int(state["label_emb.weight"].shape[0]) if "label_emb.weight" in state else 0,
        "model_channels": mc, "channel_mult": mult, "num_res_blocks": num_res_blocks, "attn_resolutions": attn,
        "num_head_channels": num_head_channels, "dropout": dropout,
        "use_scale_shift_norm": emb_out == 2 * mult[0] * mc, "noise_label_scale": 1000.0,
    }
    expected = levels * (num_res_blocks + 1)
    if len(_entries(state, "input_blocks.")) != expected or len(outputs) != expected:
        raise ValueError(f"block counts do not fit {levels} levels of {num_res_blocks} res blocks")
    return config


def sample_section(mode):
    """The [sample] section the release's image_sample.py uses for a checkpoint of `mode` (cd | ct | edm)."""
    if mode == "edm":
        return {"kind": "heun", "steps": 40, "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO,
                "float64": False}
    ts, steps = TWO_STEP[mode]
    return {"kind": "consistency", "sigmas": [karras_level(ts[0], steps), karras_level(ts[1], steps)],
            "sigma_min": SIGMA_MIN, "sigma_max": SIGMA_MAX, "rho": RHO, "float64": False, "renoise": "ict",
            "clip_denoised": True}


def state_to_onestep(state, mode, image_size=64, num_head_channels=64, dropout=0.0):
    """(tensors, metadata) for a release state dict: every key under "model.", float32."""
    config = adm_config(state, image_size, num_head_channels, dropout)
    scalings = "edm" if mode == "edm" else "consistency"
    onestep = {"model": config,
               "precond": {"sigma_data": 0.5, "sigma_min": SIGMA_MIN, "train_scalings": scalings,
                           "sample_scalings": scalings},
               "method": mode}
    metadata = {"format": "pt", "onestep": json.dumps(onestep),
                "onestep_config": json.dumps({"sample": sample_section(mode)}),
                "converted_from": "openai/consistency_models UNetModel"}
    tensors = {"model." + k: v.detach().cpu().float().contiguous() for k, v in state.items()}
    return tensors, metadata


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="the release's .pt (a state dict saved with torch.save)")
    parser.add_argument("output", help="onestep .safetensors file to write")
    parser.add_argument("--mode", required=True, choices=["cd", "ct", "edm"],
                        help="what the checkpoint is: cd_imagenet64_*.pt -> cd, ct_imagenet64.pt -> ct, "
                             "edm_imagenet64_ema.pt -> edm")
    parser.add_argument("--image-size", type=int, default=64, help="the release's --image_size (default 64)")
    parser.add_argument("--num-head-channels", type=int, default=64,
                        help="the release's --num_head_channels (default 64)")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout for further training (default 0)")
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        sys.exit(f"{args.checkpoint}: expected a state dict (torch.save(model.state_dict())), got {type(state)}")
    try:
        tensors, metadata = state_to_onestep(state, args.mode, args.image_size, args.num_head_channels, args.dropout)
    except (KeyError, ValueError) as e:
        sys.exit(f"{args.checkpoint}: {e}")
    write_safetensors(args.output, tensors, metadata)
    count = sum(int(np.prod(t.shape)) for t in tensors.values())
    print(f"{args.output}: {len(tensors)} tensors, {count:,} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
