"Gradient checks of every image layer over many shapes, parameter counts, the max-pool tie rule, named caches, any height and width, and bad inputs for dlnotes.vision.cnn."
import numpy as np
import pytest
from fastcore.docments import docments

from dlnotes.backend import seed, randn, to_numpy, to_device, xp
from dlnotes.gradcheck import check_layer, as_float64
from dlnotes.nn.layers import Dense, Layer
from dlnotes.nn.models import Sequential
from dlnotes.vision.convolution import ConvCache, PoolCache, conv_forward, conv_output_size, pool_forward
from dlnotes.vision.cnn import (Conv2D, Conv2DCache, MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalMaxCache,
                                GlobalAveragePooling2D, ZeroPadding2D, Flatten, ShapeCache)

TOL = 1e-7


def _check(layer, x_shape, training=False):
    "Build `layer` for a float64 batch of `x_shape`, cast its parameters to float64, gradient-check it."
    x = randn(*x_shape, dtype=np.float64)
    layer.build(x_shape[1:])
    d = check_layer(as_float64(layer), x, training=training)
    assert d["all"] < TOL, d
    assert set(layer.grads) == set(layer.params)
    return d


# ---------------------------------------------------------------- Conv2D

@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("n_C_prev", [1, 2, 3])
@pytest.mark.parametrize("filters", [1, 4])
def test_conv2d_gradcheck(strides, padding, n_C_prev, filters):
    seed(10 * strides + n_C_prev + filters)
    layer = Conv2D(filters, 3, strides=strides, padding=padding)
    _check(layer, (2, 7, 5, n_C_prev))
    assert layer.params["W"].shape == (3, 3, n_C_prev, filters)
    assert layer.params["b"].shape == (filters,)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "leaky_relu", "linear"])
def test_conv2d_gradcheck_activations(act):
    seed(5)
    _check(Conv2D(3, 3, strides=2, padding="same", activation=act, bias_initializer="random_normal"), (3, 6, 7, 2))


@pytest.mark.parametrize("f,s,shape", [(1, 1, (2, 4, 3, 2)), (2, 1, (1, 5, 6, 3)), (5, 3, (2, 9, 7, 1)),
                                       (5, 1, (1, 5, 5, 2)), ((3, 3), (2, 2), (2, 7, 5, 2))])
def test_conv2d_gradcheck_kernels(f, s, shape):
    seed(6)
    _check(Conv2D(2, f, strides=s), shape)


def test_conv2d_matches_conv_forward_and_shapes():
    seed(7)
    x = randn(3, 9, 6, 2)
    for padding, p in (("valid", 0), ("same", 2)):
        for s in (1, 2, 3):
            layer = Conv2D(4, 5, strides=s, padding=padding)
            A = layer(x)
            Z, _ = conv_forward(x, layer.params["W"], layer.params["b"].reshape(1, 1, 1, -1), {"stride": s, "pad": p})
            np.testing.assert_allclose(to_numpy(A), to_numpy(Z), rtol=1e-5, atol=1e-6)
            assert A.shape == (3, conv_output_size(9, 5, p, s), conv_output_size(6, 5, p, s), 4)
            assert layer.output_shape == A.shape[1:]


def test_conv2d_same_keeps_size_at_stride_1_and_gives_ceil_at_stride_2():
    seed(8)
    for n_H, n_W in ((8, 8), (7, 5), (1, 2)):
        for f in (1, 3, 5):
            x = randn(1, n_H, n_W, 2)
            assert Conv2D(3, f, padding="same")(x).shape == (1, n_H, n_W, 3)
            assert Conv2D(3, f, strides=2, padding="same")(x).shape == (1, -(-n_H // 2), -(-n_W // 2), 3)


def test_conv2d_accepts_other_height_and_width_but_not_other_channels():
    seed(9)
    layer = Conv2D(2, 3, name="conv_hw")
    assert layer(randn(1, 6, 6, 3)).shape == (1, 4, 4, 2)
    W = layer.params["W"]
    assert layer(randn(2, 9, 4, 3)).shape == (2, 7, 2, 2) and layer.output_shape == (7, 2, 2)
    assert layer.input_shape == (None, None, 3) and layer.params["W"] is W  # built once, for 3 channels
    with pytest.raises(ValueError) as e: layer(randn(2, 9, 4, 5))
    assert str(e.value) == ("layer 'conv_hw' was built for inputs of shape (batch, None, None, 3), "
                            "got an input of shape (2, 9, 4, 5)")


@pytest.mark.parametrize("layer", [MaxPooling2D(2), AveragePooling2D(2), GlobalMaxPooling2D(), GlobalAveragePooling2D(),
                                   ZeroPadding2D(1)], ids=lambda l: type(l).__name__)
def test_image_layers_accept_any_height_and_width(layer):
    seed(10)
    for shape in ((2, 6, 6, 3), (1, 9, 4, 3), (3, 2, 11, 3)):
        x = randn(*shape, dtype=np.float64)
        y = layer(x)
        assert y.shape[0] == shape[0] and y.shape[-1] == 3
        assert layer.backward(xp.ones_like(y)).shape == shape
    assert layer.input_shape == (None, None, 3)
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, None, None, 3\), got an input of shape \(1, 6, 6, 4\)"):
        layer(randn(1, 6, 6, 4))


def test_caches_are_named():
    seed(12)
    x = randn(2, 6, 5, 3)
    conv = Conv2D(2, 3, activation="relu")
    conv(x)
    assert isinstance(conv.cache, Conv2DCache) and isinstance(conv.cache.conv_cache, ConvCache)
    assert conv.cache.conv_cache.A_prev is x and conv.cache.activation_cache is not None
    pool = AveragePooling2D(2); pool(x)
    assert isinstance(pool.cache, PoolCache) and pool.cache.mode == "average"
    gmax = GlobalMaxPooling2D(); gmax(x)
    assert isinstance(gmax.cache, GlobalMaxCache) and gmax.cache.shape == (2, 6, 5, 3) and gmax.cache.argmax.shape == (2, 3)
    for layer in (GlobalAveragePooling2D(), ZeroPadding2D(1), Flatten()):
        layer(x)
        assert layer.cache == ShapeCache((2, 6, 5, 3))


def test_conv2d_param_counts():
    for f, n_C_prev, n_C in ((3, 3, 10), (5, 10, 20), (5, 20, 40), (1, 1, 1), (7, 2, 4)):
        layer = Conv2D(n_C, f)
        layer.build((39, 39, n_C_prev))
        assert layer.count_params() == f * f * n_C_prev * n_C + n_C
        assert sum(int(v.size) for v in layer.params.values()) == f * f * n_C_prev * n_C + n_C


def test_conv2d_initializer_uses_conv_fans():
    seed(0)
    layer = Conv2D(64, 3, kernel_initializer="he_normal")
    layer.build((8, 8, 32))
    std = float(to_numpy(layer.params["W"]).std())
    assert abs(std / np.sqrt(2 / (3 * 3 * 32)) - 1) < 0.05  # He: Var(W) = 2 / (f * f * n_C_prev)


def test_notes_deep_cnn_shapes():
    seed(0)
    model = Sequential([Conv2D(10, 3, activation="relu"), Conv2D(20, 5, strides=2, activation="relu"),
                        Conv2D(40, 5, strides=2, activation="relu"), Flatten(), Dense(1, activation="sigmoid")])
    y = model(randn(2, 39, 39, 3))
    assert [l.output_shape for l in model.layers] == [(37, 37, 10), (17, 17, 20), (7, 7, 40), (1960,), (1,)]
    assert y.shape == (2, 1)
    assert [l.count_params() for l in model.layers] == [280, 5020, 20040, 0, 1961]


def test_small_cnn_end_to_end_gradcheck():
    seed(11)
    model = Sequential([ZeroPadding2D(1), Conv2D(2, 3, strides=2, activation="tanh"), MaxPooling2D(2, strides=1),
                        Conv2D(3, 1), AveragePooling2D(2), Flatten(), Dense(2)])
    x = randn(2, 7, 7, 2, dtype=np.float64)
    model.forward(x)
    for l in model.layers: as_float64(l)
    d = check_layer(model, x)
    assert d["all"] < TOL, d


# ---------------------------------------------------------------- pooling

@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
@pytest.mark.parametrize("f,s", [(1, None), (2, None), (3, None), (2, 1), (3, 2), (2, 3), ((2, 2), (1, 1))])
@pytest.mark.parametrize("n_C", [1, 3])
def test_pool_gradcheck(cls, f, s, n_C):
    seed(20 + n_C)
    layer = cls(f, strides=s)
    _check(layer, (2, 7, 5, n_C))
    assert layer.params == {} and layer.grads == {}


@pytest.mark.parametrize("cls,mode", [(MaxPooling2D, "max"), (AveragePooling2D, "average")])
def test_pool_matches_pool_forward(cls, mode):
    seed(21)
    x = randn(2, 9, 7, 3)
    for f, s in ((2, 2), (3, 1), (3, 2)):
        A = cls(f, strides=s)(x)
        A_ref, _ = pool_forward(x, {"f": f, "stride": s}, mode=mode)
        np.testing.assert_allclose(to_numpy(A), to_numpy(A_ref))
        assert A.shape == (2, conv_output_size(9, f, 0, s), conv_output_size(7, f, 0, s), 3)


def test_pool_strides_default_to_pool_size():
    assert MaxPooling2D(3).strides == 3 and AveragePooling2D(2).strides == 2
    assert MaxPooling2D(3, strides=1).strides == 1


def test_pool_is_per_channel():
    seed(22)
    x = randn(2, 6, 6, 3)
    A = to_numpy(MaxPooling2D(2)(x))
    for c in range(3):
        np.testing.assert_allclose(A[..., c], to_numpy(MaxPooling2D(2)(x[..., c:c + 1]))[..., 0])


@pytest.mark.parametrize("f,s", [(2, 2), (3, 3), (2, 1), (3, 2)])
def test_maxpool_ties_one_maximum_per_window(f, s):
    layer = MaxPooling2D(f, strides=s)
    x = xp.ones((2, 6, 7, 3))
    A = layer(x)
    dA = to_device(np.arange(1.0, A.size + 1).reshape(A.shape))
    dA_prev = to_numpy(layer.backward(dA))
    np.testing.assert_allclose(dA_prev.sum(), to_numpy(dA).sum())
    if s == f:  # non-overlapping windows: exactly one nonzero entry per window, holding that window's gradient
        m, n_H, n_W, n_C = A.shape
        win = dA_prev[:, :n_H * f, :n_W * f, :].reshape(m, n_H, f, n_W, f, n_C).transpose(0, 1, 3, 5, 2, 4)
        win = win.reshape(m, n_H, n_W, n_C, f * f)
        np.testing.assert_array_equal((win != 0).sum(axis=-1), np.ones(A.shape, dtype=int))
        np.testing.assert_allclose(win.sum(axis=-1), to_numpy(dA))


def test_global_pools():
    seed(23)
    x = randn(3, 7, 5, 4)
    for cls, ref in ((GlobalMaxPooling2D, np.max), (GlobalAveragePooling2D, np.mean)):
        layer = cls()
        y = layer(x)
        assert y.shape == (3, 4) and layer.params == {}
        np.testing.assert_allclose(to_numpy(y), ref(to_numpy(x), axis=(1, 2)), rtol=1e-5, atol=1e-6)
        assert layer(randn(2, 3, 9, 4)).shape == (2, 4)  # any height and width


@pytest.mark.parametrize("cls", [GlobalMaxPooling2D, GlobalAveragePooling2D])
@pytest.mark.parametrize("shape", [(2, 7, 5, 3), (1, 1, 1, 1), (3, 4, 4, 2), (2, 1, 6, 1)])
def test_global_pool_gradcheck(cls, shape):
    seed(24)
    _check(cls(), shape)


def test_global_maxpool_ties():
    layer = GlobalMaxPooling2D()
    layer(xp.ones((2, 3, 4, 3)))
    dA_prev = to_numpy(layer.backward(to_device(np.arange(1.0, 7.0).reshape(2, 3))))
    np.testing.assert_array_equal((dA_prev != 0).sum(axis=(1, 2)), np.ones((2, 3), dtype=int))
    np.testing.assert_allclose(dA_prev.sum(axis=(1, 2)), np.arange(1.0, 7.0).reshape(2, 3))


# ---------------------------------------------------------------- ZeroPadding2D, Flatten

@pytest.mark.parametrize("p", [0, 1, 2, 3])
def test_zero_padding(p):
    seed(30 + p)
    layer = ZeroPadding2D(p)
    x = randn(2, 7, 5, 3)
    y = to_numpy(layer(x))
    assert y.shape == (2, 7 + 2 * p, 5 + 2 * p, 3)
    np.testing.assert_allclose(y[:, p:p + 7, p:p + 5, :], to_numpy(x))
    assert np.abs(y).sum() == pytest.approx(np.abs(to_numpy(x)).sum(), rel=1e-6)
    _check(ZeroPadding2D(p), (2, 7, 5, 3))


@pytest.mark.parametrize("shape", [(2, 7, 5, 3), (1, 4), (3, 2, 3), (2, 1, 1, 1)])
def test_flatten(shape):
    seed(40)
    layer = Flatten()
    x = randn(*shape)
    y = layer(x)
    assert y.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(to_numpy(y), to_numpy(x).reshape(shape[0], -1))
    _check(Flatten(), shape)
    assert layer.params == {}


# ---------------------------------------------------------------- bad input

def test_conv2d_bad_constructor_args():
    for kw, msg in ((dict(strides=0), "strides must be a positive int, got 0"),
                    (dict(strides=1.5), "strides must be a positive int, got 1.5"),
                    (dict(strides=-1), "strides must be a positive int, got -1"),
                    (dict(strides=True), "strides must be a positive int, got True"),
                    (dict(strides=(1, 2)), "strides must be an int f or a square pair (f, f), got (1, 2)"),
                    (dict(padding="full"), "Conv2D: padding must be one of 'valid', 'same', got 'full'"),
                    (dict(padding="same", kernel_size=4), "Conv2D: kernel_size must be odd with padding='same' (p = (f-1)/2 on each side")):
        with pytest.raises(ValueError) as e: Conv2D(**{"filters": 4, "kernel_size": 3, **kw})
        assert msg in str(e.value), (kw, str(e.value))
    for k, msg in (((3, 5), "kernel_size must be an int f or a square pair (f, f), got (3, 5)"),
                   ((3, 3, 3), "kernel_size must be an int f or a square pair"), (0, "kernel_size must be a positive int, got 0"),
                   (2.5, "kernel_size must be a positive int, got 2.5")):
        with pytest.raises(ValueError) as e: Conv2D(4, k)
        assert msg in str(e.value)
    with pytest.raises(ValueError, match="filters must be a positive int"): Conv2D(0, 3)
    with pytest.raises(ValueError, match="unknown activation|activation"): Conv2D(4, 3, activation="nope")
    with pytest.raises(ValueError, match="unknown initializer"): Conv2D(4, 3, kernel_initializer="nope")


def test_conv2d_bad_inputs():
    seed(50)
    layer = Conv2D(4, 3, name="convx")
    layer(randn(2, 7, 5, 3))
    with pytest.raises(ValueError) as e: layer(randn(2, 7, 5, 2))
    assert "layer 'convx' was built for inputs of shape (batch, None, None, 3), got an input of shape (2, 7, 5, 2)" in str(e.value)
    with pytest.raises(ValueError) as e: layer(randn(7, 5, 3))
    assert "layer 'convx' expects a 4-D batch (m, n_H, n_W, n_C), got a 3-D batch of examples of shape (5, 3)" in str(e.value)
    with pytest.raises(ValueError) as e: layer(randn(2, 7, 5, 3, 1))
    assert "got a 5-D batch of examples of shape (7, 5, 3, 1)" in str(e.value)
    with pytest.raises(ValueError) as e: layer(randn(2, 7, 2, 3))
    assert "layer 'convx': the 3x3 kernel is larger than the padded input 7x2 (example shape (7, 2, 3), padding 0)" in str(e.value)
    with pytest.raises(ValueError, match="takes one input array, got a list of 2"): layer([randn(2, 7, 5, 3), randn(2, 7, 5, 3)])
    with pytest.raises(TypeError, match="expects an array, got str"): layer("x")


def test_conv2d_kernel_larger_than_input_before_build():
    layer = Conv2D(2, 5, name="conv_big")
    with pytest.raises(ValueError, match=r"the 5x5 kernel is larger than the padded input 4x4"): layer(randn(1, 4, 4, 1))
    assert not layer.built
    with pytest.raises(ValueError, match=r"the 5x5 kernel is larger than the padded input 5x3 \(example shape \(5, 3, 1\), padding 0\)"):
        layer(randn(1, 5, 3, 1))
    same = Conv2D(2, 5, padding="same", name="conv_same")  # n + 2p = n + f - 1 >= f: "same" always fits
    assert same(randn(1, 1, 1, 1)).shape == (1, 1, 1, 2)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_pool_bad_args_and_inputs(cls):
    for kw, msg in ((dict(pool_size=0), "pool_size must be a positive int, got 0"),
                    (dict(pool_size=2.0), "pool_size must be a positive int, got 2.0"),
                    (dict(pool_size=(2, 3)), "pool_size must be an int f or a square pair (f, f), got (2, 3)"),
                    (dict(strides=0), "strides must be a positive int, got 0"),
                    (dict(strides=0.5), "strides must be a positive int, got 0.5")):
        with pytest.raises(ValueError) as e: cls(**kw)
        assert msg in str(e.value) and cls.__name__ in str(e.value)
    layer = cls(3, name="poolx")
    with pytest.raises(ValueError) as e: layer(randn(2, 2, 5, 1))
    assert "layer 'poolx': the 3x3 pool window is larger than the input 2x5 (example shape (2, 5, 1))" in str(e.value)
    layer(randn(2, 6, 6, 2))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, None, None, 2\), got an input of shape \(2, 6, 6, 3\)"):
        layer(randn(2, 6, 6, 3))
    with pytest.raises(ValueError, match=r"expects a 4-D batch \(m, n_H, n_W, n_C\), got a 2-D batch of examples of shape \(6,\)"):
        layer(randn(6, 6))


@pytest.mark.parametrize("cls", [GlobalMaxPooling2D, GlobalAveragePooling2D, ZeroPadding2D])
def test_parameter_free_image_layers_bad_inputs(cls):
    layer = cls(name="lay")
    with pytest.raises(ValueError, match=r"layer 'lay' expects a 4-D batch \(m, n_H, n_W, n_C\), got a 3-D batch of examples of shape \(3, 4\)"):
        layer(randn(2, 3, 4))
    layer(randn(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"layer 'lay' was built for inputs of shape \(batch, None, None, 5\), got an input of shape \(2, 3, 4, 1\)"):
        layer(randn(2, 3, 4, 1))


def test_zero_padding_bad_args():
    for p in (-1, 1.5, True, (1, 2)):
        with pytest.raises(ValueError, match="ZeroPadding2D: padding must be a non-negative int"): ZeroPadding2D(p)


def test_flatten_bad_inputs():
    layer = Flatten(name="flat")
    layer(randn(2, 3, 4))
    with pytest.raises(ValueError, match=r"layer 'flat' was built for inputs of shape \(batch, 3, 4\), got an input of shape \(2, 4, 3\)"):
        layer(randn(2, 4, 3))


def test_backward_before_forward():
    for layer in (Conv2D(2, 3), MaxPooling2D(), AveragePooling2D(), GlobalMaxPooling2D(), GlobalAveragePooling2D(),
                  ZeroPadding2D(), Flatten()):
        with pytest.raises(RuntimeError, match="backward called before forward"): layer.backward(randn(1, 2, 2, 2))


@pytest.mark.parametrize("cls", [Conv2D, Flatten, MaxPooling2D, AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D,
                                 ZeroPadding2D], ids=lambda c: c.__name__)
def test_help_shows_own_docstrings(cls):
    doc = cls.__init__.__doc__
    assert cls.__init__ is not Layer.__init__ and doc and doc != Layer.__init__.__doc__ and not doc.startswith("Initialize self")
    assert [k for k, v in docments(cls.__init__).items() if not v and k not in ("self", "return")] == []
    overridden = [m for m in ("build", "call", "backward", "check_input") if getattr(cls, m) is not getattr(Layer, m)]
    assert "call" in overridden and "backward" in overridden
    for m in overridden: assert getattr(cls, m).__doc__ not in (None, "", getattr(Layer, m).__doc__), (cls, m)


def test_keras_default_names_and_configs():
    layers = [Conv2D(2, 3), Flatten(), MaxPooling2D(), AveragePooling2D(), GlobalMaxPooling2D(), GlobalAveragePooling2D(), ZeroPadding2D()]
    assert [l.name for l in layers] == ["conv2d", "flatten", "max_pooling2d", "average_pooling2d", "global_max_pooling2d",
                                        "global_average_pooling2d", "zero_padding2d"]
    for layer in layers:
        again = type(layer)(**layer.get_config())
        assert again.get_config() == layer.get_config() and again.get_config()["name"] == layer.name


def test_conv2d_penalties_are_gradient_checked():
    "kernel_regularizer and bias_regularizer: their values join the loss and their gradients the parameters' (float64)."
    from dlnotes.gradcheck import grad_check
    from dlnotes.nn.regularizers import L1L2, L2
    seed(31)
    layer = Conv2D(3, 3, padding="same", activation="tanh", kernel_regularizer=L1L2(0.01, 0.03), bias_regularizer=L2(0.2))
    layer.build((5, 5, 2)); as_float64(layer)
    layer.params["b"] = randn(3, dtype=np.float64)
    X, R = randn(2, 5, 5, 2, dtype=np.float64), randn(2, 5, 5, 3, dtype=np.float64)
    layer(X); dX = layer.backward(R)
    assert float(layer.regularization_loss(add_gradients=True)) > 0
    J = lambda: float((layer(X) * R).sum() + layer.regularization_loss())
    d = grad_check(J, {"x": X, **layer.params}, {"x": dX, **layer.grads})
    assert max(d.values()) < 1e-7, d
    assert sorted(Conv2D(2, 3, kernel_regularizer="l2").regularizers) == ["W"]


def test_a_cnn_with_flatten_reloads_at_the_size_it_was_built_on(tmp_path):
    # Conv2D accepts any height and width, Flatten does not: the saved model must be rebuilt on the size it was built on
    from dlnotes.nn.models import load_model
    from dlnotes.nn.graphs import Input
    seed(3)
    for first in ([], [Input((24, 24, 1))]):
        model = Sequential(first + [Conv2D(4, 3, activation="relu"), MaxPooling2D(2), Flatten(), Dense(3)])
        x = randn(2, 24, 24, 1)
        y = to_numpy(model.predict(x))
        model.save(tmp_path / "cnn.npz")
        again = load_model(tmp_path / "cnn.npz")
        np.testing.assert_allclose(to_numpy(again.predict(x)), y, rtol=1e-6)
