"""Sliding-window detection window by window against the same classifier run convolutionally (dlnotes.vision.localization).

The window classifier of nbs/33b_localization.ipynb (`window_classifier(4)`: conv 3x3 (8) - max pool 2 - conv 3x3 (16) -
Flatten - Dense(32) - Dense(5)) on 16 x 16 windows, at stride 2, over 64 x 64 scenes of `make_scenes` (625 windows a
scene). Three ways to get the 625 sets of logits, float32, inference only:

(a) loop: `sliding_window_scores`, one forward pass per window (the notes' sliding-window algorithm);
(b) batch: the 625 crops stacked into one batch, one forward pass (the overlapping pixels still computed once per window);
(c) conv: `dense_to_conv(model)` on the whole scene, one forward pass (every feature computed once).

The weights are random (a seeded untrained classifier): the cost does not depend on them. The three results are compared
first (equal to 1e-4), then the median times over --repeats rounds (the three run alternately) and the ratios are printed.
Nothing is asserted: the figures depend on the machine and on what else runs on it.

    python benchmarks/bench_sliding.py [--repeats 20] [--scenes 4] [--threads N]
"""
import argparse

import numpy as np

from dlnotes.backend import seed, to_device, to_numpy, xp
from dlnotes.vision.localization import dense_to_conv, sliding_window_scores, window_classifier
from dlnotes.vision.scenes import make_scenes
from common import use_threads, interleaved_medians

WINDOW, STRIDE = 16, 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--scenes", type=int, default=4, help="scenes per round (each method runs on all of them)")
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS, else the BLAS library's own count)")
    args = ap.parse_args()
    threads, how = use_threads(args.threads)
    scenes = to_device(make_scenes(args.scenes, size=64, scale=(12, 16), split="test", seed=0).images)
    seed(0)
    model = window_classifier(4)
    model.build((WINDOW, WINDOW, 1))
    conv_model = dense_to_conv(model)
    n = (64 - WINDOW) // STRIDE + 1
    crops = [xp.stack([s[STRIDE * i:STRIDE * i + WINDOW, STRIDE * j:STRIDE * j + WINDOW] for i in range(n) for j in range(n)]) for s in scenes]

    loop = lambda: [sliding_window_scores(model, s, WINDOW, STRIDE) for s in scenes]
    batch = lambda: [model.forward(c) for c in crops]
    conv = lambda: [conv_model.forward(s[None]) for s in scenes]
    for a, b, c in zip(loop(), batch(), conv()):
        np.testing.assert_allclose(to_numpy(b).reshape(n, n, -1), to_numpy(a), atol=1e-4)
        np.testing.assert_allclose(to_numpy(c)[0], to_numpy(a), atol=1e-4)
    t = interleaved_medians({"loop": loop, "batch": batch, "conv": conv}, args.repeats)
    print(f"threads: {threads} ({how}); {args.scenes} scenes 64x64, {n * n} windows {WINDOW}x{WINDOW} at stride {STRIDE} each; "
          f"median of {args.repeats} rounds; the three results agree (1e-4)")
    print(f"\n{'':22s} {'ms / scene':>11s} {'vs conv':>8s}")
    for k, label in (("loop", "window by window"), ("batch", "625 crops, one batch"), ("conv", "convolutional")):
        print(f"{label:22s} {t[k] * 1e3 / args.scenes:11.3f} {t[k] / t['conv']:7.1f}x")
    print(f"\nspeed-up of the convolutional pass: {t['loop'] / t['conv']:.0f}x over the loop, {t['batch'] / t['conv']:.1f}x over the batch of crops")


if __name__ == "__main__":
    main()
