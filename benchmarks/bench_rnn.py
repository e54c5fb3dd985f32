"""Speed of dlnotes.seq.recurrent's LSTM and GRU layers against PyTorch's nn.LSTM / nn.GRU on the CPU.

One measurement per layer, float32, forward + backward: a batch of 64 sequences of 50 steps with 64 features through a
layer of 128 units, every step's output returned (return_sequences=True, batch_first=True in PyTorch), and the backward
pass from a fixed dJ/dY to the input and every weight. PyTorch gets the same weights (Keras's fused kernels transposed;
for the GRU the blocks z, r, h reordered to PyTorch's r, z, n, the recurrent bias as bias_hh) and
torch.set_num_threads equal to our BLAS thread count (set by --threads, else by DLNOTES_NUM_THREADS or BLAS). The
outputs and the gradients of both are compared first (same numbers up to float32 rounding). The libraries run
alternately, one call each per round, so that both see the same load; the table prints median times and ours/torch
against the target. PyTorch's CPU nn.LSTM runs oneDNN's fused LSTM kernel when oneDNN is enabled (the default), while
nn.GRU always runs ATen's generic loop of matrix products and element-wise operations, which is what ours is; so the
table also times PyTorch with oneDNN switched off (torch.backends.mkldnn.flags(enabled=False)). With --cpu-time the
times are the process's CPU time (time.process_time), which a busy machine disturbs less than the wall clock. Nothing
is asserted: the figures depend on the machine and on what else runs on it.

    python benchmarks/bench_rnn.py [--repeats 20] [--threads N] [--cpu-time] [--no-torch]
"""
import argparse, os, statistics, time, warnings

import numpy as np

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.seq.recurrent import LSTM, GRU
from common import use_threads, interleaved_medians


def cpu_medians(fns, repeats, warmup=2):
    "{name: median CPU seconds of the process}: as common.interleaved_medians, timed with time.process_time."
    for _ in range(warmup):
        for fn in fns.values(): fn()
    ts = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time(); fn(); ts[k].append(time.process_time() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}

M, T, N_X, UNITS = 64, 50, 64, 128
TARGET = 1.2  # wanted: ours / torch at most this


def make(cls):
    "A built layer with random biases, its input X and a fixed dJ/dY (float32)."
    seed(0)
    X, layer = randn(M, T, N_X), cls(UNITS, return_sequences=True)
    layer(X)
    layer.params["bias"][...] = 0.1 * randn(*layer.params["bias"].shape)
    return layer, X, randn(M, T, UNITS)


def ours(layer, X, dY):
    def run():
        layer.forward(X)
        return layer.backward(dY), layer.grads
    return run


def _torch_order(a, cls_name, axis):
    "Keras's gate blocks in PyTorch's order: the same for the LSTM (i, f, c/g, o); z, r, h -> r, z, n for the GRU."
    if cls_name == "LSTM": return a
    z, r, h = np.split(a, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


def theirs(torch, layer, X, dY, onednn=True):
    "The same layer in PyTorch, with our weights (oneDNN's fused kernels allowed or not)."
    name = type(layer).__name__
    net = getattr(torch.nn, name)(N_X, UNITS, batch_first=True)
    p = {k: to_numpy(v) for k, v in layer.params.items()}
    b_ih, b_hh = (p["bias"], np.zeros_like(p["bias"])) if name == "LSTM" else (p["bias"][0], p["bias"][1])
    with torch.no_grad():
        net.weight_ih_l0.copy_(torch.from_numpy(_torch_order(p["kernel"], name, 1).T.copy()))
        net.weight_hh_l0.copy_(torch.from_numpy(_torch_order(p["recurrent_kernel"], name, 1).T.copy()))
        net.bias_ih_l0.copy_(torch.from_numpy(_torch_order(b_ih, name, 0).copy()))
        net.bias_hh_l0.copy_(torch.from_numpy(_torch_order(b_hh, name, 0).copy()))
    x, dy = torch.from_numpy(to_numpy(X)).requires_grad_(True), torch.from_numpy(to_numpy(dY))
    def run():
        x.grad = None
        net.zero_grad(set_to_none=True)
        with torch.backends.mkldnn.flags(enabled=onednn):
            y, _ = net(x)
            y.backward(dy)
        return y, x.grad, net
    return run


def check_same(layer, X, run_o, run_t):
    "Both libraries compute the same outputs and gradients (float32 rounding aside)."
    name = type(layer).__name__
    dX, grads = run_o()
    Y = layer.forward(X)
    y, dx, net = run_t()
    np.testing.assert_allclose(to_numpy(Y), y.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(to_numpy(dX), dx.numpy(), rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(_torch_order(to_numpy(grads["kernel"]), name, 1).T, net.weight_ih_l0.grad.numpy(), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(_torch_order(to_numpy(grads["recurrent_kernel"]), name, 1).T, net.weight_hh_l0.grad.numpy(),
                               rtol=1e-3, atol=1e-2)
    db = to_numpy(grads["bias"])
    np.testing.assert_allclose(_torch_order(db if name == "LSTM" else db[1], name, 0), net.bias_hh_l0.grad.numpy(), rtol=1e-3, atol=1e-2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="BLAS and torch threads (default: DLNOTES_NUM_THREADS, else the BLAS library's own count)")
    ap.add_argument("--cpu-time", action="store_true", help="time with the process's CPU time instead of the wall clock")
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    threads, how = use_threads(args.threads)
    torch = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
            warnings.filterwarnings("ignore", message="TF32 acceleration")  # printed when oneDNN's flags are set
        except ImportError:
            torch = None
    medians = cpu_medians if args.cpu_time else interleaved_medians
    print(f"threads: {threads} (BLAS{', torch' if torch else ''}; {how}); cpu_count {os.cpu_count()}")
    print(f"batch {M}, {T} steps, {N_X} inputs, {UNITS} units, float32, return_sequences; forward + backward; "
          f"median {'CPU' if args.cpu_time else 'wall'} time of {args.repeats} rounds")
    rows = []
    for cls in (LSTM, GRU):
        layer, X, dY = make(cls)
        fns = {"ours": ours(layer, X, dY)}
        if torch is not None:
            fns["torch"], fns["torch, no oneDNN"] = theirs(torch, layer, X, dY), theirs(torch, layer, X, dY, onednn=False)
            for k in ("torch", "torch, no oneDNN"): check_same(layer, X, fns["ours"], fns[k])
        rows.append((cls.__name__, medians(fns, args.repeats)))
    if torch is not None: print(f"torch {torch.__version__}: same outputs and gradients as ours (checked)")
    head = f"\n{'':14s} {'ours ms':>8s}" + (f" {'torch ms':>9s} {'ours/torch':>11s} {'target':>7s}        {'torch no-oneDNN ms':>19s} {'ours/it':>8s}" if torch else "")
    print(head)
    for name, t in rows:
        line = f"{name + ' fwd+bwd':14s} {t['ours'] * 1e3:8.2f}"
        if torch is not None:
            r, r2 = t["ours"] / t["torch"], t["ours"] / t["torch, no oneDNN"]
            line += (f" {t['torch'] * 1e3:9.2f} {r:11.2f} {'<= ' + str(TARGET):>7s} {'met' if r <= TARGET else 'missed':>6s}"
                     f" {t['torch, no oneDNN'] * 1e3:19.2f} {r2:8.2f}")
        print(line)


if __name__ == "__main__":
    main()
