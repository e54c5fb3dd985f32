"""How `dlnotes.backend` picks NumPy or CuPy at import time, and its array helpers.

The import-time choice is checked in fresh interpreters: each test writes a fake `cupy`
package into a temporary directory that comes first on `PYTHONPATH`, so every kind of
machine (no CuPy, CuPy without a GPU, a working GPU) can be reproduced on any machine.
"""
import importlib.util, json, os, subprocess, sys, textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import dlnotes.backend as backend
from dlnotes.backend import (xp, HAS_GPU, resolve_backend, get_array_module, to_numpy, to_device, seed, get_rng,
                             randn, rand, uniform, permutation, get_default_dtype, set_default_dtype)

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child: imports the library and writes what it chose to a JSON file, so that
# anything on stdout or stderr can only come from the import itself.
CHILD = textwrap.dedent("""
    import json, sys
    out = {}
    try:
        import dlnotes, dlnotes.backend as b
        out.update(xp=b.xp.__name__, has_gpu=b.HAS_GPU, reason=b.BACKEND_REASON,
                   cupy_imported="cupy" in sys.modules)
        if b.HAS_GPU:  # exercise the GPU branches of the helpers with whatever CuPy was chosen
            a = b.to_device([[1.0, 2.0], [3.0, 4.0]])
            h = b.to_numpy(a @ a)
            out.update(device_type=type(a).__module__ + "." + type(a).__name__,
                       module_of_device_array=b.get_array_module(a).__name__,
                       host_type=type(h).__module__ + "." + type(h).__name__, host_value=h.tolist())
    except Exception as e:
        out.update(error=type(e).__name__, message=str(e))
    with open(sys.argv[1], "w") as f: json.dump(out, f)
""")

# Fake CuPy packages, one per kind of machine.
ABSENT = 'raise ModuleNotFoundError("No module named \'cupy\'", name="cupy")\n'

NO_DEVICE = textwrap.dedent("""
    # Imports like a CuPy wheel on a machine without a driver: a warning at import, then
    # the first operation that touches the GPU fails.
    import warnings
    warnings.warn("CUDA path could not be detected. Set CUDA_PATH environment variable.", UserWarning)
    import numpy as _np
    float32 = _np.float32
    class CUDARuntimeError(RuntimeError): pass
    def arange(*args, **kwargs):
        raise CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")
""")

WORKING = textwrap.dedent("""
    # A 'GPU' that is NumPy in disguise: device arrays are an ndarray subclass with CuPy's
    # `.get()` copy to the host, and `get_array_module` tells device from host arrays.
    import sys
    import numpy as _np
    from numpy import *  # the NumPy namespace, as CuPy mirrors it
    class ndarray(_np.ndarray):
        def get(self): return _np.array(self)
    def asarray(a, dtype=None): return _np.asarray(a, dtype=dtype).view(ndarray)
    def arange(*args, **kwargs): return _np.arange(*args, **kwargs).view(ndarray)
    def get_array_module(*arrays):
        return sys.modules[__name__] if any(isinstance(a, ndarray) for a in arrays) else _np
""")

WRONG_RESULT = textwrap.dedent("""
    # Imports and computes, but the check computation comes back wrong (a broken driver).
    import numpy as _np
    float32 = _np.float32
    def arange(n, dtype=None): return _np.zeros(n, dtype=dtype)
""")

def marker_fake(marker, exc="ImportError"):
    "A fake CuPy that leaves `marker` behind when anything imports it, then fails."
    return f"open({str(marker)!r}, 'w').close()\nraise {exc}('fake cupy was imported')\n"


def run_child(tmp_path, fake_cupy=None, backend_env=None):
    "Import dlnotes in a fresh interpreter; return (choice dict, stdout, stderr)."
    fakes = tmp_path / "fakes"
    fakes.mkdir(exist_ok=True)
    if fake_cupy is not None:
        (fakes / "cupy").mkdir(exist_ok=True)
        (fakes / "cupy" / "__init__.py").write_text(fake_cupy)
    env = {k: v for k, v in os.environ.items() if k not in ("DLNOTES_BACKEND", "PYTHONPATH", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(fakes), str(ROOT)])  # before site-packages
    if backend_env is not None: env["DLNOTES_BACKEND"] = backend_env
    result = tmp_path / "result.json"
    p = subprocess.run([sys.executable, "-W", "default", "-c", CHILD, str(result)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, f"child failed with {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return json.loads(result.read_text()), p.stdout, p.stderr


def assert_silent_numpy(out, stdout, stderr):
    assert (stdout, stderr) == ("", ""), f"importing dlnotes printed:\nstdout: {stdout!r}\nstderr: {stderr!r}"
    assert "error" not in out, out
    assert (out["xp"], out["has_gpu"]) == ("numpy", False), out
    assert out["reason"].startswith("NumPy"), out


# ---------------------------------------------------------------------------- auto: fall back quietly

AUTO = [None, "auto", "AUTO", " auto ", ""]  # unset, and the spellings that mean auto

@pytest.mark.parametrize("backend_env", AUTO)
def test_auto_without_cupy_is_silent_numpy(tmp_path, backend_env):
    out, stdout, stderr = run_child(tmp_path, ABSENT, backend_env)
    assert_silent_numpy(out, stdout, stderr)
    assert "ModuleNotFoundError" in out["reason"]


def test_auto_on_this_machine_without_cupy(tmp_path):
    "The real thing, no fake: where CuPy is not installed, importing stays silent and picks NumPy."
    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here; the fakes above cover the machine without it")
    assert_silent_numpy(*run_child(tmp_path))


@pytest.mark.parametrize("backend_env", [None, "auto"])
def test_auto_with_cupy_but_no_device_is_silent_numpy(tmp_path, backend_env):
    out, stdout, stderr = run_child(tmp_path, NO_DEVICE, backend_env)
    assert_silent_numpy(out, stdout, stderr)
    assert "cudaErrorNoDevice" in out["reason"], out
    assert out["cupy_imported"]  # it was tried, and failed only at the GPU operation


def test_no_device_fake_really_warns(tmp_path):
    "Control for the test above: imported directly, the fake does print its warning under -W default."
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(NO_DEVICE)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    p = subprocess.run([sys.executable, "-W", "default", "-c", "import cupy"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "CUDA path could not be detected" in p.stderr, p.stderr


def test_auto_with_wrong_gpu_result_is_numpy(tmp_path):
    out, stdout, stderr = run_child(tmp_path, WRONG_RESULT)
    assert_silent_numpy(out, stdout, stderr)
    assert "wrong result" in out["reason"], out


# ---------------------------------------------------------------------------- auto: a working GPU

@pytest.mark.parametrize("backend_env", [None, "auto", "cupy"])
def test_working_cupy_is_chosen(tmp_path, backend_env):
    out, stdout, stderr = run_child(tmp_path, WORKING, backend_env)
    assert (stdout, stderr) == ("", "")
    assert "error" not in out, out
    assert (out["xp"], out["has_gpu"]) == ("cupy", True), out
    assert out["reason"].startswith("CuPy"), out
    # the helpers take their GPU branches: device arrays belong to cupy, to_numpy copies back with .get()
    assert out["device_type"] == "cupy.ndarray"
    assert out["module_of_device_array"] == "cupy"
    assert out["host_type"] == "numpy.ndarray"
    assert out["host_value"] == [[7.0, 10.0], [15.0, 22.0]]


# ---------------------------------------------------------------------------- cupy: fail loudly

@pytest.mark.parametrize("fake, reason", [(ABSENT, "ModuleNotFoundError: No module named 'cupy'"),
                                          (NO_DEVICE, "cudaErrorNoDevice"),
                                          (WRONG_RESULT, "wrong result")])
@pytest.mark.parametrize("backend_env", ["cupy", "CuPy"])
def test_cupy_requested_but_unusable_raises(tmp_path, fake, reason, backend_env):
    out, _, _ = run_child(tmp_path, fake, backend_env)
    assert out.get("error") == "RuntimeError", out
    assert "DLNOTES_BACKEND=cupy" in out["message"], out
    assert reason in out["message"], out


# ---------------------------------------------------------------------------- numpy: never touch CuPy

@pytest.mark.parametrize("exc", ["ImportError", "SystemExit"])
@pytest.mark.parametrize("backend_env", ["numpy", "NumPy", " numpy "])
def test_numpy_never_imports_cupy(tmp_path, backend_env, exc):
    marker = tmp_path / "cupy-was-imported"
    out, stdout, stderr = run_child(tmp_path, marker_fake(marker, exc), backend_env)
    assert not marker.exists()
    assert_silent_numpy(out, stdout, stderr)
    assert out["reason"] == "NumPy, as requested"
    assert not out["cupy_imported"]


def test_marker_fake_is_reachable(tmp_path):
    "Control for the test above: under auto the same fake is imported and leaves its marker."
    marker = tmp_path / "cupy-was-imported"
    out, stdout, stderr = run_child(tmp_path, marker_fake(marker), "auto")
    assert marker.exists()
    assert_silent_numpy(out, stdout, stderr)


# ---------------------------------------------------------------------------- unknown names

@pytest.mark.parametrize("backend_env", ["bogus", "jax", "gpu"])
def test_unknown_backend_raises(tmp_path, backend_env):
    out, _, _ = run_child(tmp_path, ABSENT, backend_env)
    assert out.get("error") == "ValueError", out
    assert "must be one of" in out["message"] and repr(backend_env) in out["message"], out


# ---------------------------------------------------------------------------- in-process: resolve_backend

def _never(): raise AssertionError("CuPy must not be imported")

def test_resolve_backend_reads_environment(monkeypatch):
    monkeypatch.setenv("DLNOTES_BACKEND", "numpy")
    assert resolve_backend(import_cupy=_never) == (np, False, "NumPy, as requested")
    monkeypatch.setenv("DLNOTES_BACKEND", "bogus")
    with pytest.raises(ValueError, match="must be one of"): resolve_backend(import_cupy=_never)
    monkeypatch.delenv("DLNOTES_BACKEND")
    assert resolve_backend(import_cupy=lambda: np)[:2] == (np, True)  # unset means auto


def test_resolve_backend_does_not_swallow_interrupts():
    "`auto` hides CuPy's errors, not a Ctrl-C during the import."
    def interrupted(): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): resolve_backend("auto", import_cupy=interrupted)


# ---------------------------------------------------------------------------- in-process: helpers

def test_module_state_is_consistent():
    assert HAS_GPU == (xp is not np)
    assert backend.BACKEND_REASON.startswith("CuPy" if HAS_GPU else "NumPy")


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from([np.float32, np.float64, np.int64, np.bool_]),
                  shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5)))
def test_to_device_to_numpy_round_trip(a):
    d = to_device(a)
    assert get_array_module(d) is xp
    h = to_numpy(d)
    assert type(h) is np.ndarray and get_array_module(h) is np
    assert h.dtype == a.dtype and h.shape == a.shape
    np.testing.assert_array_equal(h, a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float32", "float64"])
def test_to_device_casts(dtype):
    d = to_device([[1, 2], [3, 4]], dtype=dtype)
    assert to_numpy(d).dtype == np.dtype(dtype)
    np.testing.assert_array_equal(to_numpy(d), [[1, 2], [3, 4]])


def test_to_numpy_accepts_host_values():
    for v, expected in [(3.5, np.array(3.5)), ([1, 2], np.array([1, 2])), (np.arange(3), np.arange(3))]:
        h = to_numpy(v)
        assert type(h) is np.ndarray
        np.testing.assert_array_equal(h, expected)
    assert get_array_module(1.0, [2.0]) is np


@pytest.fixture
def keep_rng(monkeypatch):
    "Restore the library's generator after the test, so other tests see the state they expect."
    monkeypatch.setattr(backend, "_rng", backend.get_rng())


def test_seed_reproduces_every_draw(keep_rng):
    def draws():
        return (to_numpy(randn(3, 4)), to_numpy(rand((2, 5))), to_numpy(uniform(-1, 2, (6,))), permutation(7))
    seed(123); first = draws()
    seed(123); again = draws()
    seed(124); other = draws()
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_draws_come_from_numpy_pcg64_on_the_host(keep_rng):
    "The documented promise: the same seed gives the same numbers on any device."
    seed(7)
    got = to_numpy(randn(4, 3, dtype=np.float64))
    np.testing.assert_array_equal(got, np.random.default_rng(7).standard_normal((4, 3)))
    seed(7)
    assert get_rng().random() == np.random.default_rng(7).random()


def test_draw_shapes_dtypes_and_ranges(keep_rng):
    seed(0)
    assert randn(2, 3).shape == randn((2, 3)).shape == (2, 3)
    assert rand(4).dtype == get_default_dtype() == np.float32
    assert randn(2, dtype=np.float64).dtype == np.float64
    u = to_numpy(uniform(-2, 3, (10_000,)))
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.1
    r = to_numpy(rand(10_000))
    assert r.min() >= 0 and r.max() < 1
    assert sorted(permutation(9)) == list(range(9))
    assert type(permutation(4)) is np.ndarray  # indices stay on the host


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None, True, np.float64(2.0)])
def test_seed_rejects_bad_values(bad, keep_rng):
    with pytest.raises(ValueError, match="seed must be a non-negative int"): seed(bad)


def test_seed_accepts_numpy_integers(keep_rng):
    seed(np.int64(5)); a = to_numpy(randn(3))
    seed(5); b = to_numpy(randn(3))
    np.testing.assert_array_equal(a, b)


@pytest.fixture
def keep_dtype(monkeypatch):
    monkeypatch.setattr(backend, "_default_dtype", backend.get_default_dtype())


@pytest.mark.parametrize("dtype", ["float64", np.float64, np.dtype("float64")])
def test_set_default_dtype(dtype, keep_dtype, keep_rng):
    old = set_default_dtype(dtype)
    assert old == np.float32
    assert get_default_dtype() == np.float64
    assert randn(2).dtype == rand(2).dtype == uniform(0, 1, 2).dtype == np.float64
    assert set_default_dtype(old) == np.float64
    assert get_default_dtype() == np.float32


@pytest.mark.parametrize("bad", [np.int32, np.float16, "float16", "int64", "double precision", complex])
def test_set_default_dtype_rejects(bad, keep_dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"): set_default_dtype(bad)
    assert get_default_dtype() == np.float32  # a rejected call changes nothing


# ---------------------------------------------------------------------------- BLAS threads

THREADS_CHILD = textwrap.dedent("""
    import json, sys
    out = {}
    try:
        import dlnotes.backend as b
        from threadpoolctl import threadpool_info
        out.update(threads=b.get_num_threads(),
                   pools=[i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"])
    except Exception as e:
        out.update(error=type(e).__name__, message=str(e))
    with open(sys.argv[1], "w") as f: json.dump(out, f)
""")

def run_threads_child(tmp_path, value):
    "Import the backend in a fresh interpreter with DLNOTES_NUM_THREADS=value (None: unset)."
    env = {k: v for k, v in os.environ.items() if k not in ("DLNOTES_NUM_THREADS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(ROOT), DLNOTES_BACKEND="numpy")
    if value is not None: env["DLNOTES_NUM_THREADS"] = value
    result = tmp_path / "threads.json"
    p = subprocess.run([sys.executable, "-c", THREADS_CHILD, str(result)], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(result.read_text())


def test_num_threads_from_environment(tmp_path):
    out = run_threads_child(tmp_path, "1")
    assert out.get("threads") == 1 and out["pools"] and set(out["pools"]) == {1}, out
    default = run_threads_child(tmp_path, None)  # unset: BLAS's own default, untouched
    assert default.get("threads", 0) >= 1 and "error" not in default, default


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_num_threads_environment_rejects(tmp_path, value):
    out = run_threads_child(tmp_path, value)
    assert out.get("error") == "ValueError", out
    assert "DLNOTES_NUM_THREADS must be a positive int" in out["message"] and repr(value) in out["message"], out


def test_set_num_threads_in_process():
    before = backend.get_num_threads()
    try:
        assert backend.set_num_threads(1) == 1 == backend.get_num_threads()
    finally:
        backend.set_num_threads(before)
    assert backend.get_num_threads() == before
    for bad in (0, -1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="must be a positive int"): backend.set_num_threads(bad)
