"""dlnotes.vision.convolution: convolution and pooling, loops and vectorised.

Every backward pass is checked against float64 central differences (dlnotes.gradcheck) over
strides 1-3, paddings 0-2, odd 5x7 inputs and 1-3 channels; the loop and the fast versions must
agree; the output-size formula is checked against real output shapes with hypothesis; max-pool ties
route each window's gradient to exactly one cell; the caches are named tuples that either backward pass
takes (a plain tuple too); every kind of bad input raises a ValueError that names the argument.
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.signal import correlate2d

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.gradcheck import grad_check
from dlnotes.vision.convolution import (POOL_MODES, ConvCache, PoolCache, conv_output_size, zero_pad, conv_single_step,
                                        conv_forward_loops, conv_backward_loops, conv_forward, conv_backward,
                                        pool_forward_loops, pool_backward_loops, pool_forward, pool_backward)

CONV_SETTINGS = [  # (stride, pad, n_C_prev, n_C)
    (1, 0, 1, 1), (1, 1, 2, 3), (1, 2, 3, 2), (2, 0, 3, 2), (2, 1, 1, 2), (2, 2, 2, 1), (3, 0, 2, 2), (3, 1, 3, 1), (3, 2, 1, 3)]
POOL_SETTINGS = [(2, 2), (3, 1), (2, 3), (3, 2), (2, 1), (3, 3)]  # (f, stride)


def fails(fn, contains, exc=ValueError):
    "Assert that fn() raises `exc` with `contains` in its message."
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


def _f64(*shape): return randn(*shape, dtype=np.float64)


def _conv_case(s, p, n_C_prev, n_C, f=3, m=2, n_H=5, n_W=7):
    return _f64(m, n_H, n_W, n_C_prev), _f64(f, f, n_C_prev, n_C), _f64(1, 1, 1, n_C), {"stride": s, "pad": p}


# ---------------------------------------------------------------- the notes' examples, independently
def test_notes_edge_examples_match_scipy():
    a_vert = np.array([[10, 10, 10, 0, 0, 0]] * 6, dtype=float)
    W_vert = np.array([[1, 0, -1]] * 3, dtype=float)
    Z, _ = conv_forward(a_vert[None, :, :, None], W_vert[:, :, None, None], np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(to_numpy(Z)[0, :, :, 0], [[0, 30, 30, 0]] * 4)
    Zn, _ = conv_forward((10 - a_vert)[None, :, :, None], W_vert[:, :, None, None], np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(to_numpy(Zn)[0, :, :, 0], [[0, -30, -30, 0]] * 4)
    a_h = np.zeros((6, 6)); a_h[:3, :3] = 10; a_h[3:, 3:] = 10
    Zh, _ = conv_forward(a_h[None, :, :, None], W_vert.T[:, :, None, None], np.zeros((1, 1, 1, 1)), {"stride": 1, "pad": 0})
    np.testing.assert_array_equal(to_numpy(Zh)[0, :, :, 0], correlate2d(a_h, W_vert.T, mode="valid"))
    np.testing.assert_array_equal(to_numpy(Zh)[0, 1, :, 0], [30, 10, -10, -30])  # the notes print +30 in the last column


def test_volume_conv_is_sum_of_channel_correlations():
    seed(0)
    for s, p, n_C_prev, n_C in CONV_SETTINGS:
        A_prev, W, b, hp = _conv_case(s, p, n_C_prev, n_C)
        Z = to_numpy(conv_forward(A_prev, W, b, hp)[0])
        A_pad = to_numpy(zero_pad(A_prev, p))
        for i, c in itertools.product(range(A_prev.shape[0]), range(n_C)):
            ref = sum(correlate2d(A_pad[i, :, :, k], to_numpy(W[:, :, k, c]), mode="valid") for k in range(n_C_prev))
            np.testing.assert_allclose(Z[i, :, :, c], ref[::s, ::s] + float(b[0, 0, 0, c]), atol=1e-10)


# ---------------------------------------------------------------- gradient checks in float64
@pytest.mark.parametrize("s,p,n_C_prev,n_C", CONV_SETTINGS)
def test_conv_backward_gradcheck(s, p, n_C_prev, n_C):
    seed(1)
    A_prev, W, b, hp = _conv_case(s, p, n_C_prev, n_C)
    Z, cache = conv_forward(A_prev, W, b, hp)
    R = _f64(*Z.shape)
    dA_prev, dW, db = conv_backward(R, cache)
    assert dA_prev.shape == A_prev.shape and dW.shape == W.shape and db.shape == b.shape
    grad_check(lambda: (conv_forward(A_prev, W, b, hp)[0] * R).sum(), {"A_prev": A_prev, "W": W, "b": b},
               {"A_prev": dA_prev, "W": dW, "b": db}, tol=1e-7)


@pytest.mark.parametrize("s,p,n_C_prev,n_C", [(1, 0, 1, 2), (2, 1, 2, 1), (3, 2, 3, 2), (2, 2, 1, 1)])
def test_conv_backward_loops_gradcheck(s, p, n_C_prev, n_C):
    seed(2)
    A_prev, W, b, hp = _conv_case(s, p, n_C_prev, n_C, m=1)
    Z, cache = conv_forward_loops(A_prev, W, b, hp)
    R = _f64(*Z.shape)
    grads = dict(zip(("A_prev", "W", "b"), conv_backward_loops(R, cache)))
    grad_check(lambda: (conv_forward_loops(A_prev, W, b, hp)[0] * R).sum(), {"A_prev": A_prev, "W": W, "b": b}, grads, tol=1e-7)


def test_conv_backward_nonsquare_filter_gradcheck():
    seed(3)
    A_prev, W, b, hp = _f64(2, 5, 7, 2), _f64(2, 3, 2, 3), _f64(1, 1, 1, 3), {"stride": 2, "pad": 1}
    Z, cache = conv_forward(A_prev, W, b, hp)
    R = _f64(*Z.shape)
    grads = dict(zip(("A_prev", "W", "b"), conv_backward(R, cache)))
    grad_check(lambda: (conv_forward(A_prev, W, b, hp)[0] * R).sum(), {"A_prev": A_prev, "W": W, "b": b}, grads, tol=1e-7)


@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("f,s", POOL_SETTINGS)
@pytest.mark.parametrize("n_C", [1, 3])
def test_pool_backward_gradcheck(mode, f, s, n_C):
    seed(4)
    A_prev = _f64(2, 5, 7, n_C)
    hp = {"f": f, "stride": s}
    A, cache = pool_forward(A_prev, hp, mode)
    R = _f64(*A.shape)
    grad_check(lambda: (pool_forward(A_prev, hp, mode)[0] * R).sum(), A_prev, pool_backward(R, cache, mode), tol=1e-7)


@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("f,s", [(2, 2), (3, 1), (2, 3)])
def test_pool_backward_loops_gradcheck(mode, f, s):
    seed(5)
    A_prev = _f64(1, 5, 7, 2)
    hp = {"f": f, "stride": s}
    A, cache = pool_forward_loops(A_prev, hp, mode)
    R = _f64(*A.shape)
    grad_check(lambda: (pool_forward_loops(A_prev, hp, mode)[0] * R).sum(), A_prev, pool_backward_loops(R, cache, mode), tol=1e-7)


# ---------------------------------------------------------------- loops == fast
@pytest.mark.parametrize("s,p,n_C_prev,n_C", CONV_SETTINGS)
def test_conv_loops_equal_fast(s, p, n_C_prev, n_C):
    seed(6)
    A_prev, W, b, hp = _conv_case(s, p, n_C_prev, n_C, m=3, n_H=6, n_W=5)
    Z, cache = conv_forward(A_prev, W, b, hp)
    Z_l, cache_l = conv_forward_loops(A_prev, W, b, hp)
    np.testing.assert_allclose(to_numpy(Z), to_numpy(Z_l), atol=1e-12)
    dZ = _f64(*Z.shape)
    for g, g_l, g_x in zip(conv_backward(dZ, cache), conv_backward_loops(dZ, cache_l), conv_backward(dZ, cache_l)):
        np.testing.assert_allclose(to_numpy(g), to_numpy(g_l), atol=1e-12)
        np.testing.assert_allclose(to_numpy(g_x), to_numpy(g_l), atol=1e-12)


@pytest.mark.parametrize("mode", POOL_MODES)
@pytest.mark.parametrize("f,s", POOL_SETTINGS + [(1, 1), (4, 4), (5, 2)])
def test_pool_loops_equal_fast(mode, f, s):
    seed(7)
    A_prev = _f64(3, 8, 9, 2)
    hp = {"f": f, "stride": s}
    A, cache = pool_forward(A_prev, hp, mode)
    A_l, cache_l = pool_forward_loops(A_prev, hp, mode)
    np.testing.assert_allclose(to_numpy(A), to_numpy(A_l), atol=1e-12)
    dA = _f64(*A.shape)
    np.testing.assert_allclose(to_numpy(pool_backward(dA, cache, mode)), to_numpy(pool_backward_loops(dA, cache_l, mode)), atol=1e-12)
    np.testing.assert_allclose(to_numpy(pool_backward(dA, cache_l, mode)), to_numpy(pool_backward_loops(dA, cache, mode)), atol=1e-12)


def test_float32_stays_float32():
    seed(8)
    A_prev, W, b = randn(2, 6, 6, 3), randn(3, 3, 3, 4), randn(1, 1, 1, 4)
    Z, cache = conv_forward(A_prev, W, b, {"stride": 1, "pad": 1})
    assert Z.dtype == np.float32
    assert [g.dtype for g in conv_backward(randn(*Z.shape), cache)] == [np.float32] * 3
    for mode in POOL_MODES:
        for hp in ({"f": 2, "stride": 2}, {"f": 3, "stride": 1}):
            A, c = pool_forward(Z, hp, mode)
            assert A.dtype == np.float32 and pool_backward(randn(*A.shape), c, mode).dtype == np.float32


# ---------------------------------------------------------------- named caches
def test_conv_cache_is_named_and_any_cache_works():
    seed(11)
    A_prev, W, b, hp = _conv_case(2, 1, 2, 3)
    Z, cache = conv_forward(A_prev, W, b, hp)
    _, cache_l = conv_forward_loops(A_prev, W, b, hp)
    assert isinstance(cache, ConvCache) and isinstance(cache_l, ConvCache)
    assert cache.A_prev is A_prev and cache.W is W and cache.b is b and cache.hparameters == hp
    assert cache.X_col.shape == (3 * 3 * 2 + 1, Z.shape[0] * Z.shape[1] * Z.shape[2]) and cache_l.X_col is None
    dZ = _f64(*Z.shape)
    ref = conv_backward(dZ, cache)
    for backward in (conv_backward, conv_backward_loops):  # either cache, or a plain tuple, with either backward
        for c in (cache, cache_l, (A_prev, W, b, hp), tuple(cache)):
            for g, g_ref in zip(backward(dZ, c), ref):
                np.testing.assert_allclose(to_numpy(g), to_numpy(g_ref), atol=1e-12)


@pytest.mark.parametrize("mode", POOL_MODES)
def test_pool_cache_is_named_and_any_cache_works(mode):
    seed(12)
    A_prev, hp = _f64(2, 6, 5, 3), {"f": 2, "stride": 2}
    A, cache = pool_forward(A_prev, hp, mode)
    _, cache_l = pool_forward_loops(A_prev, hp, mode)
    assert isinstance(cache, PoolCache) and cache.A_prev is A_prev and cache.hparameters == hp
    assert cache.A is A and cache.mode == mode and cache_l.A is None and cache_l.mode is None
    dA = _f64(*A.shape)
    ref = to_numpy(pool_backward(dA, cache, mode))
    for backward in (pool_backward, pool_backward_loops):
        for c in (cache, cache_l, (A_prev, hp), tuple(cache)):
            np.testing.assert_allclose(to_numpy(backward(dA, c, mode)), ref, atol=1e-12)


# ---------------------------------------------------------------- max-pool ties
@pytest.mark.parametrize("f,s", [(2, 2), (3, 1), (2, 1), (3, 2), (2, 3)])
def test_max_pool_ties_route_to_exactly_one_cell(f, s):
    A_prev = np.full((2, 7, 6, 3), 0.5)
    A, cache = pool_forward(A_prev, {"f": f, "stride": s}, "max")
    seed(9)
    dA = to_numpy(randn(*A.shape, dtype=np.float64))
    dA_prev = to_numpy(pool_backward(dA, cache, "max"))
    np.testing.assert_allclose(dA_prev.sum(), dA.sum(), rtol=1e-12)  # nothing lost, nothing counted twice
    expected = np.zeros_like(A_prev)  # each window's gradient lands on its first (top-left) cell
    for h, w in itertools.product(range(A.shape[1]), range(A.shape[2])):
        expected[:, s * h, s * w, :] += dA[:, h, w, :]
    np.testing.assert_allclose(dA_prev, expected, atol=1e-12)
    np.testing.assert_allclose(dA_prev, to_numpy(pool_backward_loops(dA, cache, "max")), atol=1e-12)


def test_max_pool_partial_ties_pick_first_maximum():
    a = np.array([[1., 5.], [5., 5.]])[None, :, :, None]
    A, cache = pool_forward(a, {"f": 2, "stride": 2})
    np.testing.assert_array_equal(pool_backward(np.ones((1, 1, 1, 1)), cache)[0, :, :, 0], [[0, 1], [0, 0]])


def test_average_pool_spreads_evenly():
    A_prev = np.zeros((1, 4, 4, 1))
    A, cache = pool_forward(A_prev, {"f": 2, "stride": 2}, "average")
    dA_prev = pool_backward(np.arange(1., 5.).reshape(1, 2, 2, 1), cache, "average")
    np.testing.assert_array_equal(dA_prev[0, :, :, 0], np.kron([[1, 2], [3, 4]], np.ones((2, 2))) / 4)


# ---------------------------------------------------------------- output sizes (property-based)
@settings(max_examples=60, deadline=None)
@given(n_H=st.integers(1, 12), n_W=st.integers(1, 12), f=st.integers(1, 6), p=st.integers(0, 3), s=st.integers(1, 4),
       n_C_prev=st.integers(1, 3))
def test_conv_output_size_matches_conv_forward(n_H, n_W, f, p, s, n_C_prev):
    A_prev, W, b = np.ones((1, n_H, n_W, n_C_prev)), np.ones((f, f, n_C_prev, 2)), np.zeros((1, 1, 1, 2))
    hp = {"stride": s, "pad": p}
    if f > min(n_H, n_W) + 2 * p:
        with pytest.raises(ValueError, match="larger than the padded input"):
            conv_forward(A_prev, W, b, hp)
        return
    assert conv_output_size(n_H, f, p, s) == (n_H + 2 * p - f) // s + 1
    Z, cache = conv_forward(A_prev, W, b, hp)
    assert Z.shape == (1, conv_output_size(n_H, f, p, s), conv_output_size(n_W, f, p, s), 2)
    # the last window ends inside the padded input, and one more stride would not fit
    for n, n_out in ((n_H, Z.shape[1]), (n_W, Z.shape[2])):
        assert s * (n_out - 1) + f <= n + 2 * p < s * n_out + f
    assert conv_backward(np.ones(Z.shape), cache)[0].shape == A_prev.shape


@settings(max_examples=60, deadline=None)
@given(n_H=st.integers(1, 12), n_W=st.integers(1, 12), f=st.integers(1, 5), s=st.integers(1, 4),
       mode=st.sampled_from(POOL_MODES))
def test_conv_output_size_matches_pool_forward(n_H, n_W, f, s, mode):
    A_prev = np.arange(n_H * n_W * 2, dtype=float).reshape(1, n_H, n_W, 2)
    hp = {"f": f, "stride": s}
    if f > min(n_H, n_W):
        with pytest.raises(ValueError, match="larger than the padded input"):
            pool_forward(A_prev, hp, mode)
        return
    A, cache = pool_forward(A_prev, hp, mode)
    assert A.shape == (1, conv_output_size(n_H, f, 0, s), conv_output_size(n_W, f, 0, s), 2)
    assert pool_backward(np.ones(A.shape), cache, mode).shape == A_prev.shape


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 7), f=st.integers(1, 3), p=st.integers(0, 2), s=st.integers(1, 3), seed_=st.integers(0, 1000))
def test_conv_loops_equal_fast_random(n, f, p, s, seed_):
    seed(seed_)
    A_prev, W, b = _f64(2, n, n + 1, 2), _f64(f, f, 2, 3), _f64(1, 1, 1, 3)
    hp = {"stride": s, "pad": p}
    Z, cache = conv_forward(A_prev, W, b, hp)
    Z_l, cache_l = conv_forward_loops(A_prev, W, b, hp)
    np.testing.assert_allclose(to_numpy(Z), to_numpy(Z_l), atol=1e-12)
    dZ = _f64(*Z.shape)
    for g, g_l in zip(conv_backward(dZ, cache), conv_backward_loops(dZ, cache_l)):
        np.testing.assert_allclose(to_numpy(g), to_numpy(g_l), atol=1e-12)


def test_conv_output_size_values():
    assert conv_output_size(39, 3, 0, 1) == 37 and conv_output_size(37, 5, 0, 2) == 17 and conv_output_size(17, 5, 0, 2) == 7
    assert conv_output_size(6, 3, 1, 1) == 6 and conv_output_size(8, 3, 0, 2) == 3


# ---------------------------------------------------------------- bad input
@pytest.fixture
def conv_args():
    seed(10)
    return randn(2, 5, 5, 3), randn(3, 3, 3, 4), randn(1, 1, 1, 4)


@pytest.mark.parametrize("forward", [conv_forward, conv_forward_loops])
def test_conv_bad_input(forward, conv_args):
    A_prev, W, b = conv_args
    hp = {"stride": 1, "pad": 0}
    fails(lambda: forward(A_prev, randn(6, 6, 3, 4), b, hp), contains="W.shape[0]=6 is larger than the padded input n_H_prev + 2*pad = 5 + 2*0 = 5")
    fails(lambda: forward(A_prev, randn(3, 8, 3, 4), b, {"stride": 1, "pad": 1}), contains="W.shape[1]=8 is larger than the padded input n_W_prev + 2*pad = 5 + 2*1 = 7")
    for bad in (0, -1, 1.5, 2.0, "2", True, None):
        fails(lambda: forward(A_prev, W, b, {"stride": bad, "pad": 0}), contains=f"hparameters['stride'] must be a positive int, got {bad!r}")
    for bad in (-1, 0.5):
        fails(lambda: forward(A_prev, W, b, {"stride": 1, "pad": bad}), contains=f"hparameters['pad'] must be a non-negative int, got {bad!r}")
    fails(lambda: forward(A_prev, W, b, {"pad": 0}), contains="hparameters must be a dict with keys 'stride' and 'pad'")
    fails(lambda: forward(A_prev, W, b, [1, 0]), contains="hparameters must be a dict")
    fails(lambda: forward(A_prev[0], W, b, hp), contains="A_prev must be a 4-D array (m, n_H_prev, n_W_prev, n_C_prev), got shape (5, 5, 3)")
    fails(lambda: forward(A_prev.tolist(), W, b, hp), contains="A_prev must be a 4-D array (m, n_H_prev, n_W_prev, n_C_prev), got a list")
    fails(lambda: forward(A_prev, W[0], b, hp), contains="W must be a 4-D array (f, f, n_C_prev, n_C), got shape (3, 3, 4)")
    fails(lambda: forward(A_prev, W[:, :, :2], b, hp),
              contains="A_prev has n_C_prev=3 channels but W expects 2 (A_prev.shape=(2, 5, 5, 3), W.shape=(3, 3, 2, 4))")
    fails(lambda: forward(A_prev, W, b[..., :3], hp), contains="b must be one bias per filter, 4 numbers of shape (1, 1, 1, 4), got (1, 1, 1, 3)")


@pytest.mark.parametrize("backward", [conv_backward, conv_backward_loops])
def test_conv_backward_bad_dZ(backward, conv_args):
    A_prev, W, b = conv_args
    Z, cache = conv_forward(A_prev, W, b, {"stride": 1, "pad": 0})
    fails(lambda: backward(Z[..., :3], cache), contains="dZ must be an array of the forward output's shape (2, 3, 3, 4), got shape (2, 3, 3, 3)")
    fails(lambda: backward(to_numpy(Z).tolist(), cache), contains="dZ must be an array of the forward output's shape (2, 3, 3, 4), got a list")


@pytest.mark.parametrize("forward", [pool_forward, pool_forward_loops])
def test_pool_bad_input(forward, conv_args):
    A_prev = conv_args[0]
    fails(lambda: forward(A_prev, {"f": 6, "stride": 1}), contains="hparameters['f']=6 is larger than the padded input n_H_prev + 2*pad = 5 + 2*0 = 5")
    fails(lambda: forward(A_prev[:, :, :2], {"f": 3, "stride": 1}), contains="hparameters['f']=3 is larger than the padded input n_W_prev + 2*pad = 2 + 2*0 = 2")
    for mode in ("min", "avg", None, "MAX"):
        fails(lambda: forward(A_prev, {"f": 2, "stride": 2}, mode), contains=f"mode must be one of 'max', 'average', got {mode!r}")
    for bad in (0, -2, 1.5):
        fails(lambda: forward(A_prev, {"f": 2, "stride": bad}), contains=f"hparameters['stride'] must be a positive int, got {bad!r}")
    fails(lambda: forward(A_prev, {"f": 0, "stride": 1}), contains="hparameters['f'] must be a positive int, got 0")
    fails(lambda: forward(A_prev, {"stride": 1}), contains="hparameters must be a dict with keys 'f' and 'stride'")
    fails(lambda: forward(A_prev[0], {"f": 2, "stride": 2}), contains="A_prev must be a 4-D array")


@pytest.mark.parametrize("backward", [pool_backward, pool_backward_loops])
def test_pool_backward_bad_input(backward, conv_args):
    A_prev = conv_args[0]
    A, cache = pool_forward(A_prev, {"f": 2, "stride": 2})
    fails(lambda: backward(A[:, :1], cache), contains="dA must be an array of the forward output's shape (2, 2, 2, 3), got shape (2, 1, 2, 3)")
    fails(lambda: backward(A, cache, "median"), contains="mode must be one of")


def test_pool_backward_mode_must_match_cache(conv_args):
    A, cache = pool_forward(conv_args[0], {"f": 2, "stride": 2}, "average")
    fails(lambda: pool_backward(A, cache, "max"), contains="mode='max', but the cache comes from pool_forward(..., mode='average')")


def test_small_helpers_bad_input(conv_args):
    A_prev, W, _ = conv_args
    fails(lambda: zero_pad(A_prev, -1), contains="pad must be a non-negative int, got -1")
    fails(lambda: zero_pad(A_prev[0], 1), contains="X must be a 4-D array (m, n_H, n_W, n_C), got shape (5, 5, 3)")
    fails(lambda: conv_single_step(A_prev[0, :3, :3], W[..., 0][:2], 0.0), contains="a_slice_prev (3, 3, 3) and W (2, 3, 3)")
    fails(lambda: conv_single_step(A_prev[0, :3, :3], W[..., 0], np.zeros(2)), contains="b must be one number (shape () or (1, 1, 1)), got shape (2,)")
    fails(lambda: conv_output_size(6, 3, 0, 0), contains="stride must be a positive int, got 0")
    fails(lambda: conv_output_size(6, 3, -1, 1), contains="pad must be a non-negative int, got -1")
    fails(lambda: conv_output_size(4, 7, 1, 1), contains="f=7 is larger than the padded input n + 2*pad = 4 + 2*1 = 6")
    fails(lambda: conv_output_size(0, 1), contains="n must be a positive int, got 0")
