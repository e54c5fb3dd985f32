"Gradient checks of Dense, Activation and Dropout over many shapes, the Layer protocol (several inputs, variable lengths, one layer applied several times), and bad inputs, for dlnotes.nn.layers."
import math

import numpy as np
import pytest

from dlnotes.backend import seed, randn, rand, to_numpy, xp
from dlnotes.gradcheck import check_layer, grad_check, as_float64
from dlnotes.nn.layers import Layer, Dense, Activation, Dropout, DenseCache, DropoutCache, _name_layers

ACTS = [None, "linear", "relu", "leaky_relu", "tanh", "sigmoid", "softmax"]
BATCHES, FEATURES = [1, 3, 7], [1, 4, 9]
TOL = 1e-7


def _built64(layer, input_shape):
    "Build `layer` for `input_shape` and cast its parameters to float64 in place."
    layer.build(input_shape)
    return as_float64(layer)


# ---------------------------------------------------------------- Dense

@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("n_in", FEATURES)
def test_dense_gradcheck(act, m, n_in):
    seed(100 + m * 10 + n_in)
    layer = _built64(Dense(3, activation=act), (n_in,))
    d = check_layer(layer, randn(m, n_in, dtype=np.float64) * 1.5)
    assert max(d.values()) < TOL, d
    assert set(layer.grads) == set(layer.params) == {"W", "b"}


@pytest.mark.parametrize("units", [1, 2, 6])
def test_dense_units_and_no_bias(units):
    seed(1)
    layer = _built64(Dense(units, activation="tanh", use_bias=False), (4,))
    assert set(layer.params) == {"W"}
    d = check_layer(layer, randn(5, 4, dtype=np.float64))
    assert max(d.values()) < TOL, d


def test_dense_on_last_axis_of_3d_input():
    seed(2)
    layer = _built64(Dense(3, activation="relu"), (2, 4))
    assert layer.params["W"].shape == (4, 3)
    d = check_layer(layer, randn(5, 2, 4, dtype=np.float64))
    assert max(d.values()) < TOL, d


def test_dense_skipping_dx_gives_same_grads():
    seed(3)
    layer = Dense(4, activation="relu")
    X = randn(6, 5)
    Y = layer(X)
    dY = randn(*Y.shape)
    layer.backward(dY)
    g = {k: v.copy() for k, v in layer.grads.items()}
    assert layer.backward(dY, need_dx=False) is None
    for k in g: np.testing.assert_array_equal(to_numpy(layer.grads[k]), to_numpy(g[k]))


def test_dense_float32_forward_and_default_initializers():
    seed(4)
    layer = Dense(7)
    Y = layer(randn(3, 5))
    assert Y.dtype == np.float32 and layer.params["W"].dtype == np.float32
    np.testing.assert_array_equal(to_numpy(layer.params["b"]), np.zeros(7))
    assert np.abs(to_numpy(layer.params["W"])).max() <= math.sqrt(6 / (5 + 7))  # glorot_uniform limit
    assert layer.count_params() == 5 * 7 + 7


def test_dense_reads_params_every_call():
    seed(5)
    layer = Dense(2)
    X = randn(3, 4)
    layer(X)
    layer.params["W"] = xp.zeros_like(layer.params["W"])
    np.testing.assert_array_equal(to_numpy(layer(X)), np.zeros((3, 2)))


def test_dense_bad_args_and_shapes():
    with pytest.raises(ValueError, match="units must be a positive int, got 0"): Dense(0)
    with pytest.raises(ValueError, match="units must be a positive int, got 2.5"): Dense(2.5)
    with pytest.raises(ValueError, match="layer 'd1'.*unknown activation 'swish'"): Dense(2, activation="swish", name="d1")
    with pytest.raises(ValueError, match="unknown initializer 'xavier'"): Dense(2, kernel_initializer="xavier")
    layer = Dense(3, name="fc")
    layer(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"layer 'fc' was built for inputs of shape \(batch, 4\), got an input of shape \(2, 5\)"):
        layer(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="layer 'fc' expects a batch"):
        layer(np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="layer 'fc' takes one input array, got a list of 1"):
        layer([[1.0, 2.0, 3.0, 4.0]])
    with pytest.raises(TypeError, match="layer 'fc' expects an array, got str"):
        layer("1 2 3 4")
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Dense(2, name="fresh").backward(np.ones((1, 2)))


# ---------------------------------------------------------------- Activation

@pytest.mark.parametrize("act", ACTS[1:])
@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("n", FEATURES)
def test_activation_gradcheck(act, m, n):
    seed(200 + m * 10 + n)
    layer = Activation(act)
    d = check_layer(layer, randn(m, n, dtype=np.float64) * 2)
    assert d["x"] < TOL, d
    assert layer.params == {} and layer.grads == {}


def test_activation_softmax_is_along_last_axis():
    seed(6)
    Z = randn(4, 3, 5, dtype=np.float64)
    A = to_numpy(Activation("softmax")(Z))
    np.testing.assert_allclose(A.sum(axis=-1), np.ones((4, 3)), rtol=1e-12)


def test_activation_unknown_name():
    with pytest.raises(ValueError, match="layer 'a'.*unknown activation 'gelu'"): Activation("gelu", name="a")


# ---------------------------------------------------------------- Dropout

@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("n", FEATURES)
def test_dropout_gradcheck_with_fixed_mask(rate, m, n):
    seed(300 + m * 10 + n)
    layer = Dropout(rate)
    X = randn(m, n, dtype=np.float64)
    layer(X, training=True)
    layer.fixed_mask = layer.mask
    d = check_layer(layer, X, training=True)
    assert d["x"] < TOL, d
    np.testing.assert_array_equal(to_numpy(layer.mask), to_numpy(layer.fixed_mask))


def test_dropout_inference_is_identity():
    seed(7)
    layer = Dropout(0.5)
    X = randn(5, 6, dtype=np.float64)
    Y = layer(X)  # training=False
    assert Y is X and layer.mask is None
    dY = randn(5, 6, dtype=np.float64)
    assert layer.backward(dY) is dY
    assert check_layer(layer, X)["x"] < TOL


def test_dropout_statistics_and_scaling():
    seed(8)
    layer = Dropout(0.3)
    Y = to_numpy(layer(xp.ones((300, 400), dtype=np.float32), training=True))
    assert abs((Y == 0).mean() - 0.3) < 0.01
    assert abs(Y.mean() - 1.0) < 0.015
    np.testing.assert_allclose(np.unique(Y), [0.0, 1 / 0.7], rtol=1e-6)
    assert Y.dtype == np.float32


def test_dropout_masks_differ_between_passes_and_rate_zero():
    seed(9)
    layer = Dropout(0.5)
    X = xp.ones((4, 50))
    a, b = to_numpy(layer(X, training=True)), to_numpy(layer(X, training=True))
    assert not np.array_equal(a, b)
    assert Dropout(0.0)(X, training=True) is X


def test_dropout_bad_rate_and_mask():
    for bad in (1.0, 1.5, -0.1, "0.5", True, None):
        with pytest.raises(ValueError, match=r"rate must be a number in \[0, 1\)"): Dropout(bad)
    layer = Dropout(0.5, name="drop")
    layer.fixed_mask = xp.ones((2, 3))
    with pytest.raises(ValueError, match=r"layer 'drop': fixed_mask has shape \(2, 3\), input has shape \(4, 3\)"):
        layer(xp.ones((4, 3)), training=True)


# ---------------------------------------------------------------- the base layer

def test_layer_names_come_from_the_type_and_are_made_unique_by_their_model():
    a, b = Layer(), Layer()
    assert (a.name, b.name, Dense(2).name, Dropout(0.1).name) == ("layer", "layer", "dense", "dropout")  # no global counter
    assert a.auto_name and not Layer(name="x").auto_name
    assert [l.name for l in _name_layers([a, Layer(name="layer_1"), b, a])] == ["layer", "layer_1", "layer_2"]
    assert not a.auto_name and not b.auto_name  # named once, for good
    assert [l.name for l in _name_layers([Dense(2), Dense(2)])] == ["dense", "dense_1"]  # another model starts again
    with pytest.raises(ValueError, match="model 'm' has two different layers named 'x'"):
        _name_layers([Layer(name="x"), Layer(name="x")], "m")


# ---------------------------------------------------------------- the protocol: several inputs, variable axes, several calls

from typing import NamedTuple

class _WeightedSumCache(NamedTuple):
    X0: object
    X1: object

class _WeightedSum(Layer):
    "y = x0 * a + x1 * c, entry-wise, with a and c vectors over the last axis: two inputs, one output."
    n_inputs = 2
    def build(self, input_shape):
        n = input_shape[0][-1]
        self.params = {"a": randn(n, dtype=np.float64), "c": randn(n, dtype=np.float64)}
        super().build(input_shape)
    def call(self, xs, training=False):
        self.cache = _WeightedSumCache(*xs)
        return xs[0] * self.params["a"] + xs[1] * self.params["c"]
    def backward(self, dy):
        X0, X1 = self._cached()
        self.grads = {"a": (dy * X0).reshape(-1, X0.shape[-1]).sum(0), "c": (dy * X1).reshape(-1, X1.shape[-1]).sum(0)}
        return [dy * self.params["a"], dy * self.params["c"]]


@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("n", [1, 5])
def test_layer_with_two_inputs_gradcheck(m, n):
    seed(60 + m)
    d = check_layer(_WeightedSum(), [randn(m, n, dtype=np.float64), randn(m, n, dtype=np.float64)])
    assert max(d.values()) < TOL and set(d) == {"x0", "x1", "a", "c", "all"}


def test_layer_with_two_inputs_refuses_bad_inputs():
    layer = _WeightedSum(name="ws")
    x = randn(4, 3, dtype=np.float64)
    with pytest.raises(ValueError, match=r"layer 'ws' takes 2 inputs \(a list of arrays\), got a single ndarray"): layer(x)
    with pytest.raises(ValueError, match=r"takes 2 inputs \(a list of arrays\), got a list of 3"): layer([x, x, x])
    with pytest.raises(ValueError, match=r"layer 'ws': its inputs must have one batch size, got shapes \[\(4, 3\), \(2, 3\)\]"):
        layer([x, x[:2]])
    layer([x, x])
    assert layer.input_shape == [(3,), (3,)] and layer.output_shape == (3,)
    with pytest.raises(ValueError, match=r"layer 'ws' was built for inputs of shape \(batch, 3\), got an input of shape \(4, 2\) as input 1"):
        layer([x, x[:, :2]])


class _PerStepScale(Layer):
    "y[:, t, :] = x[:, t, :] * w for any number of steps t: the time axis varies."
    variable_axes = (0,)
    def build(self, input_shape):
        self.params = {"w": randn(input_shape[-1], dtype=np.float64)}
        super().build(input_shape)
    def call(self, x, training=False):
        self.cache = x
        return x * self.params["w"]
    def backward(self, dy):
        self.grads = {"w": (dy * self._cached()).sum(axis=(0, 1))}
        return dy * self.params["w"]


def test_variable_axes_accept_any_length_and_check_the_rest():
    layer = _PerStepScale(name="steps")
    for T in (3, 8, 1):
        y = layer(randn(2, T, 4, dtype=np.float64))
        assert y.shape == (2, T, 4) and layer.output_shape == (T, 4)
        assert max(check_layer(layer, randn(3, T, 4, dtype=np.float64)).values()) < TOL
    assert layer.input_shape == (None, 4)
    with pytest.raises(ValueError, match=r"layer 'steps' was built for inputs of shape \(batch, None, 4\), got an input of shape \(2, 3, 5\)"):
        layer(randn(2, 3, 5, dtype=np.float64))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, None, 4\), got an input of shape \(2, 4\)"):
        layer(randn(2, 4, dtype=np.float64))


@pytest.mark.parametrize("T", [1, 4])
def test_dense_and_activation_on_sequences_of_any_length(T):
    seed(70 + T)
    dense = _built64(Dense(3, activation="tanh"), (5, 2))
    assert dense.input_shape == (None, 2)
    assert max(check_layer(dense, randn(2, T, 2, dtype=np.float64)).values()) < TOL
    act = Activation("softmax")
    assert max(check_layer(act, randn(3, T, 4, dtype=np.float64)).values()) < TOL
    act(randn(3, T + 2, 4, dtype=np.float64))


@pytest.mark.parametrize("calls", [2, 3])
def test_one_layer_called_several_times_sums_its_gradients(calls):
    seed(80 + calls)
    layer = _built64(Dense(3, activation="relu"), (4,))
    Xs = [randn(2 + i, 4, dtype=np.float64) for i in range(calls)]
    Rs = [randn(2 + i, 3, dtype=np.float64) for i in range(calls)]
    caches = []
    for X in Xs:
        layer(X); caches.append(layer.cache)
    assert all(isinstance(c, DenseCache) for c in caches) and caches[0].X is Xs[0]
    dXs = [None] * calls
    for i in reversed(range(calls)):  # reverse order, as a backward pass runs
        dXs[i] = layer.backward_for(Rs[i], caches[i], accumulate=i < calls - 1)
    J = lambda: float(sum((layer(X) * R).sum() for X, R in zip(Xs, Rs)))
    params = {**{f"x{i}": X for i, X in enumerate(Xs)}, **layer.params}
    grads = {**{f"x{i}": dX for i, dX in enumerate(dXs)}, **layer.grads}
    assert max(grad_check(J, params, grads).values()) < TOL
    # without accumulate, the last backward pass replaces the gradients: they are those of that call alone
    layer.backward_for(Rs[0], caches[0])
    single = {k: v.copy() for k, v in layer.grads.items()}
    layer(Xs[0]); layer.backward(Rs[0])
    for k in single: np.testing.assert_array_equal(to_numpy(single[k]), to_numpy(layer.grads[k]))


def test_backward_for_can_skip_dx():
    seed(90)
    layer = _built64(Dense(2), (3,))
    layer(randn(4, 3, dtype=np.float64)); cache = layer.cache
    assert layer.backward_for(randn(4, 2, dtype=np.float64), cache, need_dx=False) is None
    drop = Dropout(0.5)  # no need_dx argument: backward_for still returns dx
    drop(randn(4, 3, dtype=np.float64), training=True)
    assert drop.backward_for(xp.ones((4, 3)), drop.cache, need_dx=False).shape == (4, 3)


def test_check_input_runs_before_build_and_on_every_call():
    class Even(Layer):
        def check_input(self, shape):
            if shape[-1] % 2: raise ValueError(f"layer {self.name!r} needs an even number of features, got {shape[-1]}")
    layer = Even(name="even")
    with pytest.raises(ValueError, match="layer 'even' needs an even number of features, got 3"): layer(np.ones((2, 3)))
    assert not layer.built and layer.input_shape is None
    layer(np.ones((2, 4)))
    with pytest.raises(ValueError, match="needs an even number of features, got 5"): layer(np.ones((2, 5)))


def test_caches_are_named():
    seed(91)
    drop = Dropout(0.5)
    X = randn(3, 4)
    drop(X)
    assert drop.cache == DropoutCache(M=None)  # inference: the identity, no mask
    drop(X, training=True)
    assert isinstance(drop.cache, DropoutCache) and drop.cache.M is drop.mask
    dense = Dense(2, activation="tanh")
    dense(X)
    assert dense.cache._fields == ("X", "activation_cache") and dense.cache.X is X


def test_every_library_layer_documents_its_constructor_and_its_methods():
    "help() on a layer shows its arguments (from the comments beside them) and what each overridden method does."
    import importlib, inspect, pkgutil
    import dlnotes
    from dlnotes.nn.layers import LAYERS, Layer
    for m in pkgutil.walk_packages(dlnotes.__path__, "dlnotes."):
        if not m.name.endswith("_modidx"): importlib.import_module(m.name)
    classes = [c for c in LAYERS.values() if c.__module__.startswith("dlnotes.")]
    assert {"Dense", "Activation", "Dropout", "BatchNormalization", "Conv2D", "MaxPooling2D", "Add", "Concatenate", "Dot",
            "Lambda", "Reshape", "Model", "Sequential", "InputLayer"} <= {c.__name__ for c in classes}
    for cls in classes:
        doc = cls.__init__.__doc__ or ""
        assert "Initialize self" not in doc and "Arguments:" in doc, cls
        for arg in [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "kwargs", "args")]:
            assert f"    {arg}: " in doc and f"{arg}: (undocumented)" not in doc, (cls.__name__, arg)
        for meth in ("build", "call", "backward", "check_input"):
            own = getattr(cls, meth, None)
            if own is not None and own is not getattr(Layer, meth) and meth in {k for c in cls.__mro__[:-2] for k in vars(c)}:
                assert own.__doc__ and own.__doc__ != getattr(Layer, meth).__doc__, (cls.__name__, meth)
    assert [Dense(2).name, __import__("dlnotes.vision.cnn", fromlist=["x"]).Conv2D(2, 3).name] == ["dense", "conv2d"]
