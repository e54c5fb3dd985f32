"Tests of dlnotes.nn.optimizers: the optimizer objects against chapter 1's dictionary functions, their state by name, bad input."
from types import SimpleNamespace

import numpy as np
import pytest

from dlnotes.nn.optimization import (update_parameters_with_gd, update_parameters_with_momentum, update_parameters_with_rmsprop,
                                     initialize_adam, update_parameters_with_adam, StepDecay)
from dlnotes.nn.optimizers import Optimizer, SGD, Momentum, RMSprop, Adam, get_optimizer

RULES = ("gd", "momentum", "rmsprop", "adam")


def _params(dims=(4, 3, 2), s=0):
    "Random float64 parameters {W1, b1, ...} in chapter 1's layout."
    rng = np.random.default_rng(s)
    shapes = [(f"{k}{l}", shape) for l in range(1, len(dims)) for k, shape in (("W", (dims[l], dims[l - 1])), ("b", (dims[l], 1)))]
    return {k: rng.standard_normal(shape) for k, shape in shapes}


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


# ---- bad input ------------------------------------------------------------------------------------------------

def test_unknown_optimizer_names():
    with pytest.raises(ValueError, match=r"unknown optimizer 'nadam'; valid names are \['adam', 'gd', 'momentum', 'rmsprop', 'sgd'\]"):
        get_optimizer("nadam")
    with pytest.raises(TypeError, match="optimizer must be a name or an Optimizer"):
        get_optimizer(None)
    for bad in (dict(learning_rate=-1.0), dict(learning_rate=float("nan")), dict(rho=1.0)):
        with pytest.raises(ValueError):
            RMSprop(**bad)


def test_get_optimizer_names_and_kwargs():
    for name, cls in (("sgd", SGD), ("SGD", SGD), ("gd", SGD), ("momentum", Momentum), ("rmsprop", RMSprop), (" adam ", Adam)):
        assert type(get_optimizer(name)) is cls
    opt = get_optimizer("adam", learning_rate=0.02, beta_2=0.99)
    assert (opt.learning_rate, opt.beta_2) == (0.02, 0.99)
    assert get_optimizer(opt) is opt


# ---- objects --------------------------------------------------------------------------------------------------

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
    assert set(opt.state) == {"dense_2/W", "dense_2/b"}  # no state was made for the frozen layer
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


def test_state_is_keyed_by_layer_name_and_key():
    l1, l2 = Layer("a", np.zeros((2, 2)), np.zeros(2)), Layer("b", np.zeros((2, 2)), np.zeros(2))
    l1.grads = {"W": np.ones((2, 2)), "b": np.ones(2)}
    l2.grads = {"W": -np.ones((2, 2)), "b": -np.ones(2)}
    opt = Momentum(0.1, beta=0.5)
    opt.step([l1, l2])
    assert set(opt.state) == {"a/W", "a/b", "b/W", "b/b"}
    np.testing.assert_allclose(opt.state["a/W"][0], 0.5)
    np.testing.assert_allclose(opt.state["b/W"][0], -0.5)
    twin = Layer("a", np.zeros((2, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="two different layers are named 'a'"): opt.step([l1, twin])
    opt.step([l1, l1])  # one layer listed twice is one layer: stepped once
    assert opt.iterations == 2 and np.allclose(opt.state["a/W"][0], 0.75)


@pytest.mark.parametrize("rule", RULES)
def test_state_dict_round_trip_continues_exactly(rule):
    def run(opt, layers, steps, start):
        for t in range(start, start + steps):
            g = _grads(P, 300 + t)
            for l, layer in enumerate(layers, 1): layer.grads = {"W": g[f"dW{l}"], "b": g[f"db{l}"]}
            opt.step(layers)
    P = _params(dims=(5, 4, 2))
    straight, first = _layers(P), _layers(P)
    run(o1 := _object(rule, 0.02), straight, 6, 0)
    run(o2 := _object(rule, 0.02), first, 4, 0)
    saved = o2.state_dict()
    resumed = [Layer(l.name, l.params["W"].copy(), l.params["b"].copy()) for l in first]
    o3 = _object(rule, 0.02).load_state_dict(saved)
    assert o3.iterations == 4 and set(o3.state) == set(o2.state)
    run(o3, resumed, 2, 4)
    for a, b in zip(straight, resumed):
        for k in a.params: np.testing.assert_array_equal(a.params[k], b.params[k])


def test_load_state_dict_refuses_mismatches():
    saved = Adam().state_dict()
    with pytest.raises(ValueError, match=r"this state belongs to Adam with slots \['v', 's'\], not to RMSprop with slots \['s'\]"):
        RMSprop().load_state_dict(saved)
    with pytest.raises(ValueError, match="an optimizer state must be a dict"): Adam().load_state_dict([])
    with pytest.raises(ValueError, match="iterations must be a non-negative int, got -1"):
        Adam().load_state_dict(dict(saved, iterations=-1))
    loaded = Adam().load_state_dict(dict(saved, state={"dense/W": {"v": np.zeros((2, 2)), "s": np.zeros((2, 2))}}))
    layer = Layer("dense", np.ones((3, 2)), np.zeros(2)); layer.grads = {"W": np.ones((3, 2)), "b": np.ones(2)}
    with pytest.raises(ValueError, match=r"the optimizer's state for 'dense/W' has shape \(2, 2\), the parameter has \(3, 2\)"):
        loaded.step([layer])


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
    assert opt.state["dense/W"][0].dtype == np.float32


def test_schedule_as_learning_rate():
    "A schedule is read at each step: the k-th step uses schedule(k)."
    layer = Layer("dense", np.zeros((1, 1)), np.zeros(1))
    layer.grads = {"W": np.ones((1, 1)), "b": np.zeros(1)}
    opt = SGD(learning_rate=StepDecay(1.0, drop=0.5, every=1))
    for _ in range(3): opt.step([layer])
    np.testing.assert_allclose(layer.params["W"], -(1 + 0.5 + 0.25))
    assert opt.iterations == 3 and opt.current_learning_rate == pytest.approx(0.125)
    assert "StepDecay(initial_learning_rate=1.0" in repr(opt)


# ---- in place -------------------------------------------------------------------------------------------------

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


def _layer(name, g, p=None):
    return SimpleNamespace(name=name, trainable=True, params={"W": np.zeros_like(g) if p is None else p}, grads={"W": g})


@pytest.mark.parametrize("make", [lambda **c: SGD(0.5, **c), lambda **c: Adam(0.01, **c), lambda **c: Momentum(0.1, **c)], ids=["sgd", "adam", "momentum"])
def test_clipping_equals_the_rule_on_clipped_gradients(make):
    rng = np.random.default_rng(4)
    grads = [rng.standard_normal((3, 4)) * 10, rng.standard_normal(5) * 0.01]
    norms = [np.linalg.norm(g) for g in grads]
    total = np.sqrt(sum(n * n for n in norms))
    cases = {"clipnorm": (1.0, [g * min(1, 1.0 / n) for g, n in zip(grads, norms)]),
             "clipvalue": (0.3, [np.clip(g, -0.3, 0.3) for g in grads]),
             "global_clipnorm": (2.0, [g * 2.0 / total for g in grads])}
    for kind, (c, clipped) in cases.items():
        ref_layers = [_layer(f"l{i}", g) for i, g in enumerate(clipped)]
        layers = [_layer(f"l{i}", g) for i, g in enumerate(grads)]
        ref, opt = make(), make(**{kind: c})
        for _ in range(3): ref.step(ref_layers); opt.step(layers)
        for a, b in zip(layers, ref_layers): np.testing.assert_allclose(a.params["W"], b.params["W"], rtol=1e-12, atol=1e-15)
        assert layers[1].grads["W"] is grads[1]  # the layers' gradients themselves are not changed


def test_small_gradients_are_not_clipped_and_bad_settings_are_refused():
    g = np.array([0.3, -0.4])
    a, b = _layer("a", g), _layer("b", g)
    SGD(1.0).step([a]); SGD(1.0, clipnorm=0.5, global_clipnorm=None).step([b])
    np.testing.assert_array_equal(a.params["W"], b.params["W"])  # norm exactly 0.5: the factor is exactly 1
    with pytest.raises(ValueError, match="clipvalue must be a positive number, got -1"): SGD(clipvalue=-1)
    with pytest.raises((TypeError, ValueError), match="clipnorm"): Adam(clipnorm="big")
    with pytest.raises(TypeError): SGD(clip_norm=1.0)


def test_learning_rate_setter_config_and_nested_models():
    opt = Adam(0.01, clipnorm=3.0)
    opt.learning_rate = 0.002
    assert opt.current_learning_rate == 0.002
    with pytest.raises(ValueError, match="learning_rate must be a positive number"): opt.learning_rate = "fast"
    assert get_optimizer(opt.get_config()).get_config() == {"class_name": "Adam", "config": {
        "learning_rate": 0.002, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7, "clipnorm": 3.0}}
    with pytest.raises(ValueError, match="unknown optimizer class 'Adagrad'"): get_optimizer({"class_name": "Adagrad", "config": {}})
    # a model used as a layer: its parameters are keyed 'model/layer/key', its frozen layers skipped
    inner = SimpleNamespace(name="encoder", trainable=True, layers=[_layer("dense", np.ones(2)), _layer("frozen", np.ones(2))])
    inner.layers[1].trainable = False
    outer = SimpleNamespace(layers=[inner, _layer("head", np.ones(3))])
    opt = SGD(0.1, momentum=0.5)
    opt.step(outer)
    assert sorted(opt.state) == ["encoder/dense/W", "head/W"]
    np.testing.assert_array_equal(inner.layers[1].params["W"], np.zeros(2))
