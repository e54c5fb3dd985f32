"Gradient checks over many shapes, Keras's semantics and names, and bad inputs for dlnotes.nn.merging: Add, Multiply, Concatenate, Dot, batch_dot, l2_normalize."
import json

import numpy as np
import pytest
from fastcore.docments import docments

from dlnotes.backend import seed, randn, to_numpy, xp
from dlnotes.gradcheck import check_layer, grad_check
from dlnotes.nn.layers import LAYERS, Layer
from dlnotes.nn.merging import (Add, Multiply, Concatenate, Dot, AddCache, MultiplyCache, ConcatenateCache, DotCache,
                                batch_dot, batch_dot_backward, l2_normalize, l2_normalize_backward, BatchDotCache)

TOL = 1e-7
SHAPES = [(1, 1), (4, 3), (2, 5, 3), (3, 2, 4, 2)]


def _randn64(*shapes): return [randn(*s, dtype=np.float64) for s in shapes]


# ---------------------------------------------------------------- Add, Multiply

@pytest.mark.parametrize("cls", [Add, Multiply])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("K", [2, 3, 5])
def test_elementwise_gradcheck(cls, shape, K):
    seed(K * 10 + len(shape))
    d = check_layer(cls(), _randn64(*[shape] * K))
    assert max(d.values()) < TOL, d
    assert set(d) == {f"x{k}" for k in range(K)} | {"all"}


def test_add_and_multiply_values_and_caches():
    seed(1)
    xs = _randn64((3, 4), (3, 4), (3, 4))
    ref = [to_numpy(x) for x in xs]
    add, mul = Add(), Multiply()
    np.testing.assert_allclose(to_numpy(add(xs)), ref[0] + ref[1] + ref[2], rtol=1e-12)
    np.testing.assert_allclose(to_numpy(mul(xs)), ref[0] * ref[1] * ref[2], rtol=1e-12)
    assert add.cache == AddCache(3, (3, 4)) and isinstance(mul.cache, MultiplyCache) and len(mul.cache.X) == 3
    dY = randn(3, 4, dtype=np.float64)
    for k, dX in enumerate(mul.backward(dY)):
        others = np.prod([r for j, r in enumerate(ref) if j != k], axis=0)
        np.testing.assert_allclose(to_numpy(dX), to_numpy(dY) * others, rtol=1e-12)


def test_add_gives_each_input_its_own_gradient_array():
    seed(2)
    add = Add()
    x = randn(2, 3)
    add([x, x])
    dxs = add.backward(xp.ones((2, 3)))
    assert len({id(d) for d in dxs}) == 2
    dxs[0] += 1  # summing in place into one input's gradient leaves the other's alone
    np.testing.assert_array_equal(to_numpy(dxs[1]), np.ones((2, 3)))


def test_multiply_with_zeros_has_no_nan():
    x = xp.zeros((2, 3))
    y = xp.full((2, 3), 2.0)
    mul = Multiply()
    mul([x, x, y])
    dx0, dx1, dy = mul.backward(xp.ones((2, 3)))
    for g in (dx0, dx1, dy): assert not np.isnan(to_numpy(g)).any()
    np.testing.assert_array_equal(to_numpy(dx0), np.zeros((2, 3)))  # d/dx0 of x0 x1 y = x1 y = 0
    np.testing.assert_array_equal(to_numpy(dy), np.zeros((2, 3)))


def test_multiply_gradcheck_with_exact_zeros():
    seed(3)
    xs = _randn64((4, 3), (4, 3), (4, 3))
    xs[0][0, :] = 0.0
    xs[1][1, 1] = 0.0
    d = check_layer(Multiply(), xs)
    assert max(d.values()) < TOL, d


@pytest.mark.parametrize("cls", [Add, Multiply])
def test_elementwise_keep_dtype_and_lengths(cls):
    seed(4)
    layer = cls()
    y = layer([randn(2, 5, 3), randn(2, 5, 3)])
    assert y.dtype == np.float32 and y.shape == (2, 5, 3)
    assert layer.input_shape == [(None, None), (None, None)]
    assert layer([randn(4, 9, 1), randn(4, 9, 1)]).shape == (4, 9, 1)  # other lengths: fine
    with pytest.raises(ValueError, match=r"was built for inputs of shape \(batch, None, None\), got an input of shape \(4, 9\)"):
        layer([randn(4, 9), randn(4, 9)])  # another number of axes: refused
    with pytest.raises(ValueError, match="was built for 2 inputs, got 3"):
        layer([randn(2, 5, 3)] * 3)


@pytest.mark.parametrize("cls,name", [(Add, "add"), (Multiply, "multiply")])
def test_elementwise_bad_inputs(cls, name):
    layer = cls()
    with pytest.raises(ValueError) as e: layer([randn(4, 3), randn(4, 5)])
    assert str(e.value) == f"layer '{name}' needs inputs of one shape, got inputs of shapes (batch, 3), (batch, 5)"
    with pytest.raises(ValueError, match="needs inputs of one shape, got inputs of shapes \\(batch, 3\\), \\(batch, 3\\), \\(batch, 3, 1\\)"):
        layer([randn(4, 3), randn(4, 3), randn(4, 3, 1)])
    with pytest.raises(ValueError, match=f"layer '{name}' takes two or more inputs \\(a list of arrays\\), got a single ndarray"): layer(randn(4, 3))
    with pytest.raises(ValueError, match="got a list of 1"): layer([randn(4, 3)])
    with pytest.raises(ValueError, match="its inputs must have one batch size"): layer([randn(4, 3), randn(5, 3)])
    with pytest.raises(RuntimeError, match="backward called before forward"): cls().backward(xp.ones((4, 3)))
    layer([randn(4, 3), randn(4, 3)])
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output, \(4, 3\), got \(4, 1\)"): layer.backward(xp.ones((4, 1)))


# ---------------------------------------------------------------- Concatenate

@pytest.mark.parametrize("axis,shapes", [
    (-1, [(3, 2), (3, 5)]), (1, [(3, 2), (3, 1), (3, 4)]), (-1, [(2, 4, 3), (2, 4, 1)]), (1, [(2, 3, 4), (2, 1, 4)]),
    (-2, [(2, 3, 4), (2, 2, 4), (2, 5, 4)]), (2, [(2, 3, 1, 2), (2, 3, 4, 2)]), (3, [(1, 2, 2, 1), (1, 2, 2, 3)]),
    (-3, [(2, 1, 2, 3), (2, 2, 2, 3)])])
def test_concatenate_gradcheck(axis, shapes):
    seed(len(shapes) + abs(axis))
    xs = _randn64(*shapes)
    layer = Concatenate(axis)
    y = layer(xs)
    np.testing.assert_array_equal(to_numpy(y), np.concatenate([to_numpy(x) for x in xs], axis=axis))
    d = check_layer(layer, xs)
    assert max(d.values()) < TOL, d


def test_concatenate_cache_and_lengths():
    seed(5)
    layer = Concatenate(axis=1)
    y = layer([randn(2, 3, 4), randn(2, 5, 4)])
    assert y.shape == (2, 8, 4) and layer.cache == ConcatenateCache(1, (3, 5), (2, 8, 4))
    assert layer([randn(3, 1, 2), randn(3, 7, 2)]).shape == (3, 8, 2)  # any lengths, the same number of axes
    dA, dB = layer.backward(randn(3, 8, 2))
    assert dA.shape == (3, 1, 2) and dB.shape == (3, 7, 2)


def test_concatenate_bad_inputs():
    layer = Concatenate(name="cat")
    with pytest.raises(ValueError) as e: layer([randn(2, 5, 4), randn(2, 7, 3)])
    assert str(e.value) == "layer 'cat' needs inputs that agree on every axis but axis -1, got inputs of shapes (batch, 5, 4), (batch, 7, 3)"
    with pytest.raises(ValueError, match=r"layer 'cat' needs inputs with as many axes, got inputs of shapes \(batch, 5, 4\), \(batch, 4\)"):
        layer([randn(2, 5, 4), randn(2, 4)])
    with pytest.raises(ValueError, match=r"layer 'concatenate': axis 3 is not an axis of an example of an input of shape \(batch, 5, 4\)"):
        Concatenate(axis=3)([randn(2, 5, 4), randn(2, 5, 4)])
    with pytest.raises(ValueError, match="axis -4 is not an axis"): Concatenate(axis=-4)([randn(2, 5, 4), randn(2, 5, 4)])
    for bad, msg in ((0, "Concatenate: axis must be a non-zero int (0 is the batch axis; negative axes count from the end), got 0"),
                     (1.5, "Concatenate: axis must be an int, got 1.5"), (True, "Concatenate: axis must be an int, got True"),
                     ("last", "Concatenate: axis must be an int, got 'last'")):
        with pytest.raises(ValueError) as e: Concatenate(axis=bad)
        assert msg in str(e.value), str(e.value)
    layer([randn(2, 3), randn(2, 4)])
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output, \(2, 7\), got \(2, 6\)"): layer.backward(xp.ones((2, 6)))


# ---------------------------------------------------------------- batch_dot, l2_normalize

DOT_CASES = [((5, 4), (5, 4), (1, 1), "bi,bi->b"), ((2, 3, 4), (2, 5, 4), (2, 2), "btn,bsn->bts"),
             ((2, 3, 5), (2, 5, 4), (2, 1), "bts,bsd->btd"), ((3, 4), (3, 6, 4), (1, 2), "bn,btn->bt"),
             ((3, 6, 4), (3, 4), (2, 1), "btn,bn->bt"), ((2, 3, 4), (2, 3, 2), (1, 1), "btn,btd->bnd"),
             ((2, 4, 3, 2), (2, 3, 5), (2, 1), "bkni,bnj->bkij"), ((1, 2, 3), (1, 2, 3, 2), (2, 2), "bin,bjnk->bijk")]


@pytest.mark.parametrize("sA,sB,axes,spec", DOT_CASES)
def test_batch_dot_matches_einsum_and_gradcheck(sA, sB, axes, spec):
    seed(sum(sA) + sum(sB))
    A, B = _randn64(sA, sB)
    Y, cache = batch_dot(A, B, axes)
    ref = np.einsum(spec, to_numpy(A), to_numpy(B))
    assert Y.shape == (ref.shape if ref.ndim > 1 else ref.shape + (1,))  # Keras keeps (m, 1) when nothing remains
    np.testing.assert_allclose(to_numpy(Y).reshape(ref.shape), ref, rtol=1e-12, atol=1e-12)
    assert isinstance(cache, BatchDotCache) and cache.axes == axes
    R = randn(*Y.shape, dtype=np.float64)
    dA, dB = batch_dot_backward(R, cache)
    d = grad_check(lambda: (batch_dot(A, B, axes)[0] * R).sum(), {"A": A, "B": B}, {"A": dA, "B": dB})
    assert max(d.values()) < TOL, d


def test_batch_dot_bad_inputs():
    A, B = randn(2, 3, 4), randn(2, 5, 4)
    for axes in ((2, 1), (1, 1), (0, 0), (3, 2), (-1, 2), (2, 0)):
        with pytest.raises(ValueError, match=r"batch_dot needs one batch size and axes \(a, b\) of one length, each in \[1, ndim\)"):
            batch_dot(A, B, axes)
    with pytest.raises(ValueError, match=r"got shapes \(2, 3, 4\) and \(3, 5, 4\) with axes \(2, 2\)"): batch_dot(A, randn(3, 5, 4), (2, 2))


@pytest.mark.parametrize("shape,axis", [((5, 4), 1), ((5, 4), 0), ((2, 3, 4), 2), ((2, 3, 4), 1), ((3, 1), 1), ((2, 2, 2, 3), 3)])
def test_l2_normalize(shape, axis):
    seed(len(shape) + axis)
    x = randn(*shape, dtype=np.float64) * 3
    U, cache = l2_normalize(x, axis)
    np.testing.assert_allclose(to_numpy((U * U).sum(axis=axis)), 1.0, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(U), to_numpy(x) / np.linalg.norm(to_numpy(x), axis=axis, keepdims=True), rtol=1e-12)
    R = randn(*shape, dtype=np.float64)
    dx = l2_normalize_backward(R, cache)
    d = grad_check(lambda: (l2_normalize(x, axis)[0] * R).sum(), x, dx)
    assert d["x"] < TOL, d


def test_l2_normalize_below_epsilon():
    x = xp.asarray([[0.0, 0.0, 0.0], [3e-9, 4e-9, 0.0], [3.0, 4.0, 0.0]])
    U, cache = l2_normalize(x, 1)
    np.testing.assert_allclose(to_numpy(U), [[0, 0, 0], [0.03, 0.04, 0], [0.6, 0.8, 0]], rtol=1e-12)  # x / max(r, 1e-7)
    dx = to_numpy(l2_normalize_backward(xp.ones((3, 3)), cache))
    assert np.isfinite(dx).all()
    np.testing.assert_allclose(dx[:2], np.full((2, 3), 1e7), rtol=1e-12)  # below ε the divisor is the constant ε
    u = np.array([0.6, 0.8, 0.0])
    np.testing.assert_allclose(dx[2], (np.ones(3) - u * u.sum()) / 5, rtol=1e-12)


# ---------------------------------------------------------------- Dot

@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("sA,sB,axes,spec", DOT_CASES)
def test_dot_gradcheck(sA, sB, axes, spec, normalize):
    seed(sum(sA) * 3 + sum(sB))
    d = check_layer(Dot(axes, normalize=normalize), _randn64(sA, sB))
    assert max(d.values()) < TOL, d
    assert set(d) == {"x0", "x1", "all"}


def test_dot_keras_examples():
    x = xp.arange(10.0).reshape(1, 5, 2)
    y = xp.arange(10.0, 20.0).reshape(1, 2, 5)
    np.testing.assert_array_equal(to_numpy(Dot(axes=(1, 2))([x, y])), [[[260, 360], [320, 445]]])  # keras.layers.Dot's docstring
    a, b = xp.arange(10.0).reshape(5, 2), xp.arange(10.0, 20.0).reshape(5, 2)
    y = Dot(axes=1)([a, b])
    assert y.shape == (5, 1)
    np.testing.assert_array_equal(to_numpy(y)[:, 0], (to_numpy(a) * to_numpy(b)).sum(axis=1))


def test_dot_negative_and_int_axes():
    seed(6)
    A, B = randn(2, 3, 4), randn(2, 5, 4)
    ref = to_numpy(Dot((2, 2))([A, B]))
    for axes in (-1, (-1, -1), (2, -1), [-1, 2]):
        np.testing.assert_allclose(to_numpy(Dot(axes)([A, B])), ref, rtol=1e-6)
    assert Dot(2).axes == (2, 2) and Dot([1, -1]).axes == (1, -1)


def test_dot_cosine_similarity():
    seed(7)
    A, B = randn(6, 5, dtype=np.float64), randn(6, 5, dtype=np.float64)
    cos = to_numpy(Dot(1, normalize=True)([A, B]))[:, 0]
    a, b = to_numpy(A), to_numpy(B)
    np.testing.assert_allclose(cos, (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(Dot(1, normalize=True)([A, -2 * A])), -np.ones((6, 1)), rtol=1e-12)
    Z = Dot(1, normalize=True)([xp.zeros((2, 5)), randn(2, 5)])  # a zero vector: similarity 0, not NaN
    np.testing.assert_array_equal(to_numpy(Z), np.zeros((2, 1)))


def test_dot_attention_shapes_and_lengths():
    seed(8)
    scores, context = Dot(axes=(2, 2)), Dot(axes=(2, 1))
    for T, S in ((3, 7), (5, 4), (1, 1)):
        Q, K, V = randn(2, T, 8), randn(2, S, 8), randn(2, S, 6)
        E = scores([Q, K])
        assert E.shape == (2, T, S) and context([E, V]).shape == (2, T, 6)
        assert isinstance(scores.cache, DotCache) and scores.cache.norm_A is None
    last = Dot(-1)
    last([Q, K])
    with pytest.raises(ValueError, match=r"was built for inputs of shape \(batch, None, None\), got an input of shape \(2, 8\) as input 0"):
        last([randn(2, 8), randn(2, 8)])  # the number of axes is fixed by the first call


def test_dot_shared_calls_accumulate_nothing_but_return_each_dx():
    seed(9)
    dot = Dot(1)
    A1, B1, A2, B2 = _randn64((3, 4), (3, 4), (5, 4), (5, 4))
    dot([A1, B1]); c1 = dot.cache
    dot([A2, B2]); c2 = dot.cache
    dA2, dB2 = dot.backward_for(xp.ones((5, 1)), c2)
    dA1, dB1 = dot.backward_for(xp.ones((3, 1)), c1, accumulate=True)
    np.testing.assert_array_equal(to_numpy(dA1), to_numpy(B1))
    np.testing.assert_array_equal(to_numpy(dB2), to_numpy(A2))
    assert dot.grads == {} and dot.params == {}


def test_dot_bad_args_and_inputs():
    for bad, msg in ((0, "Dot: axes must be a non-zero int (0 is the batch axis; negative axes count from the end), got 0"),
                     ((1, 0), "Dot: axes must be a non-zero int"), ((1, 2, 3), "Dot: axes must be an int or a pair of ints, got (1, 2, 3)"),
                     ((1,), "Dot: axes must be an int or a pair of ints, got (1,)"), (1.0, "Dot: axes must be an int, got 1.0"),
                     ((1, "2"), "Dot: axes must be an int, got '2'"), (None, "Dot: axes must be an int, got None")):
        with pytest.raises(ValueError) as e: Dot(bad)
        assert msg in str(e.value), (bad, str(e.value))
    dot = Dot((2, 1), name="ctx")
    with pytest.raises(ValueError) as e: dot([randn(2, 3, 5), randn(2, 4, 6)])
    assert str(e.value) == ("layer 'ctx': axis 2 of the first input and axis 1 of the second must have one length (axes=(2, 1)), "
                            "got inputs of shapes (batch, 3, 5), (batch, 4, 6)")
    with pytest.raises(ValueError, match=r"layer 'ctx': axis 2 is not an axis of an example of an input of shape \(batch, 5\)"):
        dot([randn(2, 5), randn(2, 5)])
    with pytest.raises(ValueError, match="layer 'ctx' takes 2 inputs \\(a list of arrays\\), got a list of 3"): dot([randn(2, 3, 5)] * 3)
    with pytest.raises(ValueError, match="got a single ndarray"): dot(randn(2, 3, 5))
    with pytest.raises(RuntimeError, match="layer 'ctx': backward called before forward"): dot.backward(xp.ones((2, 3, 6)))
    dot([randn(2, 3, 5), randn(2, 5, 6)])
    with pytest.raises(ValueError, match=r"dy must have the shape of the layer's output, \(2, 3, 6\), got \(2, 6, 3\)"):
        dot.backward(xp.ones((2, 6, 3)))


# ---------------------------------------------------------------- names, configuration, help

def test_keras_default_names_and_registry():
    assert [c().name for c in (Add, Multiply, Concatenate)] + [Dot(1).name] == ["add", "multiply", "concatenate", "dot"]
    for cls in (Add, Multiply, Concatenate, Dot): assert LAYERS[cls.__name__] is cls


@pytest.mark.parametrize("layer,shapes", [(Add(name="res"), [(2, 3, 4)] * 2), (Multiply(), [(2, 3, 4)] * 3),
                                          (Concatenate(axis=1), [(2, 3, 4), (2, 1, 4)]),
                                          (Dot((2, 1), normalize=True, name="ctx"), [(2, 3, 4), (2, 4, 5)])],
                         ids=lambda v: type(v).__name__ if isinstance(v, Layer) else "")
def test_config_round_trip_through_json(layer, shapes):
    config = json.loads(json.dumps(layer.get_config()))
    again = type(layer)(**config)
    assert json.loads(json.dumps(again.get_config())) == config and again.name == layer.name
    seed(10)
    xs = _randn64(*shapes)
    np.testing.assert_array_equal(to_numpy(again(xs)), to_numpy(layer(xs)))


@pytest.mark.parametrize("cls", [Add, Multiply, Concatenate, Dot])
def test_help_shows_own_docstrings(cls):
    init = cls.__init__.__doc__
    assert cls.__init__ is not Layer.__init__ and init and init != Layer.__init__.__doc__ and not init.startswith("Initialize self")
    assert all(v for k, v in docments(cls.__init__).items() if k not in ("self", "return")), docments(cls.__init__)
    own = [m for m in ("build", "call", "backward", "check_input") if getattr(cls, m) is not getattr(Layer, m)]
    assert own and all(getattr(cls, m).__doc__ and getattr(cls, m).__doc__ != getattr(Layer, m).__doc__ for m in own), own
