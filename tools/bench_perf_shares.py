#!/usr/bin/env python3
"""Shares of a CPU training step by kind of work, from a `perf record` of `onestep train` (issue 31's profile).

    perf record -F 499 -o /tmp/step.data build/onestep train --config fmnist-ect-cpu ... --set train.threads=1
    python3 tools/bench_perf_shares.py /tmp/step.data

Reads `perf report --sort dso,sym` and sums the self samples of each symbol into the kinds below (the first pattern
that matches wins); prints a Markdown table, largest share first. Start-up (config, data loading) is in the samples
too: record a few hundred steps so that it is a small part. Shares only: on a shared machine absolute times mean
little, the split between kinds much more.
"""

import re
import subprocess
import sys

KINDS = [  # (kind, regular expression over "dso symbol")
    ("convolution (oneDNN JIT kernels and reorders)", r"\[JIT\]|dnnl|jit_|mkldnn"),
    ("dropout masks (serial Bernoulli sampler, mt19937)", r"bernoulli|random64|mt19937|CPUGeneratorImpl"),
    ("matrix products (MKL sgemm)", r"sgemm|mkl_blas|gemm"),
    ("GroupNorm forward and backward", r"GroupNorm|RowwiseMoments|group_norm"),
    ("SiLU forward and backward", r"silu"),
    ("other element-wise kernels (add, mul, div, exp, where, ...)",
     r"VectorizedLoop|cpu_kernel|Sleef|add_kernel|mul_kernel|div_|where|copy_|fill|lerp|addcmul|addcdiv|sqrt"),
    ("reductions and concatenation", r"reduce|sum|cat_serial|norm|inner_sum|outer_sum"),
    ("memory allocation (malloc, free, page faults)", r"malloc|free|_int_|unlink_chunk|memalign|page_fault|clear_page"),
    ("dispatcher, autograd engine, tensor bookkeeping",
     r"c10::|at::|torch::autograd|Dispatch|OperatorEntry|intrusive_ptr|_Sp_counted|TensorImpl|tls_get_addr"),
    ("OpenMP runtime and kernel scheduling", r"gomp|GOMP|futex|schedule|finish_task_switch|\[k\]|kallsyms"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench_perf_shares.py PERF_DATA")
    # -n: sample counts (the percentages are rounded to 0.01 each, and the JIT code is thousands of tiny entries).
    report = subprocess.run(["perf", "report", "-n", "-i", sys.argv[1], "--sort", "dso,sym", "--stdio",
                             "--percent-limit", "0"], capture_output=True, text=True)
    if report.returncode != 0:
        sys.exit(f"bench_perf_shares: error: perf report failed: {report.stderr.strip()[:300]}")
    shares = {kind: 0.0 for kind, _ in KINDS}
    other = 0.0
    line_re = re.compile(r"^\s*[0-9.]+%\s+([0-9]+)\s+(\S.*)$")
    for line in report.stdout.splitlines():
        m = line_re.match(line)
        if not m or line.lstrip().startswith("#"):
            continue
        percent, rest = float(m.group(1)), m.group(2)  # a sample count; normalised below
        for kind, pattern in KINDS:
            if re.search(pattern, rest):
                shares[kind] += percent
                break
        else:
            other += percent
    total = sum(shares.values()) + other
    if total == 0:
        sys.exit("bench_perf_shares: error: no samples in the report")
    shares = {kind: 100 * count / total for kind, count in shares.items()}
    rows = sorted(shares.items(), key=lambda kv: -kv[1]) + [("everything else", 100 * other / total)]
    print("| kind of work | share of samples |")
    print("| --- | --- |")
    for kind, share in rows:
        print(f"| {kind} | {share:.1f}% |")


if __name__ == "__main__":
    main()
