"""Timing helpers shared by the benchmarks: the thread count (through dlnotes.backend), medians, and the machine's float32 GEMM peak."""
import os, statistics, time

import numpy as np


def use_threads(n=None):
    "Set the BLAS thread count with the library's one thread policy (n=None: keep what DLNOTES_NUM_THREADS or BLAS chose); returns (count, how it was set)."
    from dlnotes.backend import set_num_threads, get_num_threads
    if n is not None: return set_num_threads(n), f"--threads {n}"
    env = os.environ.get("DLNOTES_NUM_THREADS")
    return get_num_threads(), (f"DLNOTES_NUM_THREADS={env}" if env else "BLAS default")


def timed(fn):
    "Wall time of one call of fn(), in seconds."
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0


def median_time(fn, repeats, warmup=2):
    "Median wall time of fn() over `repeats` calls, after `warmup` calls."
    for _ in range(warmup): fn()
    return statistics.median(timed(fn) for _ in range(repeats))


def interleaved_medians(fns, repeats, warmup=2):
    "{name: median seconds}: the functions run alternately, once each per round, after `warmup` rounds."
    for _ in range(warmup):
        for fn in fns.values(): fn()
    ts = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items(): ts[k].append(timed(fn))
    return {k: statistics.median(v) for k, v in ts.items()}


def gemm_peak(n=2048, repeats=5):
    "Best float32 GEMM rate of np.matmul on n x n matrices, in FLOP/s."
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    A @ B
    return 2 * n**3 / min(timed(lambda: A @ B) for _ in range(repeats))
