#!/usr/bin/env python3
"""Times the reference ECT training step (locuslab/ect) on synthetic 32x32 data: the baseline of issue 16.

The network (training.networks.ECMPrecond with SongUNet in its DDPM++ CIFAR-10 configuration) and the loss
(training.loss.ECMLoss) are imported from a checkout of locuslab/ect named on the command line; nothing of it is
copied into this repository. The step is the body of that repository's training/ct_training_loop.py for one
accumulation round, with the options of its CIFAR-10 scripts (run_ecm.sh: --arch=ddpmpp --batch=128 --optim=RAdam
--lr=0.0001 --dropout=0.2 --augment=0.0; ct_train.py's defaults q=2, k=8, b=1, c=0, cuDNN benchmark on, TF32 off):

    zero_grad(set_to_none) -> uint8 batch to the device, x / 127.5 - 1 -> ECMLoss through the DDP wrapper
    (student forward with grad, teacher forward under no_grad with the student's dropout mask)
    -> loss.mean().backward() -> nan_to_num of every gradient -> RAdam step -> per-parameter EMA lerp

`--precision fp16` is that repository's --fp16=True (ECMPrecond(use_fp16=True): the UNet runs in float16, weights
cast per call, no loss scaling). The data loader is replaced by a pinned uint8 tensor (the reference loads with
pin_memory=True in a worker process, off the step's critical path).

Prints one JSON line: images_per_s, ms_per_step, peak_memory_gib (CUDA caching allocator; on the CPU the process's
peak resident set), the last loss, versions and settings.

    python3 tools/bench_ect_reference.py --ect .carry/ect --batch 128 --precision fp32
    python3 tools/bench_ect_reference.py --ect .carry/ect --device cpu --batch 2 --warmup 1 --steps 2   (CPU check)

On the CPU (a check of this script, not a measurement of interest), torch.cuda.get_rng_state/set_rng_state, which
the reference loss calls to share the dropout mask, are pointed at the CPU generator's.
"""

import argparse
import copy
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
import types


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ect", required=True, help="checkout of locuslab/ect (holds training/, torch_utils/, dnnlib/)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--precision", choices=["fp32", "fp16"], default="fp32")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (cuDNN autotuning happens here)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--ddp", choices=["on", "off"], default="on",
                        help="wrap the network in DistributedDataParallel with one process, as ct_training_loop.py does")
    parser.add_argument("--model-channels", type=int, default=128, help="DDPM++ width (128; smaller only for checks)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def fail(message):
    print(f"bench_ect_reference: error: {message}", file=sys.stderr)
    sys.exit(1)


def import_reference(path):
    for sub in ("training/networks.py", "training/loss.py", "torch_utils/persistence.py", "dnnlib/util.py"):
        if not os.path.isfile(os.path.join(path, sub)):
            fail(f"--ect {path}: not a checkout of locuslab/ect (no {sub})")
    try:  # dnnlib/util.py imports distutils.util.strtobool; Python 3.12 dropped distutils (setuptools shims it)
        import distutils.util  # noqa: F401
    except ImportError:
        shim = types.ModuleType("distutils.util")
        shim.strtobool = lambda v: {"y": 1, "yes": 1, "t": 1, "true": 1, "on": 1, "1": 1}.get(str(v).lower(), 0)
        sys.modules["distutils"] = types.ModuleType("distutils")
        sys.modules["distutils.util"] = shim
    if "requests" not in sys.modules:
        try:
            import requests  # noqa: F401
        except ImportError:  # dnnlib/util.py imports it for downloads, which this script never does
            sys.modules["requests"] = types.ModuleType("requests")
    sys.path.insert(0, os.path.abspath(path))
    from training import loss, networks
    return networks, loss


def reference_commit(path):
    marker = os.path.join(path, "COMMIT")
    if os.path.isfile(marker):
        return open(marker).read().strip()
    try:
        return subprocess.check_output(["git", "-C", path, "rev-parse", "HEAD"], stderr=subprocess.DEVNULL,
                                       text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def init_single_process_group(backend):
    import torch
    with socket.socket() as s:  # a free local port for the one-process rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(port)
    torch.distributed.init_process_group(backend=backend, init_method="env://", rank=0, world_size=1)


def main():
    args = parse_args()
    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        fail("--batch and --steps must be >= 1, --warmup >= 0")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    networks, loss_module = import_reference(args.ect)

    if device.type == "cpu":  # the reference shares the dropout mask through the CUDA generator's state
        torch.cuda.get_rng_state = lambda *a, **k: torch.get_rng_state()
        torch.cuda.set_rng_state = lambda state, *a, **k: torch.set_rng_state(state)

    torch.manual_seed(args.seed)
    # ct_training_loop.py: cudnn.benchmark = --bench (default True); TF32 off unless --tf32.
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False

    # ct_train.py --arch=ddpmpp --precond=ect --dropout=0.2 --augment=0.0 [--fp16=True]
    net = networks.ECMPrecond(img_resolution=32, img_channels=3, label_dim=0, use_fp16=args.precision == "fp16",
                              model_type="SongUNet", embedding_type="positional", encoder_type="standard",
                              decoder_type="standard", channel_mult_noise=1, resample_filter=[1, 1],
                              model_channels=args.model_channels, channel_mult=[2, 2, 2], dropout=0.2)
    net.train().requires_grad_(True).to(device)
    loss_fn = loss_module.ECMLoss(P_mean=-1.1, P_std=2.0, q=2.0, c=0.0, k=8.0, b=1.0, adj="sigmoid")
    loss_fn.update_schedule(0)
    optimizer = torch.optim.RAdam(net.parameters(), lr=1e-4, betas=[0.9, 0.999], eps=1e-8)
    ddp_note = "off"
    wrapped = net
    if args.ddp == "on":
        try:
            init_single_process_group("nccl" if device.type == "cuda" else "gloo")
            wrapped = torch.nn.parallel.DistributedDataParallel(
                net, device_ids=[device] if device.type == "cuda" else None, broadcast_buffers=False)
            ddp_note = "on (1 process)"
        except Exception as e:  # noqa: BLE001 - report, then time the bare network
            ddp_note = f"off (DDP failed: {type(e).__name__}: {str(e).splitlines()[0][:120]})"
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    ema_beta = 0.9999
    parameters = list(net.parameters())
    parameter_count = sum(p.numel() for p in parameters)

    generator = torch.Generator().manual_seed(args.seed)
    records = max(4 * args.batch, 64)
    data = torch.randint(0, 256, (records, 3, 32, 32), dtype=torch.uint8, generator=generator)
    if device.type == "cuda":
        data = data.pin_memory()
    position = 0

    def step():
        nonlocal position
        optimizer.zero_grad(set_to_none=True)
        if position + args.batch > records:
            position = 0
        images = data[position:position + args.batch]
        position += args.batch
        images = images.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1
        labels = torch.zeros([args.batch, 0], device=device)
        loss = loss_fn(net=wrapped, images=images, labels=labels, augment_pipe=None)
        loss.mean().backward()
        for param in parameters:
            if param.grad is not None:
                torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
        optimizer.step()
        with torch.no_grad():
            for p_ema, p_net in zip(ema.parameters(), parameters):
                p_ema.copy_(p_net.detach().lerp(p_ema, ema_beta))
        return loss

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        step()
    synchronize()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        last = step()
    synchronize()
    seconds = time.perf_counter() - start
    last_loss = float(last.detach().mean())
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        device_name = torch.cuda.get_device_name(device)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        device_name = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    result = {
        "impl": "locuslab/ect", "commit": reference_commit(args.ect), "precision": args.precision,
        "batch": args.batch, "warmup": args.warmup, "steps": args.steps,
        "images_per_s": args.batch * args.steps / seconds, "ms_per_step": 1000 * seconds / args.steps,
        "peak_memory_gib": round(peak, 3), "last_loss": last_loss, "parameters": parameter_count, "ddp": ddp_note,
        "device": device_name, "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None, "cudnn_benchmark": True,
        "tf32": False, "model_channels": args.model_channels,
    }
    print(json.dumps(result), flush=True)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    if last_loss != last_loss:
        fail("the last loss is NaN")


if __name__ == "__main__":
    main()
