#!/usr/bin/env python3
"""Generates the fixtures of tests/metrics/ once (they are committed; tests never run Python).

    python3 -m venv /tmp/py && /tmp/py/bin/pip install torch torchvision numpy scipy pytorch-fid
    /tmp/py/bin/python tools/metrics_fixtures.py tests/fixtures/metrics

- frechet_random_spd.npz: random 64-d SPD covariances and means with the FID computed via scipy.linalg.sqrtm
  (pytorch-fid's way), plus raw samples with fewer points than dimensions (rank-deficient covariances).
- inception_pattern_features.npz: pool3 features of pytorch-fid's FID Inception blocks under deterministic
  "pattern" weights (an integer hash, reproduced exactly in tests/metrics/inception_test.cpp), for a 28x28 gray
  and a 32x32 RGB image, with onestep's preprocessing (repeat gray, bilinear resize to 299, (x - 128) / 128).
- tiny_detector.pt (+ _features.npz): a scripted module with the call signature of StyleGAN/EDM's
  inception-2015-12-05.pt (uint8 NCHW, return_features=True), for the TorchScript path.
"""
import math
import sys

import numpy as np
import scipy.linalg
import torch
import torch.nn as nn
import torch.nn.functional as F


def frechet_fixture(out):
    rng = np.random.default_rng(20261123)
    d = 64
    def spd():
        a = rng.standard_normal((d, d)); return a @ a.T / d + 0.05 * np.eye(d)
    s1, s2 = spd(), spd()
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    fd = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    # a rank-deficient pair (fewer samples than dims) as real feature sets produce
    x = rng.standard_normal((40, d)); y = rng.standard_normal((50, d)) * 0.7 + 0.1
    s3, s4 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    m3, m4 = x.mean(0), y.mean(0)
    fd2 = np.sum((m3 - m4) ** 2) + np.trace(s3) + np.trace(s4) - 2 * np.trace(scipy.linalg.sqrtm(s3 @ s4).real)
    np.savez(f"{out}/frechet_random_spd.npz", mu1=mu1, sigma1=s1, mu2=mu2, sigma2=s2,
             fd=np.array([fd]), x=x, y=y, fd_samples=np.array([fd2]))
    print(repr(fd), repr(fd2))


def inception_fixture(out):
    import pytorch_fid.inception as pi
    import torchvision.models.inception as tvi
    torch.set_num_threads(1)
    inc = tvi.Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    inc.Mixed_5b = pi.FIDInceptionA(192, pool_features=32); inc.Mixed_5c = pi.FIDInceptionA(256, pool_features=64)
    inc.Mixed_5d = pi.FIDInceptionA(288, pool_features=64); inc.Mixed_6b = pi.FIDInceptionC(768, channels_7x7=128)
    inc.Mixed_6c = pi.FIDInceptionC(768, channels_7x7=160); inc.Mixed_6d = pi.FIDInceptionC(768, channels_7x7=160)
    inc.Mixed_6e = pi.FIDInceptionC(768, channels_7x7=192); inc.Mixed_7b = pi.FIDInceptionE_1(1280); inc.Mixed_7c = pi.FIDInceptionE_2(2048)
    inc.eval()
    sd = inc.state_dict()
    names = sorted(k for k in sd if not k.startswith('fc.') and not k.endswith('num_batches_tracked'))
    def pattern(name, j, shape):
        n = int(np.prod(shape)) if len(shape) else 1
        M = np.uint64(0xFFFFFFFF); h = (np.arange(n, dtype=np.uint64) + np.uint64(j) * np.uint64(1000003)) & M
        for _ in range(2):
            h = ((h ^ (h >> np.uint64(16))) * np.uint64(0x45d9f3b)) & M
        h = h ^ (h >> np.uint64(16))
        s = 2.0 * (h.astype(np.float64) / 4294967296.0) - 1.0  # uniform-like in [-1, 1), variance 1/3
        if name.endswith('conv.weight'):
            fan_in = n // shape[0]; v = math.sqrt(6.0 / fan_in) * s
        elif name.endswith('bn.weight'): v = 1.0 + 0.1 * s
        elif name.endswith('bn.bias'): v = 0.1 * s
        elif name.endswith('running_mean'): v = 0.1 * s
        elif name.endswith('running_var'): v = 1.0 + 0.5 * (1.0 + s)
        else: raise ValueError(name)
        return torch.tensor(v.astype(np.float32)).reshape(shape)
    with torch.no_grad():
        for j, k in enumerate(names): sd[k].copy_(pattern(k, j, tuple(sd[k].shape)))
    def feats(img_u8):
        x = torch.tensor(img_u8).float()
        if x.shape[1] == 1: x = x.repeat(1, 3, 1, 1)
        x = F.interpolate(x, size=(299, 299), mode='bilinear', align_corners=False)
        x = (x - 128) / 128
        m = inc
        with torch.no_grad():
            x = m.Conv2d_2b_3x3(m.Conv2d_2a_3x3(m.Conv2d_1a_3x3(x))); x = F.max_pool2d(x, 3, 2)
            x = m.Conv2d_4a_3x3(m.Conv2d_3b_1x1(x)); x = F.max_pool2d(x, 3, 2)
            for b in ['Mixed_5b','Mixed_5c','Mixed_5d','Mixed_6a','Mixed_6b','Mixed_6c','Mixed_6d','Mixed_6e','Mixed_7a','Mixed_7b','Mixed_7c']:
                x = getattr(m, b)(x)
            return F.adaptive_avg_pool2d(x, 1).flatten(1).numpy()
    gray = (np.arange(28 * 28).reshape(1, 1, 28, 28) * 37 % 256).astype(np.uint8)
    rgb = (np.arange(3 * 32 * 32).reshape(1, 3, 32, 32) * 53 % 256).astype(np.uint8)
    fg, fr = feats(gray), feats(rgb)
    print(np.abs(fg-fr).max(), fg[0, :5], fr[0, :5], np.abs(fg).mean(), np.abs(fr).mean())
    np.savez(f'{out}/inception_pattern_features.npz', gray=gray, rgb=rgb, gray_features=fg, rgb_features=fr)
    print(len(names), sum(sd[k].numel() for k in names))


def torchscript_fixture(out):
    torch.manual_seed(0)
    class TinyDetector(nn.Module):
        """Same call signature as StyleGAN/EDM's inception-2015-12-05.pt: uint8 NCHW in, features out."""
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(3, 2048)
        def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            x = img.to(torch.float32) / 255.0
            feats = torch.tanh(self.proj(x.mean(dim=[2, 3])))
            if return_features:
                return feats
            return feats[:, :8].sum(dim=1, keepdim=True)  # stand-in for the logits
    m = torch.jit.script(TinyDetector().eval())
    m.save(f'{out}/tiny_detector.pt')
    imgs = (np.arange(2 * 3 * 8 * 8).reshape(2, 3, 8, 8) * 29 % 256).astype(np.uint8)
    with torch.no_grad(): f = m(torch.tensor(imgs), return_features=True).numpy()
    np.savez(f'{out}/tiny_detector_features.npz', images=imgs, features=f)
    print(f.shape, f[:, :4])


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/metrics"
    frechet_fixture(out)
    inception_fixture(out)
    torchscript_fixture(out)
