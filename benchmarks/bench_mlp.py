"""Speed of the dlnotes.nn layers on a small MLP, against PyTorch on the CPU (or the machine's float32 GEMM peak).

Three measurements, in float32, the first two side by side with PyTorch in one process:

(a) dense step: one forward + backward pass of Dense(784->512, relu) -> Dense(512->10) with the softmax
    cross-entropy from logits, on a batch of 256 (no optimizer update; no gradient for the input data);
(b) epoch: one epoch of that MLP trained with Adam, batch size 128, on SYNTHETIC data of MNIST's shape:
    m x 784 standard-normal inputs with RANDOM labels in 0..9 (m = 60000 by default; with a smaller --m the
    measured time is also extrapolated per sample to 60000 and labelled so);
(c) fit's overhead per batch: one epoch of `fit` on a tiny 8-16-4 MLP (so that the unavoidable work is small) minus
    the same batches run by hand on the same model (shuffle, forward, loss, backward, optimizer step), divided by the
    number of batches; the fastest epoch of each.

When torch imports, the same work runs in PyTorch on the CPU. Both libraries use the same number of threads:
--threads N sets it through the library's thread policy (dlnotes.backend.set_num_threads, and
torch.set_num_threads(N)); without it, the count is what DLNOTES_NUM_THREADS (read when dlnotes is imported) or
the BLAS library chose, and torch gets the same. The count used is printed. The measurements alternate
between the libraries in --rounds rounds (the order flips every round), so that load from other processes falls
on both; each round gives a ratio ours/torch, and the table reports the medians over the rounds. The load
average is printed before and after. The machine's float32 GEMM peak (best of several large np.matmul) is always
measured, and our achieved FLOP rate is printed as a fraction of it. Nothing is asserted: the figures depend on
the machine and on what else runs on it. torch's Adam is its default (single-tensor) implementation unless
--torch-fused-adam asks for its fused CPU kernel.

    python benchmarks/bench_mlp.py [--threads N] [--rounds 5] [--m 60000] [--repeats 30] [--epoch-repeats 1]
                                   [--torch-fused-adam] [--no-torch]
"""
import argparse, os, statistics


import numpy as np

from dlnotes.backend import seed, randn, to_numpy, get_rng, xp
from dlnotes.nn.layers import Dense
from dlnotes.nn.losses import CategoricalCrossentropy, one_hot
from dlnotes.nn.models import Sequential
from dlnotes.nn.optimizers import Adam
from common import use_threads, median_time, gemm_peak

N_IN, N_HID, N_OUT = 784, 512, 10
TARGETS = {"dense step": 1.0, "epoch": 0.3}  # wanted: ours / torch at most this


def step_flops(B):
    "FLOPs of forward + backward without dX of the first layer: 2 GEMMs for layer 1, 3 for layer 2."
    return 2 * B * (2 * N_IN * N_HID + 3 * N_HID * N_OUT)


def ours(X, labels, X_step, labels_step, epoch_batch):
    "(step, epoch) callables for dlnotes, warmed up."
    seed(0)
    model = Sequential([Dense(N_HID, activation="relu"), Dense(N_OUT)])
    model.build((N_IN,))
    loss = CategoricalCrossentropy()
    Y_step = one_hot(labels_step, N_OUT)

    def step():
        out = model.forward(X_step, training=True)
        loss.forward(out, Y_step)
        model.backward(loss.backward(), need_dx=False)

    opt = Adam(learning_rate=1e-3)
    fit = lambda X_, y_: model.fit(X_, y_, epochs=1, batch_size=epoch_batch, optimizer=opt,
                                   loss="categorical_crossentropy", metrics=[], verbose=0)
    fit(X[:4096], labels[:4096])  # warm-up
    return step, lambda: fit(X, labels)


def fit_overhead(m=40000, batch=32, rounds=16):
    """Seconds per batch that `fit` adds to the work it cannot avoid, on a tiny MLP (8-16-4, Adam), where that work
    is small: `fit` for one epoch against the same batches run by hand (shuffle, gather, forward, loss, backward without
    dJ/dX for the first layer, optimizer step), both on the same model and optimizer, in alternating order. The fastest
    of `rounds` epochs of each, whose difference is less disturbed by the machine's other work than a median's."""
    seed(7)
    X, labels = randn(m, 8), xp.asarray(get_rng().integers(0, 4, m))
    seed(8)
    model = Sequential([Dense(16, activation="relu"), Dense(4)])
    model.build((8,))
    opt = Adam(learning_rate=1e-3)
    fit = lambda: model.fit(X, labels, epochs=1, batch_size=batch, optimizer=opt, loss="categorical_crossentropy",
                            metrics=[], verbose=0)
    loss, Y = CategoricalCrossentropy(), one_hot(labels, 4)
    def by_hand():
        order = xp.asarray(get_rng().permutation(m))
        for s in range(0, m, batch):
            b = order[s:s + batch]
            loss.forward(model.forward(X[b], training=True), Y[b])
            model.backward(loss.backward(), need_dx=False)
            opt.step(model.layers)
    fit(); by_hand()  # warm-up
    times = {fit: [], by_hand: []}
    for r in range(rounds):
        for f in ((fit, by_hand) if r % 2 == 0 else (by_hand, fit)): times[f].append(median_time(f, 1, warmup=0))
    n = -(-m // batch)
    return (min(times[fit]) - min(times[by_hand])) / n, n


def torch_fns(X, labels, X_step, labels_step, epoch_batch, threads, fused_adam=False):
    "(step, epoch, version) for PyTorch on the CPU with `threads` intra-op threads, warmed up."
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID), torch.nn.ReLU(), torch.nn.Linear(N_HID, N_OUT))
    Xs, ys = torch.from_numpy(to_numpy(X_step)), torch.from_numpy(to_numpy(labels_step))

    def step():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(Xs), ys).backward()

    opt = torch.optim.Adam(net.parameters(), lr=1e-3, **({"fused": True} if fused_adam else {}))
    Xt, yt = torch.from_numpy(to_numpy(X)), torch.from_numpy(to_numpy(labels))

    def epoch(Xe, ye):
        m, total = Xe.shape[0], 0.0
        perm = torch.randperm(m)
        for s in range(0, m, epoch_batch):
            idx = perm[s:s + epoch_batch]
            opt.zero_grad(set_to_none=True)
            J = F.cross_entropy(net(Xe[idx]), ye[idx])
            J.backward()
            opt.step()
            total += J.item() * idx.shape[0]  # the running loss, as fit reports it
        return total / m

    epoch(Xt[:4096], yt[:4096])  # warm-up
    return step, lambda: epoch(Xt, yt), torch.__version__


def load():
    "The 1-minute load average, or nan where the OS has none."
    try: return os.getloadavg()[0]
    except (AttributeError, OSError): return float("nan")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=None, help="threads for NumPy's BLAS and for torch (default: DLNOTES_NUM_THREADS, else the BLAS library's own count)")
    p.add_argument("--rounds", type=int, default=5, help="rounds alternating ours and torch (order flipped every round)")
    p.add_argument("--m", type=int, default=60000, help="examples in the synthetic epoch (MNIST: 60000)")
    p.add_argument("--batch", type=int, default=256, help="batch of the dense step")
    p.add_argument("--epoch-batch", type=int, default=128, help="batch size of the epoch")
    p.add_argument("--repeats", type=int, default=30, help="timed dense steps per round (median)")
    p.add_argument("--epoch-repeats", type=int, default=1, help="timed epochs per round (median)")
    p.add_argument("--torch-fused-adam", action="store_true", help="torch.optim.Adam(fused=True) (default: torch's default Adam)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it imports")
    a = p.parse_args()
    if a.threads is not None and a.threads < 1: p.error("--threads must be >= 1")
    if a.rounds < 1: p.error("--rounds must be >= 1")

    threads, how = use_threads(a.threads)
    load_before = load()
    seed(123)
    X = randn(a.m, N_IN)  # float32, synthetic: MNIST's shape, not MNIST
    labels = xp.asarray(get_rng().integers(0, N_OUT, a.m))  # random labels
    X_step, labels_step = X[:a.batch].copy(), labels[:a.batch].copy()

    have_torch = False
    if not a.no_torch:
        try:
            import torch  # noqa: F401
            have_torch = True
        except ImportError:
            pass

    peak = gemm_peak()
    libs = {"ours": ours(X, labels, X_step, labels_step, a.epoch_batch)}
    if have_torch:
        t_step, t_epoch, tv = torch_fns(X, labels, X_step, labels_step, a.epoch_batch, threads, a.torch_fused_adam)
        libs["torch"] = (t_step, t_epoch)

    times = {(lib, kind): [] for lib in libs for kind in ("step", "epoch")}
    for r in range(a.rounds):
        order = list(libs) if r % 2 == 0 else list(libs)[::-1]
        for lib in order: times[(lib, "step")].append(median_time(libs[lib][0], a.repeats))
        for lib in order: times[(lib, "epoch")].append(median_time(libs[lib][1], a.epoch_repeats, warmup=0))
    load_after = load()

    flops_step = step_flops(a.batch)
    flops_epoch = step_flops(1) * a.m  # per example, the same GEMMs; Adam's element-wise work not counted
    scale = 60000 / a.m
    epoch_label = f"epoch, m={a.m}, batch {a.epoch_batch}, Adam"
    fmt = lambda s: f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"
    med = statistics.median

    print(f"NumPy {np.__version__}, BLAS threads {threads} ({how})"
          + (f", torch {tv} (CPU, set_num_threads({threads}), {'fused' if a.torch_fused_adam else 'default'} Adam)"
             if have_torch else ", torch not available"))
    print(f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after, on {os.cpu_count()} CPUs")
    print(f"float32 GEMM peak (np.matmul 2048x2048, best of 5): {peak / 1e9:.1f} GFLOP/s")
    print("synthetic data of MNIST's shape: standard-normal inputs, random labels (not MNIST)\n")

    if have_torch:
        print("per round (ours / torch):")
        for kind in ("step", "epoch"):
            cells = [f"{fmt(o)}/{fmt(t)}={o / t:.2f}x" for o, t in zip(times[("ours", kind)], times[("torch", kind)])]
            print(f"  {kind:<6}" + "  ".join(cells))
        print()

    head = f"{'benchmark (median over rounds)':<42}{'ours':>11}{'torch':>11}{'ours/torch':>12}{'target':>9}{'ours GFLOP/s':>14}{'% of peak':>11}"
    print(head); print("-" * len(head))
    rows = [(f"dense step, batch {a.batch}, fwd+bwd", "step", 1.0, TARGETS["dense step"], flops_step),
            (epoch_label, "epoch", 1.0, TARGETS["epoch"], flops_epoch)]
    if a.m != 60000:
        rows.append((f"epoch extrapolated to m=60000 (x{scale:.2f})", "epoch", scale, TARGETS["epoch"], flops_epoch))
    for name, kind, k, target, flops in rows:
        t = med(times[("ours", kind)])
        tt = med(times[("torch", kind)]) if have_torch else None
        ratio = f"{med(o / x for o, x in zip(times[('ours', kind)], times[('torch', kind)])):.2f}x" if have_torch else "-"
        rate = flops / t
        print(f"{name:<42}{fmt(t * k):>11}{(fmt(tt * k) if tt else '-'):>11}{ratio:>12}{f'<= {target}x':>9}"
              f"{rate / 1e9:>14.1f}{100 * rate / peak:>10.0f}%")
    print(f"\n{a.rounds} rounds; per round: median of {a.repeats} dense steps after 2 warm-up steps, "
          f"median of {a.epoch_repeats} epoch(s); one warm-up epoch on 4096 examples per library")
    overhead, n_batches = fit_overhead()
    print(f"fit's overhead per batch (tiny 8-16-4 MLP, batch 32, {n_batches} batches, fit minus the same loop by hand, "
          f"fastest of 16 epochs each): {overhead * 1e6:.2f} µs")


if __name__ == "__main__":
    main()
