#!/usr/bin/env python3
"""Reference values of EDM2's power-function EMA (training/phema.py), computed with EDM2's own functions.

    PYTHONPATH=/path/to/edm2 python tools/make_phema_fixture.py tests/fixtures/trainer/phema_reference.safetensors

Writes (float64): "std" and "exp" (std_to_exp, Eq. 126 / Algorithm 2); "track.weights" [steps, n] (a raw weight
sequence), "track.batch", and "track.ema" [stds, steps, n] (PowerFunctionEMA.update after each step, cur_nimg =
the images seen after the step, as EDM2's and ECT's training loops call it) for "track.stds"; "solve.*": the
snapshot times and stds of a run with two profiles, two target (time, std) pairs and solve_posthoc_coefficients'
[in, out] matrix (Algorithm 3).
"""

import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_edm import write_safetensors  # noqa: E402

from training import phema  # noqa: E402  (EDM2's module, from PYTHONPATH)


def main():
    out = {}
    stds = np.float64([0.01, 0.05, 0.075, 0.1, 0.2])
    out["std"] = torch.from_numpy(stds)
    out["exp"] = torch.from_numpy(phema.std_to_exp(stds))

    # Tracking: a 5-value "network" whose weights follow a random walk, batch 4, 12 steps.
    g = torch.Generator().manual_seed(0)
    steps, batch, track_stds = 12, 4, [0.05, 0.1]
    weights = torch.cumsum(torch.randn([steps, 5], generator=g, dtype=torch.float64), 0)
    net = torch.nn.Linear(5, 1, bias=False).double()
    ema = phema.PowerFunctionEMA(net, stds=track_stds)
    history = torch.zeros([len(track_stds), steps, 5], dtype=torch.float64)
    for k in range(steps):
        with torch.no_grad():
            net.weight.copy_(weights[k].reshape(1, 5))
        ema.update(cur_nimg=(k + 1) * batch, batch_size=batch)
        for i, e in enumerate(ema.emas):
            history[i, k] = e.weight.detach().reshape(5)
    out.update({"track.weights": weights, "track.batch": torch.tensor([float(batch)], dtype=torch.float64),
                "track.stds": torch.tensor(track_stds, dtype=torch.float64), "track.ema": history})

    # Solve: snapshots every 1000 images up to 5000 for profiles 0.05 and 0.10; targets 0.075 at 5000, 0.15 at 3000.
    in_ofs = np.repeat(np.float64([1000, 2000, 3000, 4000, 5000]), 2)
    in_std = np.tile(np.float64([0.05, 0.10]), 5)
    out_ofs, out_std = np.float64([5000, 3000]), np.float64([0.075, 0.15])
    coefs = phema.solve_posthoc_coefficients(in_ofs, in_std, out_ofs, out_std)
    out.update({"solve.in_ofs": torch.from_numpy(in_ofs), "solve.in_std": torch.from_numpy(in_std),
                "solve.out_ofs": torch.from_numpy(out_ofs), "solve.out_std": torch.from_numpy(out_std),
                "solve.coefs": torch.from_numpy(np.ascontiguousarray(coefs))})
    write_safetensors(sys.argv[1], out, {"source": "NVlabs/edm2 training/phema.py"})
    print(f"{sys.argv[1]}: {len(out)} tensors; coefs column sums {coefs.sum(0)}", file=sys.stderr)


if __name__ == "__main__":
    main()
