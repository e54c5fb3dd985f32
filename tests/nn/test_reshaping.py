"Gradient checks over many shapes, Keras's semantics and names, saving by registered names, and bad inputs for dlnotes.nn.reshaping: RepeatVector, Reshape, Permute, Lambda."
import json, pydoc

import numpy as np
import pytest
from fastcore.docments import docments

from dlnotes.backend import seed, randn, to_numpy, xp, get_array_module
from dlnotes.gradcheck import check_layer, as_float64
from dlnotes.nn.layers import LAYERS, Layer, Dense
from dlnotes.nn.merging import Concatenate
from dlnotes.nn.models import Sequential
from dlnotes.nn.reshaping import RepeatVector, Reshape, Permute, Lambda, FUNCTIONS, register_function, ShapeCache, LambdaCache

TOL = 1e-7


@register_function
def _tst_cube(x): return x ** 3


@register_function
def _tst_cube_backward(dy, x): return 3 * x ** 2 * dy


@register_function
def _tst_weighted_sum(xs): return xs[0] + 2 * xs[1] + 3 * xs[2]


@register_function
def _tst_weighted_sum_backward(dy, xs): return [dy, 2 * dy, 3 * dy]


# ---------------------------------------------------------------- RepeatVector

@pytest.mark.parametrize("n", [1, 2, 7])
@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (5, 2)])
def test_repeat_vector(n, shape):
    seed(n * 10 + shape[1])
    x = randn(*shape, dtype=np.float64)
    layer = RepeatVector(n)
    y = layer(x)
    assert y.shape == (shape[0], n, shape[1]) and layer.cache == ShapeCache(shape)
    for t in range(n): np.testing.assert_array_equal(to_numpy(y[:, t]), to_numpy(x))
    d = check_layer(layer, x)
    assert d["x"] < TOL, d


def test_repeat_vector_bad():
    for bad in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match=f"RepeatVector: n must be a positive int, got {bad!r}"): RepeatVector(bad)
    layer = RepeatVector(3, name="rep")
    with pytest.raises(ValueError) as e: layer(randn(2, 3, 4))
    assert str(e.value) == "layer 'rep' takes a batch of vectors (batch, d), got an input of shape (batch, 3, 4)"
    with pytest.raises(RuntimeError, match="layer 'rep': backward called before forward"): layer.backward(xp.ones((2, 3, 4)))
    layer(randn(2, 4))
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output, \(2, 3, 4\), got \(2, 4\)"): layer.backward(xp.ones((2, 4)))


# ---------------------------------------------------------------- Reshape

@pytest.mark.parametrize("target,shape,out", [((3, 4), (2, 12), (2, 3, 4)), ((-1,), (3, 2, 3), (3, 6)), ((2, -1, 2), (2, 4, 3), (2, 2, 3, 2)),
                                              ((12,), (1, 3, 4), (1, 12)), ((-1, 1), (2, 5), (2, 5, 1)), ((1, 1, 1), (4, 1), (4, 1, 1, 1))])
def test_reshape(target, shape, out):
    seed(len(shape) + len(target))
    x = randn(*shape, dtype=np.float64)
    layer = Reshape(target)
    y = layer(x)
    assert y.shape == out and layer.cache == ShapeCache(shape)
    np.testing.assert_array_equal(to_numpy(y), to_numpy(x).reshape(out))  # row-major, like NumPy and Flatten
    d = check_layer(layer, x)
    assert d["x"] < TOL, d


def test_reshape_with_minus_one_takes_any_size():
    layer = Reshape((-1, 4))
    assert layer(randn(2, 8)).shape == (2, 2, 4) and layer(randn(3, 20)).shape == (3, 5, 4)
    fixed = Reshape((2, 3), name="r")
    fixed(randn(2, 6))
    with pytest.raises(ValueError, match=r"layer 'r' cannot reshape examples of shape \(8,\) \(8 entries\) into \(2, 3\)"): fixed(randn(2, 8))


def test_reshape_bad():
    for bad in ((-1, -1), (0, 3), (2.0, 3), 12, (), (-2, 6), "ab", (3, None), (True, 2)):
        with pytest.raises(ValueError) as e: Reshape(bad)
        assert str(e.value) == f"Reshape: target_shape must be a tuple of positive ints, one of which may be -1, got {bad!r}"
    with pytest.raises(ValueError) as e: Reshape((5, 2), name="r")(randn(3, 12))
    assert str(e.value) == "layer 'r' cannot reshape examples of shape (12,) (12 entries) into (5, 2)"
    with pytest.raises(ValueError, match=r"cannot reshape examples of shape \(3, 4\) \(12 entries\) into \(-1, 5\)"): Reshape((-1, 5))(randn(2, 3, 4))
    layer = Reshape((3, 4))
    layer(randn(2, 12))
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output, \(2, 3, 4\), got \(2, 12\)"): layer.backward(xp.ones((2, 12)))


# ---------------------------------------------------------------- Permute

@pytest.mark.parametrize("dims,shape", [((1,), (3, 4)), ((2, 1), (2, 3, 4)), ((1, 2), (2, 3, 4)), ((3, 1, 2), (2, 3, 4, 2)),
                                        ((2, 3, 1), (2, 2, 3, 4)), ((4, 3, 2, 1), (1, 2, 3, 1, 2))])
def test_permute(dims, shape):
    seed(len(dims) + shape[1])
    x = randn(*shape, dtype=np.float64)
    layer = Permute(dims)
    y = layer(x)
    np.testing.assert_array_equal(to_numpy(y), np.transpose(to_numpy(x), (0,) + dims))
    assert layer.cache == ShapeCache(shape)
    d = check_layer(layer, x)
    assert d["x"] < TOL, d


def test_permute_is_undone_by_its_inverse_and_takes_any_lengths():
    seed(1)
    x = randn(2, 3, 4, 5)
    there, back = Permute((3, 1, 2)), Permute((2, 3, 1))
    np.testing.assert_array_equal(to_numpy(back(there(x))), to_numpy(x))
    assert there(randn(1, 7, 1, 2)).shape == (1, 2, 7, 1)


def test_permute_bad():
    for bad in ((0, 1), (1, 1), (1, 3), "21", (1.0, 2.0), (), 1, (2, 1, True)):
        with pytest.raises(ValueError) as e: Permute(bad)
        assert str(e.value) == f"Permute: dims must be a permutation of 1, ..., r (the example's axes, numbered from 1), got {bad!r}"
    with pytest.raises(ValueError) as e: Permute((2, 1), name="p")(randn(2, 3, 4, 5))
    assert str(e.value) == "layer 'p': dims (2, 1) permute 2 axes, got an input of shape (batch, 3, 4, 5)"
    layer = Permute((2, 1))
    layer(randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output, \(2, 4, 3\), got \(2, 3, 4\)"): layer.backward(xp.ones((2, 3, 4)))


# ---------------------------------------------------------------- Lambda

@pytest.mark.parametrize("shape", [(1, 1), (4, 3), (2, 3, 2)])
def test_lambda_one_input(shape):
    seed(len(shape))
    x = randn(*shape, dtype=np.float64)
    layer = Lambda(_tst_cube, _tst_cube_backward)
    np.testing.assert_allclose(to_numpy(layer(x)), to_numpy(x) ** 3, rtol=1e-12)
    assert isinstance(layer.cache, LambdaCache) and layer.cache.x is x
    d = check_layer(layer, x)
    assert d["x"] < TOL, d


@pytest.mark.parametrize("n_inputs", [3, None])
def test_lambda_several_inputs(n_inputs):
    seed(2)
    xs = [randn(3, 4, dtype=np.float64) for _ in range(3)]
    layer = Lambda(_tst_weighted_sum, _tst_weighted_sum_backward, n_inputs=n_inputs)
    d = check_layer(layer, xs)
    assert max(d.values()) < TOL, d
    assert layer.input_shape == [(None,)] * 3


def test_lambda_without_backward_works_forward_only():
    seed(3)
    layer = Lambda(_tst_cube, name="cube")
    x = randn(2, 3)
    np.testing.assert_allclose(to_numpy(layer(x, training=True)), to_numpy(x) ** 3, rtol=1e-6)
    with pytest.raises(RuntimeError) as e: layer.backward(xp.ones((2, 3)))
    assert str(e.value) == ("layer 'cube' has no backward function: a Lambda needs backward= "
                            "(a function backward(dy, x) returning dJ/dx) to be trained")
    with pytest.raises(RuntimeError, match="a Lambda needs backward="): Lambda(_tst_cube).backward(xp.ones((2, 3)))  # before forward too


def test_lambda_in_a_sequential_trains_only_with_a_backward():
    seed(4)
    x = randn(5, 3, dtype=np.float64)
    model = Sequential([Dense(4, activation="tanh"), Lambda(_tst_cube, _tst_cube_backward), Dense(2)])
    model.forward(x)
    for layer in model.layers: as_float64(layer)
    d = check_layer(model, x)
    assert d["all"] < TOL, d
    frozen = Sequential([Dense(4), Lambda(_tst_cube, name="cube"), Dense(2)])
    frozen.forward(x)
    with pytest.raises(RuntimeError, match="layer 'cube' has no backward function"): frozen.backward(xp.ones((5, 2)))


def test_lambda_config_by_registered_names():
    layer = Lambda(_tst_weighted_sum, _tst_weighted_sum_backward, n_inputs=3, name="mix")
    config = layer.get_config()
    assert config == {"function": "_tst_weighted_sum", "backward": "_tst_weighted_sum_backward", "n_inputs": 3, "name": "mix"}
    again = Lambda(**json.loads(json.dumps(config)))
    assert again.function is _tst_weighted_sum and again.backward_function is _tst_weighted_sum_backward and again.n_inputs == 3
    assert Lambda("_tst_cube").get_config() == {"function": "_tst_cube", "backward": None, "n_inputs": 1, "name": "lambda"}
    assert FUNCTIONS["_tst_cube"] is _tst_cube and LAYERS["Lambda"] is Lambda


def test_lambda_config_of_unregistered_functions_names_the_layer():
    with pytest.raises(ValueError) as e: Lambda(lambda x: x, name="anon").get_config()
    assert str(e.value) == ("layer 'anon': its function <lambda> is not registered, so the layer cannot be saved: "
                            "define it with def and decorate it with @register_function")
    def local(dy, x): return dy
    with pytest.raises(ValueError, match="layer 'lambda': its backward local is not registered"): Lambda(_tst_cube, local).get_config()
    def impostor(x): return x
    impostor.__name__ = "_tst_cube"  # the name of a registered function, but another object: not the registered one
    with pytest.raises(ValueError, match="its function _tst_cube is not registered"): Lambda(impostor).get_config()


def test_register_function():
    def _tst_fresh(x): return x
    assert register_function(_tst_fresh) is _tst_fresh and FUNCTIONS["_tst_fresh"] is _tst_fresh
    assert register_function(_tst_fresh) is _tst_fresh  # registering again is harmless
    def _tst_fresh(x): return 2 * x  # a re-run notebook cell: the new definition replaces the old one
    register_function(_tst_fresh)
    assert FUNCTIONS["_tst_fresh"] is _tst_fresh
    with pytest.raises(ValueError, match="register_function needs a function defined with def, whose name is its key; got <lambda>"):
        register_function(lambda x: x)
    for bad in (3, "f", None):
        with pytest.raises(TypeError, match="register_function expects a function"): register_function(bad)
    del FUNCTIONS["_tst_fresh"]


def test_lambda_bad_args():
    with pytest.raises(ValueError, match=r"Lambda: function 'nowhere' is not a registered function \(register it with @register_function before loading\)"):
        Lambda("nowhere")
    with pytest.raises(ValueError, match="Lambda: backward 'nowhere' is not a registered function"): Lambda(_tst_cube, "nowhere")
    with pytest.raises(TypeError, match="Lambda: function must be a function or the name of a registered one, got 3"): Lambda(3)
    with pytest.raises(TypeError, match="Lambda: backward must be a function or the name of a registered one, got 3"): Lambda(_tst_cube, 3)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match=f"Lambda: n_inputs must be a positive int, got {bad!r}"): Lambda(_tst_cube, n_inputs=bad)


def test_lambda_bad_inputs_and_gradients():
    seed(5)
    x = randn(4, 3)
    with pytest.raises(ValueError, match="layer 'lambda' takes one input array, got a list of 2"): Lambda(_tst_cube)([x, x])
    with pytest.raises(ValueError, match="takes 3 inputs \\(a list of arrays\\), got a list of 2"): Lambda(_tst_weighted_sum, n_inputs=3)([x, x])
    with pytest.raises(TypeError, match="layer 'num': its function must return an array \\(or a list of arrays\\), got float"):
        Lambda(lambda v: 1.0, name="num")(x)
    short = Lambda(_tst_cube, lambda dy, v: dy[:, :2], name="short"); short(x)
    with pytest.raises(ValueError) as e: short.backward(xp.ones((4, 3)))
    assert str(e.value) == "layer 'short': its backward function returned a gradient of shape (4, 2) for input of shape (4, 3)"
    single = Lambda(_tst_weighted_sum, lambda dy, xs: dy, n_inputs=3, name="single"); single([x, x, x])
    with pytest.raises(ValueError, match="layer 'single': its backward function must return a list of 3 gradients, one per input, got ndarray"):
        single.backward(xp.ones((4, 3)))
    wrong = Lambda(_tst_weighted_sum, lambda dy, xs: [dy, dy, dy[:1]], n_inputs=3, name="wrong"); wrong([x, x, x])
    with pytest.raises(ValueError, match=r"returned a gradient of shape \(1, 3\) for input 2 of shape \(4, 3\)"): wrong.backward(xp.ones((4, 3)))
    nothing = Lambda(_tst_cube, lambda dy, v: None, name="nothing"); nothing(x)
    with pytest.raises(ValueError, match=r"returned a gradient of shape \(\) for input of shape \(4, 3\)"): nothing.backward(xp.ones((4, 3)))


# ---------------------------------------------------------------- together, names, configuration, help

def test_repeat_then_concatenate_gradcheck():
    seed(6)
    h, S = randn(2, 3, dtype=np.float64), randn(2, 4, 5, dtype=np.float64)
    rep, cat = RepeatVector(4), Concatenate()
    R = randn(2, 4, 8, dtype=np.float64)
    cat([rep(h), S])
    dhr, dS = cat.backward(R)
    dh = rep.backward(dhr)
    np.testing.assert_allclose(to_numpy(dh), to_numpy(R)[:, :, :3].sum(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(dS), to_numpy(R)[:, :, 3:])


def test_reshape_permute_in_a_sequential_gradcheck():
    seed(7)
    model = Sequential([Dense(6, activation="tanh"), RepeatVector(3), Reshape((3, 2, 3)), Permute((3, 1, 2)), Reshape((-1,)), Dense(2)])
    x = randn(4, 5, dtype=np.float64)
    model.forward(x)
    for layer in model.layers: as_float64(layer)
    assert [l.output_shape for l in model.layers] == [(6,), (3, 6), (3, 2, 3), (3, 3, 2), (18,), (2,)]
    d = check_layer(model, x)
    assert d["all"] < TOL, d


def test_keras_default_names_and_registry():
    assert [RepeatVector(2).name, Reshape((2,)).name, Permute((1,)).name, Lambda(_tst_cube).name] == ["repeat_vector", "reshape", "permute", "lambda"]
    for cls in (RepeatVector, Reshape, Permute, Lambda): assert LAYERS[cls.__name__] is cls


@pytest.mark.parametrize("layer", [RepeatVector(3, name="rep"), Reshape([4, -1]), Permute((2, 1))], ids=lambda l: type(l).__name__)
def test_config_round_trip_through_json(layer):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer)(**config)
    assert json.loads(json.dumps(again.get_config())) == config and again.name == layer.name
    x = randn(2, 8) if not isinstance(layer, Permute) else randn(2, 3, 4)
    np.testing.assert_array_equal(to_numpy(again(x)), to_numpy(layer(x)))


def test_results_stay_on_the_inputs_device():
    seed(8)
    x = randn(2, 3, 4)
    for layer, inp in ((RepeatVector(2), x[:, 0]), (Reshape((-1,)), x), (Permute((2, 1)), x), (Lambda(_tst_cube, _tst_cube_backward), x)):
        y = layer(inp)
        assert get_array_module(y) is get_array_module(x) and get_array_module(layer.backward(xp.ones_like(y))) is get_array_module(x)


@pytest.mark.parametrize("cls", [RepeatVector, Reshape, Permute, Lambda])
def test_help_shows_own_docstrings(cls):
    "What help(cls) prints: the constructor's own docstring and argument comments, and each override's own docstring."
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert "Initialize self" not in text and cls.__init__.__doc__.splitlines()[0] in text
    assert [k for k, v in docments(cls.__init__).items() if k not in ("self", "return") and not v] == []
    for m in ("build", "call", "backward", "check_input"):
        if getattr(cls, m) is getattr(Layer, m): continue
        assert getattr(cls, m).__doc__ and getattr(cls, m).__doc__ in text and getattr(Layer, m).__doc__ not in text, (cls, m)
