"Tests of dlnotes.nn.optimization: mini-batches, the dictionary update rules, Adam's in-place step, schedules, the model, bad input."
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dlnotes.nn.optimization import (
    random_mini_batches, update_parameters_with_gd, initialize_velocity, update_parameters_with_momentum,
    initialize_rmsprop, update_parameters_with_rmsprop, initialize_adam, update_parameters_with_adam,
    exponentially_weighted_average, inverse_time_decay, exponential_decay, step_decay, schedule_lr_decay,
    InverseTimeDecay, ExponentialDecay, StepDecay, model, _adam_step, _blocks, _BLOCK)


def _params(dims=(4, 3, 2), s=0):
    rng = np.random.default_rng(s)
    P = {}
    for l in range(1, len(dims)):
        P[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1]))
        P[f"b{l}"] = rng.standard_normal((dims[l], 1))
    return P


def _grads(P, s):
    rng = np.random.default_rng(s)
    return {"d" + k: rng.standard_normal(p.shape) for k, p in P.items()}


# ---- bad input ----------------------------------------------------------------------------------------------

def test_model_refuses_unknown_rules():
    X, Y = np.zeros((2, 8)), np.zeros((1, 8))
    with pytest.raises(ValueError, match="optimizer must be one of 'gd', 'momentum', 'rmsprop', 'adam', got 'sgd_nesterov'"):
        model(X, Y, [2, 3, 1], optimizer="sgd_nesterov", num_epochs=1)


@pytest.mark.parametrize("B", [0, -3, 2.5, True, "64"])
def test_bad_mini_batch_size(B):
    with pytest.raises(ValueError, match="mini_batch_size must be a positive int"):
        random_mini_batches(np.zeros((2, 10)), np.zeros((1, 10)), B)


def test_mismatched_m():
    with pytest.raises(ValueError, match=r"X \(2, 10\) \(m=10\) and Y \(1, 9\) \(m=9\)"):
        random_mini_batches(np.zeros((2, 10)), np.zeros((1, 9)), 4)
    with pytest.raises(ValueError, match="X must be 2-D"):
        random_mini_batches(np.zeros(10), np.zeros((1, 10)), 4)


def test_bad_hyperparameters():
    P = _params(); g = _grads(P, 1)
    with pytest.raises(ValueError, match="learning_rate must be a positive number"):
        update_parameters_with_gd(P, g, 0)
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\)"):
        update_parameters_with_momentum(P, g, initialize_velocity(P), 1.0, 0.1)
    with pytest.raises(ValueError, match=r"t must be a positive int \(Adam's step counter, starting at 1\), got 0"):
        update_parameters_with_adam(P, g, *initialize_adam(P), t=0)
    with pytest.raises(ValueError, match=r"grads\['dW1'\] must have the shape"):
        update_parameters_with_gd(P, {**g, "dW1": g["dW1"].T}, 0.1)


# ---- mini-batches ---------------------------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(m=st.integers(1, 50), B=st.integers(1, 60), s=st.integers(0, 1000))
def test_mini_batches_partition(m, B, s):
    X = np.arange(3 * m, dtype=float).reshape(3, m)
    Y = np.arange(m, dtype=float).reshape(1, m) * 10
    batches = random_mini_batches(X, Y, B, seed=s)
    sizes = [Xb.shape[1] for Xb, _ in batches]
    assert len(batches) == math.ceil(m / B)
    assert all(n == B for n in sizes[:-1]) and 1 <= sizes[-1] <= B and sum(sizes) == m
    cols = np.concatenate([Yb for _, Yb in batches], axis=1).ravel() / 10
    assert sorted(cols.astype(int)) == list(range(m))  # every example exactly once
    X_all = np.concatenate([Xb for Xb, _ in batches], axis=1)
    np.testing.assert_array_equal(X_all, X[:, cols.astype(int)])  # labels stayed with their examples


def test_mini_batches_seeded():
    X, Y = np.arange(40.0).reshape(2, 20), np.arange(20.0).reshape(1, 20)
    a, b, c = (random_mini_batches(X, Y, 7, seed=s) for s in (5, 5, 6))
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert not np.array_equal(np.concatenate([x for x, _ in a], 1), np.concatenate([x for x, _ in c], 1))


# ---- update rules ---------------------------------------------------------------------------------------------

def test_adam_first_step_is_lr_times_sign():
    P = _params(); P0 = {k: p.copy() for k, p in P.items()}; g = _grads(P, 3)
    v, s = initialize_adam(P)
    _, _, _, v_c, s_c = update_parameters_with_adam(P, g, v, s, 1, learning_rate=0.01)
    for k in P:
        np.testing.assert_allclose(v_c["d" + k], g["d" + k], rtol=1e-12)
        np.testing.assert_allclose(s_c["d" + k], g["d" + k] ** 2, rtol=1e-12)
        np.testing.assert_allclose(P[k], P0[k] - 0.01 * np.sign(g["d" + k]), atol=1e-8)


def test_momentum_beta0_is_gd():
    P1, P2 = _params(), _params()
    v = initialize_velocity(P1)
    for s in range(4):
        g = _grads(P1, s)
        update_parameters_with_momentum(P1, g, v, 0.0, 0.1)
        update_parameters_with_gd(P2, g, 0.1)
    for k in P1: np.testing.assert_allclose(P1[k], P2[k], rtol=1e-13)


def test_ewa_constant_series():
    t = np.arange(1, 21)
    np.testing.assert_allclose(exponentially_weighted_average(np.full(20, 3.0), 0.8, bias_correction=False), 3 * (1 - 0.8**t))
    np.testing.assert_allclose(exponentially_weighted_average(np.full(20, 3.0), 0.8), np.full(20, 3.0))


def test_functional_updates_in_place():
    P = _params(); ids = {k: id(p) for k, p in P.items()}; P0 = {k: p.copy() for k, p in P.items()}
    v, s = initialize_adam(P)
    out = update_parameters_with_adam(P, _grads(P, 1), v, s, 1)
    assert out[0] is P and {k: id(p) for k, p in P.items()} == ids
    assert all(not np.array_equal(P[k], P0[k]) for k in P)


# ---- schedules ------------------------------------------------------------------------------------------------

def test_schedule_values():
    assert inverse_time_decay(1.0, 3, 0.5) == pytest.approx(0.4)
    assert exponential_decay(2.0, 2, 0.5) == pytest.approx(0.5)
    assert [step_decay(1.0, e, 0.1, 5) for e in (0, 4, 5, 12)] == pytest.approx([1.0, 1.0, 0.1, 0.01])
    assert [schedule_lr_decay(0.3, e, 2.0, 100) for e in (0, 99, 100, 250)] == pytest.approx([0.3, 0.3, 0.1, 0.06])
    assert InverseTimeDecay(1.0, 0.5, decay_steps=2)(3) == pytest.approx(1 / 1.75)
    assert InverseTimeDecay(1.0, 0.5, decay_steps=2, staircase=True)(3) == pytest.approx(1 / 1.5)
    assert ExponentialDecay(1.0, 0.25, decay_steps=2)(1) == pytest.approx(0.5)
    assert StepDecay(1.0, drop=0.5, every=3)(7) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="epoch must be a non-negative number"):
        step_decay(1.0, -2)
    with pytest.raises(ValueError, match="decay_rate must be a non-negative number, got -0.1"):
        inverse_time_decay(1.0, 2, -0.1)


# ---- Adam in place ----------------------------------------------------------------------------------------------

def _adam_naive(p, g, v, s, t, lr, beta1, beta2, eps):
    "Adam's equations as they read, one temporary per operation: the reference for the in-place step."
    v *= beta1; v += (1 - beta1) * g
    s *= beta2; s += (1 - beta2) * (g * g)
    p -= lr * (v / (1 - beta1**t)) / (np.sqrt(s / (1 - beta2**t)) + eps)


@pytest.mark.parametrize("shape,dtype,transposed", [((300, 500), np.float32, False), ((300, 500), np.float64, False),
                                                    ((4, 3), np.float32, False), ((500, 300), np.float32, True),
                                                    ((_BLOCK + 7,), np.float32, False)])
def test_adam_step_is_the_formulas_bit_for_bit(shape, dtype, transposed):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(shape).astype(dtype)
    if transposed: p0 = p0.T  # not C-contiguous: the step works on the whole arrays
    p1, p2 = p0.copy(order="K"), p0.copy(order="K")
    v1, s1, v2, s2 = (np.zeros_like(p1) for _ in range(4))
    T1, T2 = np.empty_like(p2), np.empty_like(p2)
    for t in range(1, 8):
        g = (rng.standard_normal(p0.shape) * 10.0**(-t % 4)).astype(dtype)
        if transposed: g = np.asfortranarray(g)
        _adam_naive(p1, g, v1, s1, t, 0.003, 0.9, 0.999, 1e-7)
        _adam_step(p2, g, v2, s2, t, 0.003, 0.9, 0.999, 1e-7, T1, T2)
    for a, b in ((p1, p2), (v1, v2), (s1, s2)): np.testing.assert_array_equal(a, b)
    assert not np.array_equal(p2, p0) and p2.dtype == dtype


def test_blocks_are_views_covering_the_arrays():
    a, b = np.arange(3 * _BLOCK + 5, dtype=np.float32), np.zeros(3 * _BLOCK + 5, dtype=np.float32)
    blocks = _blocks(a, b)
    assert len(blocks) == 4 and sum(x.size for x, _ in blocks) == a.size
    for x, y in blocks: y += x  # writing into the blocks writes into b
    np.testing.assert_array_equal(a, b)
    assert len(_blocks(a[::2], b[::2])) == 1  # strided: whole arrays
    assert len(_blocks(a[:10], b[:10])) == 1  # small: whole arrays


# ---- the data checks (dlnotes.data.check_data, as in the layer API) -------------------------------------------

from dlnotes.backend import to_numpy


def _moons(m=40, s=0):
    rng = np.random.default_rng(s)
    X = rng.standard_normal((2, m))
    return X, (X[:1] * X[1:] > 0).astype(np.float64)


@pytest.mark.parametrize("bad, said", [(np.nan, "1 NaN and 0 infinite"), (-np.inf, "0 NaN and 1 infinite")])
def test_model_refuses_nan_in_X(bad, said):
    X, Y = _moons()
    X[0, 7] = bad
    for opt in ("gd", "adam"):
        with pytest.raises(ValueError, match=rf"X contains {said} values \(of 80\)"):
            model(X, Y, [2, 3, 1], optimizer=opt, num_epochs=3)


def test_model_refuses_empty_X_rows_and_no_epochs():
    X, Y = _moons()
    with pytest.raises(ValueError, match=r"X is empty: it holds no examples \(shape \(2, 0\)\)"):
        model(X[:, :0], Y[:, :0], [2, 3, 1], num_epochs=3)
    with pytest.raises(ValueError, match=r"X has shape \(40, 2\) but layers_dims\[0\] is 2: .* try X.T"):
        model(X.T, Y, [2, 3, 1], num_epochs=3)
    for n in (0, -2):
        with pytest.raises(ValueError, match=f"num_epochs must be a positive int, got {n}"):
            model(X, Y, [2, 3, 1], num_epochs=n)


def test_model_takes_lists():
    X, Y = _moons()
    P, costs = model(X, Y, [2, 3, 1], optimizer="adam", learning_rate=0.01, num_epochs=20, mini_batch_size=16)
    P_l, costs_l = model(X.tolist(), Y.tolist(), [2, 3, 1], optimizer="adam", learning_rate=0.01, num_epochs=20, mini_batch_size=16)
    assert costs_l == costs
    for k in P: np.testing.assert_array_equal(to_numpy(P_l[k]), to_numpy(P[k]))
    _, costs_m = model(X, Y[0], [2, 3, 1], optimizer="adam", learning_rate=0.01, num_epochs=20, mini_batch_size=16)  # (m,) labels
    assert costs_m == costs


@pytest.mark.parametrize("rule", ["gd", "momentum", "rmsprop", "adam"])
def test_updates_refuse_integer_parameters_and_bad_learning_rates(rule):
    def step(P, g, lr=0.1):
        if rule == "gd": return update_parameters_with_gd(P, g, lr)
        if rule == "momentum": return update_parameters_with_momentum(P, g, initialize_velocity(P), 0.9, lr)
        if rule == "rmsprop": return update_parameters_with_rmsprop(P, g, initialize_rmsprop(P), 0.9, lr)
        return update_parameters_with_adam(P, g, *initialize_adam(P), t=1, learning_rate=lr)
    P_int = {"W1": np.array([[1, 2]]), "b1": np.array([[0]])}
    g = {"dW1": np.ones((1, 2)), "db1": np.ones((1, 1))}
    with pytest.raises(TypeError, match=r"parameters\['W1'\] must be an array of floats \(it is updated in place\), got dtype int64"):
        step(P_int, g)
    with pytest.raises(TypeError, match=r"grads\['dW1'\] must be an array, got list"):
        step(_params(), {**_grads(_params(), 1), "dW1": [[0.0] * 4] * 3})
    for lr in ("0.1", None):
        with pytest.raises(ValueError, match=f"learning_rate must be a positive number, got {lr!r}"):
            step(_params(), _grads(_params(), 1), lr)
    X, Y = _moons()
    with pytest.raises(ValueError, match="learning_rate must be a positive number, got '0.1'"):
        model(X, Y, [2, 3, 1], optimizer=rule, learning_rate="0.1", num_epochs=2)
