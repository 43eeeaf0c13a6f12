#!/usr/bin/env python3
"""Parity fixtures for onestep's EDM2 U-Net, produced with the reference code itself.

    PYTHONPATH=/path/to/edm2 python tools/make_edm2_fixtures.py --out tests/fixtures/networks \
        --ect /path/to/ect-imgnet-branch
    PYTHONPATH=/path/to/edm2 python tools/make_edm2_fixtures.py --full-s /tmp/edm2_full_s.safetensors
    PYTHONPATH=/path/to/edm2 python tools/make_edm2_fixtures.py --count

The reference (NVlabs/edm2 training/networks_edm2.py Precond) is built with random weights (its gains, which it
initialises to zero, re-drawn so that every layer contributes), pickled the way EDM2 saves networks
({"ema": net}), and converted by tools/convert_edm2.py from that pickle. The fixture holds the converted weights
under "net.", the inputs under "inputs." and the reference's outputs under "expected.": "raw" (the U-Net F on
c_in x, c_noise), "denoised" (Precond's D in eval mode), and "forced_weight" (one MPConv weight after a training-mode
forward pass, EDM2's forced weight normalisation, Eq. 66). With --ect, ECT's variant of the file (locuslab/ect branch
imgnet) is checked to give the same outputs on the same weights. --count prints the reference's parameter counts
for the ImageNet-64 sizes (built on the meta device: nothing is allocated).
"""

import argparse
import os
import pickle
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_edm2  # noqa: E402
from convert_edm import write_safetensors  # noqa: E402

# A reduced width with EDM2's structure: 3 levels, attention at two of them, class labels, several heads.
SMALL = dict(img_resolution=16, img_channels=3, label_dim=10, model_channels=8, channel_mult=[1, 2, 3],
             num_blocks=2, attn_resolutions=[8, 4], channels_per_head=8, use_fp16=False)
# EDM2's train_edm2.py presets edm2-img64-{xs,s,m,l,xl}: channels 128/192/256/320/384, other UNet arguments default.
SIZES = {"xs": 128, "s": 192, "m": 256, "l": 320, "xl": 384}


def build(kwargs, seed):
    from training.networks_edm2 import Precond
    torch.manual_seed(seed)
    net = Precond(**kwargs)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("_gain"):  # emb_gain, out_gain: zero at init, which would hide their layers
                p.copy_(0.5 + torch.rand([]))
    return net.eval()


def make(kwargs, path, batch, seed, ect=None):
    net = build(kwargs, seed)
    res, ch, labels = kwargs["img_resolution"], kwargs["img_channels"], kwargs["label_dim"]
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn([batch, ch, res, res], generator=g) * 2
    sigma = torch.exp(torch.randn([batch], generator=g) * 1.6 - 0.8)
    class_labels = torch.nn.functional.one_hot(torch.randint(0, labels, [batch], generator=g), labels).float()
    with tempfile.TemporaryDirectory() as tmp:
        pkl = os.path.join(tmp, "net.pkl")
        with open(pkl, "wb") as f:
            pickle.dump({"ema": net}, f)  # as EDM2's training loop and reconstruct_phema.py save networks
        with open(pkl, "rb") as f:
            loaded = pickle.load(f)["ema"]
    tensors, metadata = convert_edm2.network_to_onestep(loaded)
    with torch.no_grad():
        s = sigma.reshape(-1, 1, 1, 1)
        x_in = x / (0.25 + s ** 2).sqrt()
        noise_labels = sigma.log() / 4
        raw = net.unet(x_in, noise_labels, class_labels)
        denoised = net(x, sigma, class_labels)
        if ect is not None:
            check_ect(ect, kwargs, net, x, sigma, class_labels, denoised)
        trained = build(kwargs, seed).train()  # same weights; one training-mode pass normalises them in place
        trained.unet(x_in, noise_labels, class_labels)
        forced = trained.unet.enc[f"{res}x{res}_block0"].conv_res0.weight.detach().clone()
    out = {"net." + k: v for k, v in tensors.items()}
    out.update({"inputs.x": x, "inputs.sigma": sigma, "inputs.class_labels": class_labels, "inputs.x_in": x_in,
                "inputs.noise_labels": noise_labels, "expected.raw": raw, "expected.denoised": denoised,
                "expected.forced_weight": forced})
    write_safetensors(path, out, metadata)
    print(f"{path}: {len(out)} tensors, |D| max {denoised.abs().max():.3g}", file=sys.stderr)


def check_ect(ect_dir, kwargs, net, x, sigma, class_labels, denoised):
    """ECT's networks_edm2.py differs from EDM2's by dropout_res (training only), a force_wn switch and the removed
    logvar head: its Precond must give the same D on the same weights (run in a child with ECT's code on the path)."""
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state.pt")
        torch.save({"kwargs": kwargs, "state": net.unet.state_dict(), "x": x, "sigma": sigma,
                    "labels": class_labels, "expected": denoised}, state)
        env = dict(os.environ, PYTHONPATH=ect_dir)
        subprocess.run([sys.executable, os.path.abspath(__file__), "--ect-child", state], env=env, check=True)


def ect_child(path):
    from training.networks_edm2 import Precond
    d = torch.load(path)
    net = Precond(**d["kwargs"]).eval()
    net.unet.load_state_dict(d["state"])
    with torch.no_grad():
        err = (net(d["x"], d["sigma"], d["labels"]) - d["expected"]).abs().max().item()
    print(f"ECT imgnet Precond vs EDM2 Precond on the same weights: max abs difference {err:.3g}", file=sys.stderr)
    assert err == 0, err


def count():
    from training.networks_edm2 import Precond
    for size, channels in SIZES.items():
        with torch.device("meta"):
            net = Precond(img_resolution=64, img_channels=3, label_dim=1000, model_channels=channels)
        unet = sum(p.numel() for p in net.unet.parameters())
        total = sum(p.numel() for p in net.parameters())
        print(f"edm2-img64-{size}: UNet {unet} parameters, Precond with logvar head {total}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="fixture directory (writes edm2_unet_small.safetensors)")
    parser.add_argument("--ect", help="checkout of locuslab/ect branch imgnet: check its Precond agrees")
    parser.add_argument("--full-s", help="write a full-size edm2-img64-s fixture (not committed) to this path")
    parser.add_argument("--count", action="store_true", help="print the reference's parameter counts")
    parser.add_argument("--ect-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ect_child:
        return ect_child(args.ect_child)
    if args.out:
        make(SMALL, os.path.join(args.out, "edm2_unet_small.safetensors"), batch=3, seed=1, ect=args.ect)
    if args.full_s:
        make(dict(img_resolution=64, img_channels=3, label_dim=1000, model_channels=192, use_fp16=False),
             args.full_s, batch=2, seed=2, ect=args.ect)
    if args.count:
        count()


if __name__ == "__main__":
    main()
