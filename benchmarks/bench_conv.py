"""Speed of dlnotes.vision.convolution against PyTorch on the CPU (or the machine's float32 GEMM peak).

Two measurements, float32, forward + backward, in one process:

(a) conv: conv_forward + conv_backward (dA_prev, dW, db) on a batch of 64 images 32x32x3, 32 filters 3x3,
    pad 1, stride 1;
(b) max pool: pool_forward + pool_backward, window 2x2, stride 2, on the conv output (64x32x32x32).

When torch imports, the same work runs in PyTorch (torch.nn.functional.conv2d / max_pool2d, autograd backward,
gradients for the input, the weights and the bias) with torch.set_num_threads equal to our BLAS thread count (set by --threads, else by DLNOTES_NUM_THREADS or BLAS).
PyTorch gets its native NCHW layout (converted once, outside the timings); ours is channels-last (NHWC).
The two libraries run alternately, one call each per round, so that both see the same load, and the table
prints median times and ours/torch against the targets. The results of both are compared first (same numbers
up to float32 rounding). Without torch, the conv's FLOP rate is printed as a fraction of the machine's float32
GEMM peak (best of a few 2048x2048 np.matmul), which is always measured. Nothing is asserted: the figures
depend on the machine and on what else runs on it.

    python benchmarks/bench_conv.py [--repeats 30] [--threads N] [--no-torch]
"""
import argparse, os

import numpy as np

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.vision.convolution import conv_forward, conv_backward, pool_forward, pool_backward
from common import use_threads, gemm_peak, interleaved_medians

M, N_H, N_W, N_C_PREV, N_C, F = 64, 32, 32, 3, 32, 3
TARGETS = {"conv fwd+bwd": 1.1, "max pool fwd+bwd": 1.2}  # wanted: ours / torch at most this


def make_inputs():
    seed(0)
    A_prev = randn(M, N_H, N_W, N_C_PREV)
    W = randn(F, F, N_C_PREV, N_C) * np.float32(np.sqrt(2 / (F * F * N_C_PREV)))
    b = randn(1, 1, 1, N_C) * np.float32(0.1)
    dZ = randn(M, N_H, N_W, N_C)
    hp = {"stride": 1, "pad": 1}
    Z, _ = conv_forward(A_prev, W, b, hp)
    P, _ = pool_forward(Z, {"f": 2, "stride": 2})
    dP = randn(*P.shape)
    return A_prev, W, b, hp, dZ, Z, dP


def ours(A_prev, W, b, hp, dZ, Z, dP):
    def conv():
        _, cache = conv_forward(A_prev, W, b, hp)
        return conv_backward(dZ, cache)
    def pool():
        _, cache = pool_forward(Z, {"f": 2, "stride": 2}, "max")
        return pool_backward(dP, cache, "max")
    return conv, pool


def theirs(torch, A_prev, W, b, hp, dZ, Z, dP):
    "The same two computations in PyTorch, NCHW."
    nchw = lambda a: torch.from_numpy(np.ascontiguousarray(to_numpy(a).transpose(0, 3, 1, 2)))
    x = nchw(A_prev).requires_grad_(True)
    w = torch.from_numpy(np.ascontiguousarray(to_numpy(W).transpose(3, 2, 0, 1))).requires_grad_(True)
    bb = torch.from_numpy(to_numpy(b).reshape(-1).copy()).requires_grad_(True)
    dz, z, dp = nchw(dZ), nchw(Z).requires_grad_(True), nchw(dP)
    def conv():
        x.grad = w.grad = bb.grad = None
        y = torch.nn.functional.conv2d(x, w, bb, stride=hp["stride"], padding=hp["pad"])
        y.backward(dz)
        return x.grad, w.grad, bb.grad
    def pool():
        z.grad = None
        torch.nn.functional.max_pool2d(z, 2, 2).backward(dp)
        return z.grad
    return conv, pool


def check_same(conv_o, pool_o, conv_t, pool_t):
    "Both libraries compute the same gradients (float32 rounding aside)."
    dA_prev, dW, db = (to_numpy(g) for g in conv_o())
    dx, dw, dbb = (g.numpy() for g in conv_t())
    np.testing.assert_allclose(dA_prev, dx.transpose(0, 2, 3, 1), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dW, dw.transpose(2, 3, 1, 0), rtol=1e-3, atol=1e-1)
    np.testing.assert_allclose(db.reshape(-1), dbb, rtol=1e-3, atol=1e-1)
    np.testing.assert_allclose(to_numpy(pool_o()), pool_t().numpy().transpose(0, 2, 3, 1), rtol=0, atol=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: DLNOTES_NUM_THREADS, else the BLAS library's own count)")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    threads, how = use_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError:
            torch = None

    inputs = make_inputs()
    conv_o, pool_o = ours(*inputs)
    peak = gemm_peak()
    print(f"threads: {threads} (BLAS{', torch' if torch else ''}; {how}); cpu_count {os.cpu_count()}; float32 GEMM peak {peak / 1e9:.1f} GFLOP/s")
    print(f"conv: {M}x{N_H}x{N_W}x{N_C_PREV} -> {N_C} filters {F}x{F}, pad 1, stride 1; "
          f"max pool 2x2/2 on {M}x{N_H}x{N_W}x{N_C}; float32; median of {args.repeats} rounds")
    flops = 3 * 2 * M * N_H * N_W * F * F * N_C_PREV * N_C  # forward, dW and dA_prev: one GEMM's worth each

    if torch is None:
        t = interleaved_medians({"conv fwd+bwd": conv_o, "max pool fwd+bwd": pool_o}, args.repeats)
        print(f"\n{'':18s} {'ours ms':>9s}")
        for k, v in t.items(): print(f"{k:18s} {v * 1e3:9.2f}")
        print(f"\nconv: {flops / t['conv fwd+bwd'] / 1e9:.2f} GFLOP/s = {flops / t['conv fwd+bwd'] / peak:.1%} of the GEMM peak "
              f"({'--no-torch' if args.no_torch else 'torch not installed'}: no comparison)")
        return
    conv_t, pool_t = theirs(torch, *inputs)
    check_same(conv_o, pool_o, conv_t, pool_t)
    t_conv = interleaved_medians({"ours": conv_o, "torch": conv_t}, args.repeats)
    t_pool = interleaved_medians({"ours": pool_o, "torch": pool_t}, args.repeats)
    print(f"torch {torch.__version__}: same results as ours (checked)\n")
    print(f"{'':18s} {'ours ms':>9s} {'torch ms':>9s} {'ours/torch':>11s} {'target':>8s}")
    for name, t in (("conv fwd+bwd", t_conv), ("max pool fwd+bwd", t_pool)):
        r = t["ours"] / t["torch"]
        print(f"{name:18s} {t['ours'] * 1e3:9.2f} {t['torch'] * 1e3:9.2f} {r:11.2f} {'<= ' + str(TARGETS[name]):>8s}"
              f"  {'met' if r <= TARGETS[name] else 'missed'}")
    print(f"\nconv: ours {flops / t_conv['ours'] / 1e9:.2f} GFLOP/s ({flops / t_conv['ours'] / peak:.1%} of the GEMM peak), "
          f"torch {flops / t_conv['torch'] / 1e9:.2f} GFLOP/s")


if __name__ == "__main__":
    main()
