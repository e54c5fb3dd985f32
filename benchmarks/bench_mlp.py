"""Speed of dlnotes.layers on a small MLP, against PyTorch on the CPU (or the machine's float32 GEMM peak).

Two measurements, both in float32, side by side in one process:

(a) dense step: one forward + backward pass of Dense(784->512, relu) -> Dense(512->10) with the softmax
    cross-entropy from logits, on a batch of 256 (no optimizer update; no gradient for the input data);
(b) epoch: one epoch of that MLP trained with Adam, batch size 128, on SYNTHETIC data of MNIST's shape:
    m x 784 standard-normal inputs with RANDOM labels in 0..9 (m = 60000 by default; with a smaller --m the
    measured time is also extrapolated per sample to 60000 and labelled so).

When torch imports, the same work runs in PyTorch on the CPU with torch.set_num_threads equal to NumPy's BLAS
thread count, and the table prints ours/torch. The machine's float32 GEMM peak (best of several large np.matmul)
is always measured, and our achieved FLOP rate is printed as a fraction of it. Times are medians over repeats
after a warm-up. Nothing is asserted: the figures depend on the machine and on what else runs on it.

    python benchmarks/bench_mlp.py [--m 60000] [--repeats 30] [--epoch-repeats 3] [--no-torch]
"""
import argparse, os, statistics, time

import numpy as np

from dlnotes.backend import seed, randn, to_numpy, get_rng, xp
from dlnotes.layers import Sequential, Dense, CategoricalCrossentropy, one_hot
from dlnotes.optimizers import Adam

N_IN, N_HID, N_OUT = 784, 512, 10
TARGETS = {"dense step": 1.0, "epoch": 0.3}  # wanted: ours / torch at most this


def blas_threads():
    "Threads of NumPy's BLAS (threadpoolctl), else os.cpu_count()."
    try:
        from threadpoolctl import threadpool_info
        n = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if n: return max(n)
    except ImportError:
        pass
    return os.cpu_count() or 1


def median_time(fn, repeats, warmup=2):
    "Median wall time of fn() over `repeats` calls, after `warmup` calls."
    for _ in range(warmup): fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def gemm_peak(n=2048, repeats=5):
    "Best float32 GEMM rate of np.matmul on n x n matrices, in FLOP/s."
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    A @ B
    best = min(_timed(lambda: A @ B) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn):
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0


def step_flops(B):
    "FLOPs of forward + backward without dX of the first layer: 2 GEMMs for layer 1, 3 for layer 2."
    return 2 * B * (2 * N_IN * N_HID + 3 * N_HID * N_OUT)


def ours(X, labels, X_step, labels_step, epoch_batch, repeats, epoch_repeats):
    seed(0)
    model = Sequential([Dense(N_HID, activation="relu"), Dense(N_OUT)])
    model.build((N_IN,))
    loss = CategoricalCrossentropy()
    Y_step = one_hot(labels_step, N_OUT)

    def step():
        out = model.forward(X_step, training=True)
        loss.forward(out, Y_step)
        model.backward(loss.backward(), need_dx=False)

    t_step = median_time(step, repeats)
    opt = Adam(learning_rate=1e-3)
    fit = lambda X_, y_: model.fit(X_, y_, epochs=1, batch_size=epoch_batch, optimizer=opt,
                                   loss="categorical_crossentropy", metrics=[], verbose=0)
    fit(X[:4096], labels[:4096])  # warm-up
    t_epoch = median_time(lambda: fit(X, labels), epoch_repeats, warmup=0)
    return t_step, t_epoch


def torch_times(X, labels, X_step, labels_step, epoch_batch, repeats, epoch_repeats, threads):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID), torch.nn.ReLU(), torch.nn.Linear(N_HID, N_OUT))
    Xs, ys = torch.from_numpy(to_numpy(X_step)), torch.from_numpy(to_numpy(labels_step))

    def step():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(Xs), ys).backward()

    t_step = median_time(step, repeats)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
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
    t_epoch = median_time(lambda: epoch(Xt, yt), epoch_repeats, warmup=0)
    return t_step, t_epoch, torch.__version__


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--m", type=int, default=60000, help="examples in the synthetic epoch (MNIST: 60000)")
    p.add_argument("--batch", type=int, default=256, help="batch of the dense step")
    p.add_argument("--epoch-batch", type=int, default=128, help="batch size of the epoch")
    p.add_argument("--repeats", type=int, default=30, help="timed dense steps (median)")
    p.add_argument("--epoch-repeats", type=int, default=3, help="timed epochs (median)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it imports")
    a = p.parse_args()

    threads = blas_threads()
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
    t_step, t_epoch = ours(X, labels, X_step, labels_step, a.epoch_batch, a.repeats, a.epoch_repeats)
    if have_torch:
        tt_step, tt_epoch, tv = torch_times(X, labels, X_step, labels_step, a.epoch_batch, a.repeats, a.epoch_repeats, threads)

    flops_step = step_flops(a.batch)
    flops_epoch = step_flops(1) * a.m  # per example, the same GEMMs; Adam's element-wise work not counted
    scale = 60000 / a.m
    epoch_label = f"epoch, m={a.m}, batch {a.epoch_batch}, Adam"

    print(f"NumPy {np.__version__}, BLAS threads {threads}" + (f", torch {tv} (CPU, set_num_threads({threads}))" if have_torch else ", torch not available"))
    print(f"float32 GEMM peak (np.matmul 2048x2048, best of 5): {peak / 1e9:.1f} GFLOP/s")
    print("synthetic data of MNIST's shape: standard-normal inputs, random labels (not MNIST)\n")
    head = f"{'benchmark':<42}{'ours':>11}{'torch':>11}{'ours/torch':>12}{'target':>9}{'ours GFLOP/s':>14}{'% of peak':>11}"
    print(head); print("-" * len(head))
    rows = [(f"dense step, batch {a.batch}, fwd+bwd", t_step, tt_step if have_torch else None, TARGETS["dense step"], flops_step / t_step),
            (epoch_label, t_epoch, tt_epoch if have_torch else None, TARGETS["epoch"], flops_epoch / t_epoch)]
    if a.m != 60000:
        rows.append((f"epoch extrapolated to m=60000 (x{scale:.2f})", t_epoch * scale,
                     tt_epoch * scale if have_torch else None, TARGETS["epoch"], flops_epoch / t_epoch))
    for name, t, tt, target, rate in rows:
        fmt = lambda s: f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"
        ratio = f"{t / tt:.2f}x" if tt else "-"
        print(f"{name:<42}{fmt(t):>11}{(fmt(tt) if tt else '-'):>11}{ratio:>12}{f'<= {target}x':>9}{rate / 1e9:>14.1f}{100 * rate / peak:>10.0f}%")
    print(f"\nmedians: {a.repeats} dense steps after 2 warm-up steps; {a.epoch_repeats} epochs after a warm-up on 4096 examples")


if __name__ == "__main__":
    main()
