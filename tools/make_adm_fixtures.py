#!/usr/bin/env python3
"""Parity fixtures for onestep's ADM U-Net and the consistency-model sampler, made with openai/consistency_models.

    PYTHONPATH=/path/to/consistency_models:/path/with/einops \
        python tools/make_adm_fixtures.py --out tests/fixtures/networks/adm_unet_small.safetensors
    PYTHONPATH=... python tools/make_adm_fixtures.py --full /tmp/adm_full.safetensors   # 64x64 release config
    PYTHONPATH=... python tools/make_adm_fixtures.py --count                           # parameter counts

The release's UNetModel (cm/unet.py; commit e32b69e) is built with random weights (its zero-initialised output
convolutions re-drawn, its GroupNorm affine parameters perturbed, so every layer matters, and its output
convolution scaled up so that denoised values leave [-1, 1] and the samplers' clamp matters), saved as the release
saves checkpoints (`torch.save(model.state_dict())`), converted from that .pt by tools/convert_openai_cm.py, and run on
fixed inputs. The fixture holds the converted weights under "net." (with the converter's metadata), the inputs under
"inputs." and the release's outputs under "expected.": "raw" (UNetModel on c_in x and 1000 * 0.25 ln(sigma)),
"denoised" (KarrasDenoiser(distillation=True).denoise: the boundary-condition scalings), and the two samplers of
image_sample.py via karras_sample: "onestep" (sampler="onestep") and "multistep" (sampler="multistep", ts 0,22,39 of
40 levels, clip_denoised=True). The sampler's noise source is replaced (its `generator` argument) by one that returns
"inputs.latents" first and then torch.randn(..., generator=torch.Generator().manual_seed(seed)) in float32, the
stream onestep's consistency sampler draws from a CPU generator with that seed, so the whole multistep run is
compared, noise included.

Shims, because the release imports packages that the network and samplers do not use: `flash_attn` (the release's
AttentionBlock defaults to QKVFlashAttention; the shim computes softmax(q k^T / sqrt(d)) v in float32 on the same
"b s three h d" layout, which is what flash attention computes, in fp16 on a GPU), and `piq`, `torchvision`,
`blobfile`, `mpi4py` (imported by cm/karras_diffusion.py and cm/dist_util.py for training losses and MPI). `einops`
is needed as is (pip install einops).
"""

import argparse
import math
import os
import sys
import tempfile
import types

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_openai_cm  # noqa: E402
from convert_edm import write_safetensors  # noqa: E402


def install_shims():
    class FlashAttention(torch.nn.Module):
        def __init__(self, attention_dropout=0.0, **_):
            super().__init__()

        def forward(self, qkv, key_padding_mask=None, need_weights=False, causal=False):
            q, k, v = qkv.float().unbind(2)  # each [b, s, h, d]
            w = torch.einsum("bshd,bthd->bhst", q, k) / math.sqrt(q.shape[-1])
            return torch.einsum("bhst,bthd->bshd", w.softmax(-1), v).to(qkv.dtype), None

    flash = types.ModuleType("flash_attn")
    flash.flash_attention = types.ModuleType("flash_attn.flash_attention")
    flash.flash_attention.FlashAttention = FlashAttention
    sys.modules.update({"flash_attn": flash, "flash_attn.flash_attention": flash.flash_attention})
    piq = types.ModuleType("piq")
    piq.LPIPS = object
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.RandomCrop = object
    mpi4py = types.ModuleType("mpi4py")
    mpi4py.MPI = types.SimpleNamespace()
    sys.modules.update({"piq": piq, "torchvision": tv, "torchvision.transforms": tv.transforms,
                        "blobfile": types.ModuleType("blobfile"), "mpi4py": mpi4py})


# Reduced width with the release's structure: 2 levels, attention at both (2 and 4 heads), scale-shift norm,
# resblock up/down, 10 classes.
SMALL = dict(image_size=16, in_channels=3, model_channels=32, out_channels=3, num_res_blocks=1,
             attention_resolutions=(1, 2), dropout=0.0, channel_mult=(1, 2), num_classes=10, num_head_channels=16,
             use_scale_shift_norm=True, resblock_updown=True)
# scripts/launch.sh ImageNet-64 (CD, CT, EDM): 192 channels, 3 res blocks, attention at 32,16,8 (downsample rates
# 2,4,8), 64 channels per head, scale-shift norm, resblock up/down, 1000 classes; cm/script_util.py channel_mult
# (1,2,3,4) for 64x64. iCT-deep (Song & Dhariwal 2023) doubles the res blocks.
FULL = dict(image_size=64, in_channels=3, model_channels=192, out_channels=3, num_res_blocks=3,
            attention_resolutions=(2, 4, 8), dropout=0.0, channel_mult=(1, 2, 3, 4), num_classes=1000,
            num_head_channels=64, use_scale_shift_norm=True, resblock_updown=True)


def build(kwargs, seed):
    from cm.unet import UNetModel
    torch.manual_seed(seed)
    net = UNetModel(**kwargs)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if torch.count_nonzero(p) == 0:  # zero_module layers: drawn like the other convolutions
                p.copy_((torch.rand_like(p) * 2 - 1) / math.sqrt(max(p[0].numel(), 1) if p.dim() > 1 else 64))
            if ".norm." in name or "layers.0." in name or name.startswith("out.0."):  # GroupNorm affine
                p.add_(torch.randn_like(p) * 0.1)
        net.out[2].weight.mul_(4)  # |D| beyond 1 at sigma 80, so that the samplers' clamp to [-1, 1] matters
    return net.eval()


class StreamGenerator:
    """The release's generator interface (cm/random_util.py): latents first, then onestep's noise stream."""

    def __init__(self, latents, seed):
        self.latents, self.g = latents, torch.Generator().manual_seed(seed)

    def randn(self, *shape, **_):
        return self.latents.clone()

    def randn_like(self, x, **_):
        return torch.randn(x.shape, generator=self.g, dtype=torch.float32)


def make(kwargs, path, batch, seed):
    from cm.karras_diffusion import KarrasDenoiser, karras_sample
    net = build(kwargs, seed)
    with tempfile.TemporaryDirectory() as tmp:
        pt = os.path.join(tmp, "net.pt")
        torch.save(net.state_dict(), pt)  # as the release's checkpoints are saved
        state = torch.load(pt, map_location="cpu", weights_only=True)
    tensors, metadata = convert_openai_cm.state_to_onestep(state, "cd", kwargs["image_size"],
                                                           kwargs["num_head_channels"])
    res, classes = kwargs["image_size"], kwargs["num_classes"]
    g = torch.Generator().manual_seed(seed + 1)
    x = torch.randn([batch, 3, res, res], generator=g) * 2
    sigma = torch.exp(torch.randn([batch], generator=g) * 1.6 - 0.8)
    sigma[0] = 80.0
    y = torch.randint(0, classes, [batch], generator=g)
    latents = torch.randn([batch, 3, res, res], generator=g)
    noise_seed = 1234
    diffusion = KarrasDenoiser(sigma_data=0.5, sigma_max=80.0, sigma_min=0.002, distillation=True,
                               weight_schedule="uniform", loss_norm="l2")
    with torch.no_grad():
        c_in = 1 / (sigma ** 2 + 0.25).sqrt()
        raw = net(c_in.reshape(-1, 1, 1, 1) * x, 1000 * 0.25 * torch.log(sigma + 1e-44), y)
        denoised = diffusion.denoise(net, x, sigma, y=y)[1]
        common = dict(model_kwargs={"y": y}, device="cpu", clip_denoised=True, sigma_min=0.002, sigma_max=80.0)
        onestep = karras_sample(diffusion, net, tuple(latents.shape), steps=40, sampler="onestep",
                                generator=StreamGenerator(latents, noise_seed), **common)
        multistep = karras_sample(diffusion, net, tuple(latents.shape), steps=40, sampler="multistep", ts=(0, 22, 39),
                                  generator=StreamGenerator(latents, noise_seed), **common)
    out = {"net." + k: v for k, v in tensors.items()}
    out.update({"inputs.x": x, "inputs.sigma": sigma, "inputs.class_labels": y,
                "inputs.one_hot": torch.nn.functional.one_hot(y, classes).float(), "inputs.latents": latents,
                "inputs.noise_seed": torch.tensor([noise_seed]), "inputs.noise_labels": sigma.log() / 4,
                "inputs.x_in": c_in.reshape(-1, 1, 1, 1) * x, "expected.raw": raw, "expected.denoised": denoised,
                "expected.onestep": onestep, "expected.multistep": multistep})
    write_safetensors(path, out, metadata)
    print(f"{path}: {len(out)} tensors, |F| max {raw.abs().max():.3g}, |D| max {denoised.abs().max():.3g}",
          file=sys.stderr)


def count():
    from cm.unet import UNetModel
    for name, kwargs in [("adm-img64", FULL), ("adm-img64-deep", dict(FULL, num_res_blocks=6))]:
        with torch.device("meta"):
            net = UNetModel(**kwargs)
        print(f"{name}: {sum(p.numel() for p in net.parameters()):,} parameters")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="reduced-width fixture to write")
    parser.add_argument("--full", help="full-size (ImageNet-64 release) fixture to write (about 1.2 GB)")
    parser.add_argument("--count", action="store_true", help="print the release's parameter counts")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    install_shims()
    if args.out:
        make(SMALL, args.out, batch=3, seed=0)
    if args.full:
        make(FULL, args.full, batch=2, seed=0)
    if args.count:
        count()


if __name__ == "__main__":
    main()
