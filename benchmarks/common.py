"""Timing helpers shared by the benchmarks: BLAS thread control, medians, and the machine's float32 GEMM peak."""
import os, statistics, time

import numpy as np

_LIMITS = None  # the threadpoolctl limits in force, kept for the whole run


def blas_threads():
    "Threads of NumPy's BLAS (threadpoolctl), else os.cpu_count()."
    try:
        from threadpoolctl import threadpool_info
        n = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if n: return max(n)
    except ImportError:
        pass
    return os.cpu_count() or 1


def limit_threads(n, user_api=None):
    "Limit the process's BLAS (and OpenMP, unless user_api='blas') pools to n threads; False without threadpoolctl."
    global _LIMITS
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    _LIMITS = threadpool_limits(limits=n, user_api=user_api)
    return True


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
