"Tests of dlnotes.optimizers: mini-batches, update rules (dictionary and object forms), schedules, bad input."
import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dlnotes.optimizers import (
    random_mini_batches, update_parameters_with_gd, initialize_velocity, update_parameters_with_momentum,
    initialize_rmsprop, update_parameters_with_rmsprop, initialize_adam, update_parameters_with_adam,
    exponentially_weighted_average, inverse_time_decay, exponential_decay, step_decay, schedule_lr_decay,
    InverseTimeDecay, ExponentialDecay, StepDecay, Optimizer, SGD, Momentum, RMSprop, Adam, get_optimizer, model)

RULES = ("gd", "momentum", "rmsprop", "adam")


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


class Layer:
    "A stand-in with only what an optimizer reads."
    def __init__(self, name, W, b, trainable=True):
        self.name, self.trainable = name, trainable
        self.params, self.grads = {"W": W, "b": b}, {}


def _layers(P):
    return [Layer(f"dense_{l}", P[f"W{l}"].copy(), P[f"b{l}"].copy()) for l in range(1, len(P) // 2 + 1)]


def _object(rule, lr):
    return {"gd": SGD(lr), "momentum": Momentum(lr, beta=0.9), "rmsprop": RMSprop(lr, rho=0.9, epsilon=1e-8),
            "adam": Adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-8)}[rule]


def _functional_step(rule, P, g, v, s, t, lr):
    if rule == "gd": update_parameters_with_gd(P, g, lr)
    elif rule == "momentum": update_parameters_with_momentum(P, g, v, 0.9, lr)
    elif rule == "rmsprop": update_parameters_with_rmsprop(P, g, s, 0.9, lr, 1e-8)
    else: update_parameters_with_adam(P, g, v, s, t, lr, 0.9, 0.999, 1e-8)


# ---- bad input -------------------------------------------------------------------------------------------------

def test_unknown_optimizer_names():
    with pytest.raises(ValueError, match=r"unknown optimizer 'nadam'; valid names are \['adam', 'gd', 'momentum', 'rmsprop', 'sgd'\]"):
        get_optimizer("nadam")
    with pytest.raises(TypeError, match="optimizer must be a name or an Optimizer"):
        get_optimizer(None)
    X, Y = np.zeros((2, 8)), np.zeros((1, 8))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        model(X, Y, [2, 3, 1], optimizer="sgd_nesterov", num_epochs=1)


def test_get_optimizer_names_and_kwargs():
    for name, cls in (("sgd", SGD), ("SGD", SGD), ("gd", SGD), ("momentum", Momentum), ("rmsprop", RMSprop), (" adam ", Adam)):
        assert type(get_optimizer(name)) is cls
    opt = get_optimizer("adam", learning_rate=0.02, beta_2=0.99)
    assert (opt.learning_rate, opt.beta_2) == (0.02, 0.99)
    assert get_optimizer(opt) is opt


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
    with pytest.raises(ValueError, match="beta must be in"):
        update_parameters_with_momentum(P, g, initialize_velocity(P), 1.0, 0.1)
    with pytest.raises(ValueError, match="positive int"):
        update_parameters_with_adam(P, g, *initialize_adam(P), t=0)
    with pytest.raises(ValueError, match=r"grads\['dW1'\] must have the shape"):
        update_parameters_with_gd(P, {**g, "dW1": g["dW1"].T}, 0.1)
    for bad in (dict(learning_rate=-1.0), dict(learning_rate=float("nan")), dict(rho=1.0)):
        with pytest.raises(ValueError):
            RMSprop(**bad)


# ---- mini-batches ----------------------------------------------------------------------------------------------

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


# ---- update rules ----------------------------------------------------------------------------------------------

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


# ---- objects ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule", RULES)
def test_objects_skip_frozen_layers(rule):
    P = _params()
    layers = _layers(P)
    layers[0].trainable = False
    frozen = {k: p.copy() for k, p in layers[0].params.items()}
    opt = _object(rule, 0.05)
    for s in range(3):
        g = _grads(P, s)
        for l, layer in enumerate(layers, 1): layer.grads = {"W": g[f"dW{l}"], "b": g[f"db{l}"]}
        opt.step(layers)
    for k in frozen: np.testing.assert_array_equal(layers[0].params[k], frozen[k])
    assert not np.array_equal(layers[1].params["W"], P["W2"])
    assert all(i == id(layers[1]) for i, _ in opt.state)  # no state was made for the frozen layer
    assert opt.iterations == 3


def test_frozen_layer_without_grads_is_not_an_error():
    layer = Layer("frozen", np.ones((2, 2)), np.ones(2), trainable=False)  # grads {}: backward never ran
    Adam().step([layer])
    np.testing.assert_array_equal(layer.params["W"], np.ones((2, 2)))


@pytest.mark.parametrize("rule", RULES)
def test_objects_update_in_place(rule):
    layer = Layer("dense", np.ones((3, 2)), np.zeros(2))
    W, b = layer.params["W"], layer.params["b"]
    layer.grads = {"W": np.full((3, 2), 0.5), "b": np.full(2, -0.5)}
    _object(rule, 0.1).step([layer])
    assert layer.params["W"] is W and layer.params["b"] is b
    assert (W < 1).all() and (b > 0).all()


@pytest.mark.parametrize("rule", RULES)
def test_objects_agree_with_functional(rule):
    P = _params(dims=(5, 4, 3, 1))
    layers = _layers(P)
    opt = _object(rule, 0.02)
    v, s = initialize_adam(P)
    for t in range(1, 8):
        g = _grads(P, 100 + t)
        _functional_step(rule, P, g, v, s, t, 0.02)
        for l, layer in enumerate(layers, 1): layer.grads = {"W": g[f"dW{l}"], "b": g[f"db{l}"]}
        opt.step(layers)
    for l, layer in enumerate(layers, 1):
        np.testing.assert_allclose(layer.params["W"], P[f"W{l}"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(layer.params["b"], P[f"b{l}"], rtol=1e-12, atol=1e-14)


def test_sgd_momentum_is_momentum():
    P = _params()
    a, b = _layers(P), _layers(P)
    o1, o2 = SGD(0.1, momentum=0.8), Momentum(0.1, beta=0.8)
    for s in range(3):
        g = _grads(P, s)
        for layers in (a, b):
            for l, layer in enumerate(layers, 1): layer.grads = {"W": g[f"dW{l}"], "b": g[f"db{l}"]}
        o1.step(a); o2.step(b)
    for la, lb in zip(a, b): np.testing.assert_allclose(la.params["W"], lb.params["W"], rtol=1e-14)


def test_state_is_per_layer_and_key():
    l1, l2 = Layer("a", np.zeros((2, 2)), np.zeros(2)), Layer("b", np.zeros((2, 2)), np.zeros(2))
    l1.grads = {"W": np.ones((2, 2)), "b": np.ones(2)}
    l2.grads = {"W": -np.ones((2, 2)), "b": -np.ones(2)}
    opt = Momentum(0.1, beta=0.5)
    opt.step([l1, l2])
    assert set(opt.state) == {(id(l1), "W"), (id(l1), "b"), (id(l2), "W"), (id(l2), "b")}
    np.testing.assert_allclose(opt.state[(id(l1), "W")][0], 0.5)
    np.testing.assert_allclose(opt.state[(id(l2), "W")][0], -0.5)


def test_step_accepts_a_model_or_a_single_layer():
    layer = Layer("dense", np.ones((2, 2)), np.zeros(2))
    layer.grads = {"W": np.ones((2, 2)), "b": np.ones(2)}
    SGD(0.5).step(layer)
    SGD(0.5).step(SimpleNamespace(layers=[layer]))
    np.testing.assert_allclose(layer.params["W"], 0.0)


def test_step_errors():
    layer = Layer("dense_7", np.ones((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="layer 'dense_7' has no gradient for parameter 'W'"):
        Adam().step([layer])
    layer.grads = {"W": np.ones((3, 2)), "b": np.zeros(3)}
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(3, 2\), params\['W'\] has \(2, 3\)"):
        SGD().step([layer])


def test_float32_params_stay_float32():
    layer = Layer("dense", np.ones((2, 2), dtype=np.float32), np.zeros(2, dtype=np.float32))
    layer.grads = {"W": np.ones((2, 2), dtype=np.float32), "b": np.ones(2, dtype=np.float32)}
    opt = Adam(0.01)
    opt.step([layer])
    assert layer.params["W"].dtype == np.float32
    assert opt.state[(id(layer), "W")][0].dtype == np.float32


# ---- schedules -------------------------------------------------------------------------------------------------

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
    with pytest.raises(ValueError, match="decay_rate must be >= 0"):
        inverse_time_decay(1.0, 2, -0.1)


def test_schedule_as_learning_rate():
    "A schedule is read at each step: the k-th step uses schedule(k)."
    layer = Layer("dense", np.zeros((1, 1)), np.zeros(1))
    layer.grads = {"W": np.ones((1, 1)), "b": np.zeros(1)}
    opt = SGD(learning_rate=StepDecay(1.0, drop=0.5, every=1))
    for _ in range(3): opt.step([layer])
    np.testing.assert_allclose(layer.params["W"], -(1 + 0.5 + 0.25))
    assert opt.iterations == 3 and opt.current_learning_rate == pytest.approx(0.125)
    assert "StepDecay(initial_learning_rate=1.0" in repr(opt)


# ---- in-place updates -------------------------------------------------------------------------------------------

from dlnotes.optimizers import _adam_step, _adam_update, _blocks, _BLOCK  # noqa: E402


@pytest.mark.parametrize("shape,dtype,transposed", [((300, 500), np.float32, False), ((300, 500), np.float64, False),
                                                    ((4, 3), np.float32, False), ((500, 300), np.float32, True),
                                                    ((_BLOCK + 7,), np.float32, False)])
def test_adam_step_is_adam_update_bit_for_bit(shape, dtype, transposed):
    rng = np.random.default_rng(5)
    p0 = rng.standard_normal(shape).astype(dtype)
    if transposed: p0 = p0.T  # not C-contiguous: the step works on the whole arrays
    p1, p2 = p0.copy(order="K"), p0.copy(order="K")
    v1, s1, v2, s2 = (np.zeros_like(p1) for _ in range(4))
    T1, T2 = np.empty_like(p2), np.empty_like(p2)
    for t in range(1, 8):
        g = (rng.standard_normal(p0.shape) * 10.0**(-t % 4)).astype(dtype)
        if transposed: g = np.asfortranarray(g)
        _adam_update(p1, g, v1, s1, t, 0.003, 0.9, 0.999, 1e-7)
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


@pytest.mark.parametrize("rule", RULES)
def test_objects_agree_with_functional_bit_for_bit_in_float32(rule):
    P = {k: p.astype(np.float32) for k, p in _params(dims=(300, 400, 3)).items()}  # W1 has more than one block
    layers = _layers(P)
    opt = _object(rule, 0.01)
    v, s = initialize_adam(P)
    for t in range(1, 5):
        g = {k: a.astype(np.float32) for k, a in _grads(P, 200 + t).items()}
        _functional_step(rule, P, g, v, s, t, 0.01)
        for l, layer in enumerate(layers, 1): layer.grads = {"W": g[f"dW{l}"], "b": g[f"db{l}"]}
        opt.step(layers)
    for l, layer in enumerate(layers, 1):
        np.testing.assert_array_equal(layer.params["W"], P[f"W{l}"])
        np.testing.assert_array_equal(layer.params["b"], P[f"b{l}"])
        assert layer.params["W"].dtype == np.float32


@pytest.mark.parametrize("rule", RULES)
def test_object_steps_allocate_no_array_sized_temporaries(rule):
    import tracemalloc
    rng = np.random.default_rng(0)
    layer = Layer("big", rng.standard_normal((784, 512)).astype(np.float32), np.zeros(512, dtype=np.float32))
    layer.grads = {"W": rng.standard_normal((784, 512)).astype(np.float32), "b": np.ones(512, dtype=np.float32)}
    opt = _object(rule, 0.01)
    opt.step([layer])  # the first step creates the state and the scratch arrays
    tracemalloc.start()
    opt.step([layer])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < layer.params["W"].nbytes / 20, (rule, peak)


def test_scratch_arrays_are_reused_per_shape_and_dtype():
    opt = Adam(0.01)
    a32, b32 = np.zeros((3, 2), np.float32), np.zeros(2, np.float32)
    T = opt._scratch(a32, a32)
    assert T.shape == (3, 2) and T.dtype == np.float32
    assert opt._scratch(a32, a32) is T and opt._scratch(a32, a32, 1) is not T
    assert opt._scratch(b32, b32).shape == (2,)
    assert opt._scratch(a32, a32.astype(np.float64)).dtype == np.float64  # a float64 gradient gets float64 scratch


@pytest.mark.parametrize("rule", RULES)
def test_mixed_dtypes_still_update(rule):
    "float32 parameters with float64 gradients (and the reverse) update in place and keep their dtype."
    for p_dtype, g_dtype in ((np.float32, np.float64), (np.float64, np.float32)):
        layer = Layer("dense", np.ones((3, 2), dtype=p_dtype), np.zeros(2, dtype=p_dtype))
        layer.grads = {"W": np.full((3, 2), 0.5, dtype=g_dtype), "b": np.full(2, -0.5, dtype=g_dtype)}
        ref = Layer("ref", np.ones((3, 2)), np.zeros(2))
        ref.grads = {"W": np.full((3, 2), 0.5), "b": np.full(2, -0.5)}
        o1, o2 = _object(rule, 0.1), _object(rule, 0.1)
        for _ in range(3): o1.step([layer]); o2.step([ref])
        assert layer.params["W"].dtype == p_dtype
        np.testing.assert_allclose(layer.params["W"], ref.params["W"], rtol=1e-6)
        np.testing.assert_allclose(layer.params["b"], ref.params["b"], rtol=1e-6)
