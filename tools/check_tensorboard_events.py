#!/usr/bin/env python3
"""Reads a run directory's TensorBoard event files with TensorBoard's own reader and checks what onestep wrote.

Needs Python with the `tensorboard` package (pip install tensorboard); onestep itself does not. For each run
directory: the scalar tags with their number of points and last value, the image tags, and a failure (exit 1) when
an expected tag is missing, a value is not finite, or a file does not load (TensorBoard's reader checks every
record's length and data CRC-32C).

    python3 tools/check_tensorboard_events.py runs/fmnist-ict --expect train/loss train/lr --expect-image samples
"""
import argparse
import glob
import math
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (runs/<name>)")
    parser.add_argument("--expect", nargs="*", default=["train/loss", "train/lr", "train/images_per_s"],
                        help="scalar tags that must be present (default: train/loss train/lr train/images_per_s)")
    parser.add_argument("--expect-image", nargs="*", default=[], help="image tags that must be present")
    parser.add_argument("--min-steps", type=int, default=1, help="points each expected scalar must have")
    args = parser.parse_args()
    try:
        from tensorboard.backend.event_processing import event_accumulator
    except ImportError:
        print("check_tensorboard_events: the 'tensorboard' Python package is not installed "
              "(pip install tensorboard)", file=sys.stderr)
        return 2

    failures = []
    for run in args.runs:
        files = sorted(glob.glob(os.path.join(run, "events.out.tfevents.*")))
        if not files:
            failures.append(f"{run}: no events.out.tfevents.* file")
            continue
        # All sizes 0: keep every event (the default samples 1000 scalars and 4 images per tag).
        acc = event_accumulator.EventAccumulator(run, size_guidance={event_accumulator.SCALARS: 0,
                                                                     event_accumulator.IMAGES: 0})
        acc.Reload()
        tags = acc.Tags()
        print(f"{run}: {len(files)} event file(s)")
        for tag in sorted(tags["scalars"]):
            events = acc.Scalars(tag)
            bad = [e.step for e in events if not math.isfinite(e.value)]
            print(f"  scalar {tag}: {len(events)} points, steps {events[0].step}..{events[-1].step}, "
                  f"last {events[-1].value:.6g}")
            if bad:
                failures.append(f"{run}: {tag} is not finite at steps {bad[:5]}")
        for tag in sorted(tags["images"]):
            images = acc.Images(tag)
            last = images[-1]
            print(f"  image {tag}: {len(images)} at steps {[i.step for i in images]}, last {last.width}x{last.height}, "
                  f"{len(last.encoded_image_string)} bytes PNG")
            if not last.encoded_image_string.startswith(b"\x89PNG"):
                failures.append(f"{run}: image {tag} is not a PNG")
        for tag in args.expect:
            if tag not in tags["scalars"]:
                failures.append(f"{run}: scalar '{tag}' missing")
            elif len(acc.Scalars(tag)) < args.min_steps:
                failures.append(f"{run}: scalar '{tag}' has {len(acc.Scalars(tag))} points, expected {args.min_steps}+")
        for tag in args.expect_image:
            if tag not in tags["images"]:
                failures.append(f"{run}: image '{tag}' missing")
    for failure in failures:
        print("FAIL " + failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
