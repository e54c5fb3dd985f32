"Gradient checks and bad inputs for dlnotes.nn.batchnorm: the pure BN functions, the BatchNormalization layer, normalize_inputs."
import numpy as np
import pytest
from fastcore.docments import docments

from dlnotes.backend import seed, randn, to_numpy, xp
from dlnotes.gradcheck import check_layer, grad_check, as_float64
from dlnotes.nn.layers import Dense, Activation, Layer
from dlnotes.nn.models import Sequential
from dlnotes.nn.batchnorm import (normalize_inputs, batchnorm_forward, batchnorm_backward, BatchNormalization,
                                  BatchNormCache, BatchNormInferenceCache)

SHAPES_2D = [(m, n) for m in (2, 5, 9) for n in (1, 3, 8)]
SHAPES_ND = [(2, 3, 3, 4), (5, 2, 3), (3, 2, 2, 2, 1)]


def _scale(shape):
    """Input scale for a check. With only 2 values per feature, x_hat = ±d/sqrt(d² + ε) (d half their difference) is
    flat unless d² is comparable to ε, so dx would be all rounding noise: use small inputs there."""
    return 0.05 if int(np.prod(shape[:-1])) == 2 else 2.0


def _layer_with_state(shape, seed_=0, momentum=0.6):
    "A built BN layer, float64 random gamma/beta, moving averages moved away from (0, 1); plus a float64 input."
    seed(seed_)
    layer = BatchNormalization(momentum=momentum)
    for _ in range(4): layer(randn(*shape) * 3 - 1, training=True)
    C = shape[-1]
    as_float64(layer)
    layer.params["gamma"] += randn(C, dtype=np.float64)
    layer.params["beta"] += randn(C, dtype=np.float64)
    return layer, randn(*shape, dtype=np.float64) * _scale(shape) + 0.5


@pytest.mark.parametrize("shape", SHAPES_2D + SHAPES_ND)
@pytest.mark.parametrize("training", [True, False])
def test_layer_gradients(shape, training):
    layer, x = _layer_with_state(shape, seed_=sum(shape))
    d = check_layer(layer, x, training=training)
    assert max(d.values()) < 1e-7, d
    assert set(d) == {"x", "gamma", "beta", "all"}


@pytest.mark.parametrize("shape", [(4, 3), (9, 8), (2, 1), (3, 4, 4, 2), (2, 5, 3)])
def test_pure_functions_gradients(shape):
    seed(len(shape) * 10 + shape[-1])
    C = shape[-1]
    x = randn(*shape, dtype=np.float64) * _scale(shape) - 2
    gamma, beta = randn(C, dtype=np.float64) + 0.5, randn(C, dtype=np.float64)
    R = randn(*shape, dtype=np.float64)
    _, cache = batchnorm_forward(x, gamma, beta, epsilon=1e-3)
    dx, dgamma, dbeta = batchnorm_backward(R, cache)
    J = lambda: (batchnorm_forward(x, gamma, beta, epsilon=1e-3)[0] * R).sum()
    d = grad_check(J, {"x": x, "gamma": gamma, "beta": beta}, {"x": dx, "gamma": dgamma, "beta": dbeta})
    assert max(d.values()) < 1e-7, d
    axes = tuple(range(len(shape) - 1))
    np.testing.assert_allclose(to_numpy(dx.sum(axis=axes)), 0, atol=1e-10)  # shifting the batch changes nothing


def test_forward_statistics_and_compact_backward_formula():
    seed(1)
    x = randn(50, 6, dtype=np.float64) * 7 + 3
    gamma, beta = randn(6, dtype=np.float64), randn(6, dtype=np.float64)
    y, cache = batchnorm_forward(x, gamma, beta, epsilon=1e-5)
    mu, var, sigma = cache.mu, cache.var, cache.sigma
    np.testing.assert_allclose(to_numpy(mu), to_numpy(x.mean(0)), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(var), to_numpy(x.var(0)), rtol=1e-12)  # biased variance
    np.testing.assert_allclose(to_numpy(sigma), to_numpy(np.sqrt(x.var(0) + 1e-5)), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(y.mean(0)), to_numpy(beta), atol=1e-12)
    np.testing.assert_allclose(to_numpy(y.std(0)), to_numpy(abs(gamma)) * to_numpy(x.std(0) / np.sqrt(x.var(0) + 1e-5)), rtol=1e-10)
    # the step-by-step chain rule through mu and sigma^2 gives the same dx as the compact form
    dy = randn(50, 6, dtype=np.float64)
    dx, _, _ = batchnorm_backward(dy, tuple(cache))  # a plain tuple works too
    m = x.shape[0]
    dx_hat = dy * gamma
    dvar = (dx_hat * (x - mu)).sum(0) * -0.5 * (var + 1e-5) ** -1.5
    dmu = -(dx_hat / sigma).sum(0) + dvar * (-2 / m) * (x - mu).sum(0)
    dx_chain = dx_hat / sigma + dvar * 2 * (x - mu) / m + dmu / m
    np.testing.assert_allclose(to_numpy(dx), to_numpy(dx_chain), rtol=1e-9, atol=1e-12)


def test_moving_averages_keras_convention():
    seed(2)
    layer = BatchNormalization(momentum=0.8)
    xs = [randn(16, 3) * 2 + 5 for _ in range(3)]
    mm, mv = np.zeros(3), np.ones(3)
    for x in xs:
        layer(x, training=True)
        xn = to_numpy(x).astype(np.float64)
        mm, mv = 0.8 * mm + 0.2 * xn.mean(0), 0.8 * mv + 0.2 * xn.var(0)
    np.testing.assert_allclose(to_numpy(layer.moving_mean), mm, rtol=1e-5)
    np.testing.assert_allclose(to_numpy(layer.moving_variance), mv, rtol=1e-5)
    assert layer.moving_mean.dtype == np.float32 and "moving_mean" not in layer.params
    before = to_numpy(layer.moving_mean).copy()
    layer(xs[0], training=False)  # inference leaves the averages alone
    np.testing.assert_array_equal(to_numpy(layer.moving_mean), before)
    y = layer(xs[0], training=False)
    expected = (to_numpy(xs[0]) - to_numpy(layer.moving_mean)) / np.sqrt(to_numpy(layer.moving_variance) + 1e-3)
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-5, atol=1e-5)


def test_momentum_zero_uses_last_batch():
    seed(3)
    layer = BatchNormalization(momentum=0.0)
    x = randn(10, 2) + 4
    y_train = layer(x, training=True)
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), to_numpy(y_train), rtol=1e-5, atol=1e-5)


def test_inference_independent_of_batch():
    seed(4)
    layer = BatchNormalization(momentum=0.5)
    for _ in range(5): layer(randn(20, 3), training=True)
    x0 = randn(1, 3)
    a = layer(xp.concatenate([x0, randn(6, 3)]))[0]
    b = layer(xp.concatenate([x0, randn(2, 3) * 9]))[0]
    np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-6)
    ta = layer(xp.concatenate([x0, randn(6, 3)]), training=True)[0]
    tb = layer(xp.concatenate([x0, randn(2, 3) * 9]), training=True)[0]
    assert float(abs(ta - tb).max()) > 1e-2


def test_bias_before_bn_gets_no_gradient():
    seed(5)
    dense, bn = Dense(4), BatchNormalization()
    X = randn(12, 3, dtype=np.float64)
    bn(dense(X, training=True), training=True)
    dense.backward(bn.backward(randn(12, 4, dtype=np.float64)))
    assert float(abs(dense.grads["b"]).max()) < 1e-12


def test_in_a_sequential_model():
    seed(6)
    model = Sequential([Dense(8, use_bias=False), BatchNormalization(), Activation("relu"), Dense(3)])
    X, y = randn(40, 5), xp.asarray(np.arange(40) % 3)
    h = model.fit(X, y, epochs=3, batch_size=10, optimizer="adam", verbose=0)
    assert len(h.history["loss"]) == 3
    bn = model.layers[1]
    assert bn.name.startswith("batch_normalization") and set(bn.params) == {"gamma", "beta"}
    assert float(abs(bn.params["beta"]).max()) > 0  # the optimizer updated beta
    assert float(abs(bn.moving_mean).max()) > 0  # training moved the averages
    assert model.predict(X[:1]).shape == (1, 3)


@pytest.mark.parametrize("bad_shape", [(5, 4), (5, 2, 3)])
def test_feature_count_mismatch(bad_shape):
    layer = BatchNormalization(name="bn_a")
    layer(randn(5, 3))
    with pytest.raises(ValueError) as e:
        layer(randn(*bad_shape))
    msg = str(e.value)
    assert "bn_a" in msg and "(batch, 3)" in msg and str(bad_shape) in msg


def test_non_batch_input():
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        BatchNormalization()(randn(3))


@pytest.mark.parametrize("epsilon", [0, -1e-3, 0.0, float("nan"), "0.001", True])
def test_bad_epsilon(epsilon):
    with pytest.raises(ValueError, match=r"BatchNormalization: epsilon must be a positive number, got"):
        BatchNormalization(epsilon=epsilon)


@pytest.mark.parametrize("momentum", [1.0, 1, -0.1, 1.5, float("nan"), None, True])
def test_bad_momentum(momentum):
    with pytest.raises(ValueError, match=r"BatchNormalization: momentum must be a number in \[0, 1\), got"):
        BatchNormalization(momentum=momentum)


def test_pure_function_bad_inputs():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"gamma must have shape \(3,\) .*got \(2,\)"):
        batchnorm_forward(x, np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match=r"beta must have shape \(3,\)"):
        batchnorm_forward(x, np.ones(3), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="epsilon must be a positive number, got -1.0"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), epsilon=-1.0)
    with pytest.raises(ValueError, match=r"at least 2 dimensions, got shape \(3,\)"):
        batchnorm_forward(np.ones(3), np.ones(3), np.zeros(3))
    _, cache = batchnorm_forward(x, np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"dy must have the shape of the forward input, \(4, 3\), got \(3, 4\)"):
        batchnorm_backward(np.ones((3, 4)), cache)


def test_layer_backward_before_forward_and_wrong_dy():
    layer = BatchNormalization(name="bn_b")
    with pytest.raises(RuntimeError, match="'bn_b': backward called before forward"):
        layer.backward(np.ones((2, 3)))
    layer(randn(4, 3))
    with pytest.raises(ValueError, match=r"'bn_b': dy must have the shape of the forward input, \(4, 3\), got \(4, 2\)"):
        layer.backward(np.ones((4, 2)))


def test_normalize_inputs_uses_train_statistics():
    seed(7)
    Xtr = randn(100, 4, dtype=np.float64) * np.array([1, 10, 100, 0.1]) + 7
    Xte = randn(30, 4, dtype=np.float64) + 7
    Xtr_n, Xte_n, (mu, sigma) = normalize_inputs(Xtr, Xte)
    np.testing.assert_allclose(to_numpy(Xtr_n.mean(0)), 0, atol=1e-12)
    np.testing.assert_allclose(to_numpy(Xtr_n.std(0)), 1, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(Xte_n), to_numpy((Xte - Xtr.mean(0)) / Xtr.std(0)), rtol=1e-12)
    X_const = np.c_[to_numpy(Xtr), np.full(100, 3.0)]
    Xc_n, (_, s) = normalize_inputs(X_const)
    assert to_numpy(s)[-1] == 1.0 and np.all(to_numpy(Xc_n)[:, -1] == 0.0)  # a constant feature is only centred
    img = randn(10, 2, 2, 3, dtype=np.float64)
    (img_n, _) = normalize_inputs(img)
    np.testing.assert_allclose(to_numpy(img_n.mean(0)), 0, atol=1e-12)


def test_normalize_inputs_bad_inputs():
    with pytest.raises(ValueError, match=r"others\[1\] must have the feature shape of X_train, \(4,\), got \(5,\)"):
        normalize_inputs(np.ones((5, 4)), np.ones((2, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"with m >= 2, got shape \(1, 4\)"):
        normalize_inputs(np.ones((1, 4)))


def test_named_caches_of_both_modes():
    seed(9)
    layer = BatchNormalization(momentum=0.5)
    x = randn(6, 3, dtype=np.float64)
    layer(x, training=True)
    assert type(layer.cache) is BatchNormCache
    assert layer.cache._fields == ("x_hat", "gamma", "sigma", "mu", "var")
    np.testing.assert_allclose(to_numpy(layer.cache.mu), to_numpy(x.mean(0)), rtol=1e-6)
    layer(x, training=False)
    assert type(layer.cache) is BatchNormInferenceCache and layer.cache._fields == ("x_hat", "gamma", "sigma")
    np.testing.assert_allclose(to_numpy(layer.cache.sigma), to_numpy(xp.sqrt(layer.moving_variance + 1e-3)), rtol=1e-6)


def test_backward_uses_the_cache_it_is_given():
    "A layer applied twice: backward_for restores each call's cache, whatever the mode of the last call."
    layer, x = _layer_with_state((5, 3), seed_=10)
    layer(x, training=True); c_train = layer.cache
    layer(x, training=False); c_inf = layer.cache
    dy = randn(5, 3, dtype=np.float64)
    dx_train = layer.backward_for(dy, c_train)
    g_train = dict(layer.grads)
    dx_inf = layer.backward_for(dy, c_inf)
    g_inf = dict(layer.grads)
    np.testing.assert_allclose(to_numpy(dx_train), to_numpy(batchnorm_backward(dy, c_train)[0]), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(dx_inf), to_numpy(dy * c_inf.gamma / c_inf.sigma), rtol=1e-12)
    layer.backward_for(dy, c_train, accumulate=True)
    for k in ("gamma", "beta"):  # accumulated over the two uses
        np.testing.assert_allclose(to_numpy(layer.grads[k]), to_numpy(g_inf[k] + g_train[k]), rtol=1e-12)


def test_shared_layer_in_a_model_is_gradient_checked():
    seed(11)
    bn = BatchNormalization(momentum=0.5)
    model = Sequential([Dense(3, use_bias=False), bn, Activation("tanh"), Dense(3, use_bias=False), bn])
    X = randn(7, 4, dtype=np.float64)
    model(X, training=True)
    for l in model.layers: as_float64(l)
    R = randn(7, 3, dtype=np.float64)
    model(X, training=True); model.backward(R)
    grads = {k: v.copy() for k, v in model.grads.items()}
    J = lambda: (model(X, training=True) * R).sum()
    d = grad_check(J, dict(model.params), grads)  # the model's arrays themselves, perturbed in place
    assert max(d.values()) < 1e-7, d


@pytest.mark.parametrize("built,other", [((3, 4, 4, 2), (3, 7, 5, 2)), ((2, 9, 4), (5, 3, 4))])
def test_variable_size_before_the_channels(built, other):
    layer = BatchNormalization(name="bn_v")
    layer(randn(*built), training=True)
    assert layer.input_shape == (*([None] * (len(built) - 2)), built[-1])
    seed(12)
    x = randn(*other, dtype=np.float64) * 3 + 1
    as_float64(layer)
    y = layer(x, training=True)
    np.testing.assert_allclose(to_numpy(y.mean(tuple(range(len(other) - 1)))), 0, atol=1e-10)
    assert max(check_layer(layer, x, training=True).values()) < 1e-7
    with pytest.raises(ValueError, match=r"'bn_v' was built for inputs of shape \(batch, (None, )+\d\), got an input of shape"):
        layer(randn(*other[:-1], other[-1] + 1))


def test_help_shows_own_docstrings():
    "help(BatchNormalization): the constructor's own docstring and argument comments, and a docstring for every override."
    init = BatchNormalization.__init__.__doc__
    assert init and init != Layer.__init__.__doc__ and not init.startswith("Initialize self")
    assert all(v for k, v in docments(BatchNormalization.__init__).items() if k not in ("self", "return"))
    own = [m for m in ("build", "call", "backward", "check_input") if getattr(BatchNormalization, m) is not getattr(Layer, m)]
    assert own == ["build", "call", "backward"]
    assert all(getattr(BatchNormalization, m).__doc__ not in (None, "", getattr(Layer, m).__doc__) for m in own)
