#!/usr/bin/env python3
"""Inputs of scripts/gpu_check.sh, made on the GPU machine with its own Python (no package registry there).

--cifar DIR      synthetic CIFAR-10 in the binary format onestep reads (data_batch_1..5.bin, test_batch.bin): random
                 pixels and labels 0..9, --records per file. Only the standard library is used.
--detector FILE  a randomly initialised Inception-v3 as TorchScript, called as EDM's fid.py calls its detector
                 (uint8 images [N, 3, H, W], return_features=True -> [N, 2048]). Needs torch; uses torchvision's
                 Inception-v3 when present, else a small stand-in network with the same interface (reported).
                 The saved module is loaded back and checked against the eager network on a random batch.

The backbone is traced, not scripted: scripted, torchvision's Inception3.forward returns InceptionOutputs (its
TorchScript branch, whatever aux_logits is), while its eager forward in eval mode returns the features tensor that
the wrapper must return. The thin wrapper around it is scripted, so that the `return_features` keyword onestep
passes stays in its signature.
"""

import argparse
import os
import random


def write_cifar(directory, records, seed):
    os.makedirs(directory, exist_ok=True)
    rng = random.Random(seed)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name in names:
        with open(os.path.join(directory, name), "wb") as out:
            for _ in range(records):
                out.write(bytes([rng.randrange(10)]))
                out.write(rng.randbytes(3072))
    print(f"cifar: {len(names)} files x {records} records in {directory}")


def write_detector(path, seed):
    import torch

    torch.manual_seed(seed)
    try:
        import torchvision

        backbone = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
        backbone.fc = torch.nn.Identity()
        kind = f"torchvision {torchvision.__version__} inception_v3, random weights, traced"
    except ImportError:
        backbone = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 3, stride=2), torch.nn.ReLU(), torch.nn.Conv2d(64, 2048, 3, stride=2),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        kind = "stand-in conv net (torchvision missing), random weights, traced"
    backbone.eval()

    class Detector(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor, return_features: bool = True) -> torch.Tensor:
            x = x.to(torch.float32) / 127.5 - 1.0
            x = torch.nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            return self.net(x)

    with torch.no_grad():
        example = torch.rand(2, 3, 299, 299) * 2 - 1
        traced = torch.jit.trace(backbone, example)
        module = torch.jit.script(Detector(traced).eval())
    module.save(path)

    # The saved file against the eager network: features of the same uint8 batch must agree.
    loaded = torch.jit.load(path)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    with torch.no_grad():
        got = loaded(images, return_features=True)
        want = Detector(backbone).eval()(images)
    if got.shape != (3, 2048) or not torch.allclose(got, want, rtol=1e-4, atol=1e-5):
        raise SystemExit(f"detector check failed: shape {tuple(got.shape)}, "
                         f"largest difference {(got - want).abs().max().item():.3g}")
    print(f"detector: {kind} -> {path} (reloaded: [3, 2048] features equal the eager network's)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar")
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--detector")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.cifar:
        write_cifar(args.cifar, args.records, args.seed)
    if args.detector:
        write_detector(args.detector, args.seed)


if __name__ == "__main__":
    main()
