#!/usr/bin/env python3
"""The Python side of bench/cpu_vs_reference.sh: the reference loops that onestep's CPU step is compared with.

Three loops, each timed in-process after a warm-up; one JSON line on stdout (steps_per_s or images_per_s):

  ect     locuslab/ect's own training step on the demo network: training.networks.ECMPrecond around its SongUNet in
          the configuration of configs/unet-fmnist-cpu.toml (1x28x28, model_channels 16, channel_mult [1,2,2], one
          block per level, DDPM++ embedding and filters, dropout --dropout), training.loss.ECMLoss (q=2, k=8, b=1,
          c=0), torch.optim.RAdam, then the per-parameter EMA lerp of that repository's ct_training_loop.py. Both
          the network and the loss are imported from a checkout of locuslab/ect named by --ect; nothing of it is
          copied here. The data is a uint8 tensor of --batch random images (the reference's loader runs in
          another process, off the step's path; onestep's prefetch thread likewise).
  mlp     a plain PyTorch loop of configs/points-ect.toml's objective, written out here: the 2-D MLP of
          configs/mlp-2d.toml (positional noise embedding 64 -> 256 -> 256, input 2 -> 256, 4 residual-free
          layers Linear(h + emb) -> SiLU, output 256 -> 2) under EDM's training scalings, ECT's sigmoid mapping,
          the batch-posterior target (docs/methods.md section 7), pseudo-Huber c = 1 weighted by 1 / (t - r),
          RAdam and one EMA (0.99). Points from eight Gaussians drawn on the fly (onestep: from its dataset).
  sample  1-step sampling with the reference's sampler (training/ct_training_loop.py generator_fn: x = 80 z in
          float64, one network call) on the same ECMPrecond network in eval mode, --batch images per call.

Threads: --threads (torch.set_num_threads; default 2, as train.threads of the presets).

The torch in Python: any torch 2.11 (CPU wheel enough), e.g.
    python3 -m venv ~/.cache/onestep/ref-venv
    ~/.cache/onestep/ref-venv/bin/pip install torch==2.11.0 numpy --index-url https://download.pytorch.org/whl/cpu
and a checkout of https://github.com/locuslab/ect for `ect` and `sample`.

    python3 tools/bench_cpu_reference.py ect --ect ~/src/ect --batch 32 --steps 150
    python3 tools/bench_cpu_reference.py mlp --batch 512 --steps 500
    python3 tools/bench_cpu_reference.py sample --ect ~/src/ect --batch 500 --steps 4
"""

import argparse
import copy
import json
import math
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("loop", choices=["ect", "mlp", "sample"])
    parser.add_argument("--ect", help="checkout of locuslab/ect (ect and sample)")
    parser.add_argument("--batch", type=int, default=None, help="default: ect 32, mlp 512, sample 500")
    parser.add_argument("--steps", type=int, default=100, help="timed steps (sample: network calls)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dropout", type=float, default=0.1, help="ect: the UNet's dropout (the issue's 0.1)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def fail(message):
    print(f"bench_cpu_reference: error: {message}", file=sys.stderr)
    sys.exit(1)


def reference_unet(networks, dropout):
    # configs/unet-fmnist-cpu.toml in EDM's / ECT's SongUNet keywords (DDPM++: positional embedding, standard
    # encoder and decoder, [1, 1] filters, one noise channel multiple).
    return networks.ECMPrecond(img_resolution=28, img_channels=1, label_dim=0, use_fp16=False, sigma_min=0.003,
                               model_type="SongUNet", embedding_type="positional", encoder_type="standard",
                               decoder_type="standard", channel_mult_noise=1, resample_filter=[1, 1],
                               model_channels=16, channel_mult=[1, 2, 2], channel_mult_emb=4, num_blocks=1,
                               attn_resolutions=[], dropout=dropout)


def time_loop(step, warmup, steps):
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        last = step()
    return time.perf_counter() - start, last


def ect_loop(args, torch):
    from bench_ect_reference import import_reference
    networks, loss_module = import_reference(args.ect)
    # The reference shares the dropout mask through the CUDA generator's state; on the CPU, the CPU generator's.
    torch.cuda.get_rng_state = lambda *a, **k: torch.get_rng_state()
    torch.cuda.set_rng_state = lambda state, *a, **k: torch.set_rng_state(state)
    net = reference_unet(networks, args.dropout).train().requires_grad_(True)
    loss_fn = loss_module.ECMLoss(P_mean=-1.1, P_std=2.0, q=2.0, c=0.0, k=8.0, b=1.0, adj="sigmoid")
    loss_fn.update_schedule(0)
    optimizer = torch.optim.RAdam(net.parameters(), lr=4e-4, betas=[0.9, 0.999], eps=1e-8)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    parameters = list(net.parameters())
    data = torch.randint(0, 256, (args.batch, 1, 28, 28), dtype=torch.uint8)

    def step():  # ct_training_loop.py's body for one accumulation round
        optimizer.zero_grad(set_to_none=True)
        images = data.to(torch.float32) / 127.5 - 1
        loss = loss_fn(net=net, images=images, labels=None, augment_pipe=None)
        loss.mean().backward()
        for param in parameters:
            if param.grad is not None:
                torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        optimizer.step()
        with torch.no_grad():
            for p_ema, p_net in zip(ema.parameters(), parameters):
                p_ema.copy_(p_net.detach().lerp(p_ema, 0.9999))
        return loss

    seconds, last = time_loop(step, args.warmup, args.steps)
    return {"steps_per_s": args.steps / seconds, "last_loss": float(last.detach().mean()),
            "parameters": sum(p.numel() for p in parameters)}


class Mlp2d:
    """configs/mlp-2d.toml's network, under EDM's training scalings (sigma_data 0.5)."""

    def __init__(self, torch, hidden=256, layers=4, noise_channels=64):
        nn = torch.nn
        self.torch = torch
        self.noise_channels = noise_channels
        self.map_layer0 = nn.Linear(noise_channels, hidden)
        self.map_layer1 = nn.Linear(hidden, hidden)
        self.input = nn.Linear(2, hidden)
        self.layers = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(layers)])
        self.output = nn.Linear(hidden, 2)
        self.module = nn.ModuleList([self.map_layer0, self.map_layer1, self.input, self.layers, self.output])

    def embed(self, c_noise):
        torch = self.torch
        half = self.noise_channels // 2
        freqs = (1 / 10000) ** (torch.arange(half, dtype=torch.float32) / (half - 1))
        angles = torch.outer(c_noise, freqs)
        return torch.cat([angles.sin(), angles.cos()], 1)

    def __call__(self, x, sigma):
        torch = self.torch
        s = sigma.reshape(-1, 1)
        c_skip = 0.25 / (s * s + 0.25)
        c_out = s * 0.5 / (s * s + 0.25).sqrt()
        c_in = 1 / (s * s + 0.25).sqrt()
        emb = self.map_layer1(torch.nn.functional.silu(self.map_layer0(self.embed(sigma.log() / 4))))
        h = self.input(c_in * x)
        for layer in self.layers:
            h = torch.nn.functional.silu(layer(h + emb))
        return c_skip * x + c_out * self.output(h)


def mlp_loop(args, torch):
    net = Mlp2d(torch)
    params = list(net.module.parameters())
    optimizer = torch.optim.RAdam(params, lr=1e-4, betas=[0.9, 0.999], eps=1e-8)
    ema = copy.deepcopy(net.module).requires_grad_(False)
    angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
    centers = torch.stack([angles.cos(), angles.sin()], 1) * 0.8

    def r_of(t, stage=0, q=2.0, k=8.0, b=1.0):  # ECT's sigmoid mapping (docs/methods.md section 7)
        return (t * (1 - (1 + k * torch.sigmoid(-b * t)) / q ** (stage + 1))).clamp(min=0)

    def posterior_mean(y, x_t, t):  # E[y | x_t] over the batch's rows (docs/methods.md section 7)
        with torch.no_grad():
            logits = -torch.cdist(x_t, y).square() / (2 * t.square().reshape(-1, 1))
            return torch.softmax(logits, 1) @ y

    def step():
        optimizer.zero_grad(set_to_none=True)
        y = centers[torch.randint(0, 8, (args.batch,))] + 0.05 * torch.randn(args.batch, 2)
        t = (torch.randn(args.batch) * 2.0 - 1.1).exp()
        r = r_of(t)
        x_t = y + t.reshape(-1, 1) * torch.randn_like(y)
        denoised = posterior_mean(y, x_t, t)
        x_r = denoised + (r / t).reshape(-1, 1) * (x_t - denoised)
        student = net(x_t, t)
        with torch.no_grad():
            teacher = torch.nan_to_num(net(x_r, torch.where(r > 0, r, torch.ones_like(r))))
            teacher = torch.where((r == 0).reshape(-1, 1), denoised, teacher)
        distance = ((student - teacher).square().sum(1) + 1.0).sqrt() - 1.0
        loss = (distance / (t - r)).mean()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(ema.parameters()), params, 1 - 0.99)
        return loss

    seconds, last = time_loop(step, args.warmup, args.steps)
    return {"steps_per_s": args.steps / seconds, "last_loss": float(last.detach()),
            "parameters": sum(p.numel() for p in params)}


def sample_loop(args, torch):
    from bench_ect_reference import import_reference
    networks, _ = import_reference(args.ect)
    net = reference_unet(networks, 0.0).eval().requires_grad_(False)

    def step():  # ct_training_loop.py generator_fn with t_max = 80 and no mid_t: one network call
        with torch.no_grad():
            latents = torch.randn(args.batch, 1, 28, 28)
            x = latents.to(torch.float64) * 80.0
            return net(x, torch.tensor(80.0, dtype=torch.float64)).to(torch.float64)

    seconds, last = time_loop(step, args.warmup, args.steps)
    return {"images_per_s": args.batch * args.steps / seconds, "last_mean": float(last.mean())}


def main():
    args = parse_args()
    if args.batch is None:
        args.batch = {"ect": 32, "mlp": 512, "sample": 500}[args.loop]
    if args.batch < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        fail("--batch, --steps and --threads must be >= 1, --warmup >= 0")
    if args.loop != "mlp" and not args.ect:
        fail(f"{args.loop} needs --ect, a checkout of https://github.com/locuslab/ect")
    import torch
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    result = {"ect": ect_loop, "mlp": mlp_loop, "sample": sample_loop}[args.loop](args, torch)
    result.update({"loop": args.loop, "batch": args.batch, "steps": args.steps, "threads": args.threads,
                   "torch": torch.__version__,
                   "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
