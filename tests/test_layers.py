"Gradient checks of every layer and loss over many shapes, Sequential end to end, and bad inputs for dlnotes.layers."
import math

import numpy as np
import pytest

from dlnotes.backend import seed, randn, rand, to_numpy, xp
from dlnotes.gradcheck import check_layer, grad_check, numerical_grad, rel_diff
from dlnotes.layers import (Layer, Dense, Activation, Dropout, Sequential, History, one_hot, get_initializer,
                            RandomNormal, INITIALIZERS, BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError,
                            get_loss, LOSSES, _to_float64)
from dlnotes.optimizers import SGD, Adam

ACTS = [None, "linear", "relu", "leaky_relu", "tanh", "sigmoid", "softmax"]
BATCHES, FEATURES = [1, 3, 7], [1, 4, 9]
TOL = 1e-7


def _built64(layer, input_shape):
    "Build `layer` for `input_shape` and cast its parameters to float64 in place."
    layer.build(input_shape)
    return _to_float64(layer)


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
    with pytest.raises(TypeError, match="layer 'fc' expects an array, got list"):
        layer([[1.0, 2.0, 3.0, 4.0]])
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


# ---------------------------------------------------------------- losses

def _loss_cases():
    "(loss, prediction maker, target maker) for every loss and setting."
    logits = lambda shape: randn(*shape, dtype=np.float64) * 2
    probs = lambda shape: rand(*shape, dtype=np.float64) * 0.8 + 0.1
    binary = lambda shape: (rand(*shape, dtype=np.float64) > 0.5).astype(np.float64)
    onehot = lambda shape: one_hot(xp.asarray(to_numpy(rand(shape[0]) * shape[1]).astype(np.int64)), shape[1], dtype=np.float64)
    soft = lambda shape: (lambda P: P / P.sum(axis=-1, keepdims=True))(rand(*shape, dtype=np.float64) + 0.1)
    real = lambda shape: randn(*shape, dtype=np.float64)
    return [("bce_logits", BinaryCrossentropy(), logits, binary), ("bce_probs", BinaryCrossentropy(from_logits=False), probs, binary),
            ("cce_logits", CategoricalCrossentropy(), logits, onehot), ("cce_logits_soft", CategoricalCrossentropy(), logits, soft),
            ("cce_probs", CategoricalCrossentropy(from_logits=False), probs, onehot), ("mse", MeanSquaredError(), real, real)]


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("n", [1, 4, 9])
def test_loss_gradcheck(case, m, n):
    seed(400 + case * 100 + m * 10 + n)
    name, loss, make_pred, make_target = _loss_cases()[case]
    if name.startswith("cce") and n == 1: n = 2  # a categorical loss needs at least two classes to be non-trivial
    P, Y = make_pred((m, n)), make_target((m, n))
    J = loss.forward(P, Y)
    assert np.ndim(to_numpy(J)) == 0
    g = loss.backward()
    assert g.shape == P.shape
    g_num = numerical_grad(lambda P_: loss.forward(P_, Y), P)
    assert rel_diff(g, g_num) < TOL, (name, rel_diff(g, g_num))


@pytest.mark.parametrize("m", BATCHES)
def test_losses_match_naive_formulas(m):
    seed(500 + m)
    Z = randn(m, 1, dtype=np.float64) * 3
    y = (rand(m, 1, dtype=np.float64) > 0.5).astype(np.float64)
    a = 1 / (1 + np.exp(-to_numpy(Z)))
    naive = -(to_numpy(y) * np.log(a) + (1 - to_numpy(y)) * np.log(1 - a)).mean()
    np.testing.assert_allclose(float(BinaryCrossentropy()(Z, y)), naive, rtol=1e-12)
    np.testing.assert_allclose(float(BinaryCrossentropy(from_logits=False)(xp.asarray(a), y)), naive, rtol=1e-9)
    Zc = to_numpy(randn(m, 4, dtype=np.float64) * 3)
    labels = np.arange(m) % 4
    S = np.exp(Zc) / np.exp(Zc).sum(axis=1, keepdims=True)
    naive_c = -np.log(S[np.arange(m), labels]).mean()
    np.testing.assert_allclose(float(CategoricalCrossentropy()(xp.asarray(Zc), xp.asarray(labels))), naive_c, rtol=1e-12)
    np.testing.assert_allclose(float(CategoricalCrossentropy(from_logits=False)(xp.asarray(S), xp.asarray(labels))), naive_c, rtol=1e-9)
    np.testing.assert_allclose(float(MeanSquaredError()(Z, y)), ((to_numpy(Z) - to_numpy(y)) ** 2).mean(), rtol=1e-12)


def test_losses_finite_at_extreme_logits():
    Z = xp.asarray([[1e4], [-1e4], [1e4], [-1e4]])
    y = xp.asarray([[1.0], [0.0], [0.0], [1.0]])
    bce = BinaryCrossentropy()
    np.testing.assert_allclose(float(bce(Z, y)), 2e4 / 4, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(bce.backward()), [[0.0], [0.0], [0.25], [-0.25]], atol=1e-12)
    Zc = xp.asarray([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [-1e4, -1e4, -1e4]])
    cce = CategoricalCrossentropy()
    L = float(cce(Zc, xp.asarray([0, 0, 2])))
    np.testing.assert_allclose(L, (0 + 2e4 + np.log(3)) / 3, rtol=1e-12)
    g = to_numpy(cce.backward())
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g.sum(axis=1), np.zeros(3), atol=1e-12)  # softmax - one-hot sums to zero per row
    for dtype in (np.float32, np.float64):
        assert np.isfinite(float(bce(Z.astype(dtype), y))) and np.isfinite(float(cce(Zc.astype(dtype), xp.asarray([0, 1, 2]))))


def test_integer_labels_equal_one_hot():
    seed(10)
    Z = randn(5, 3, dtype=np.float64)
    labels = xp.asarray([2, 0, 1, 1, 0])
    a, b = CategoricalCrossentropy(), CategoricalCrossentropy()
    np.testing.assert_allclose(float(a(Z, labels)), float(b(Z, one_hot(labels, 3, dtype=np.float64))), rtol=1e-14)
    np.testing.assert_allclose(to_numpy(a.backward()), to_numpy(b.backward()), rtol=1e-14)


def test_binary_accepts_label_vector():
    seed(11)
    Z = randn(6, 1, dtype=np.float64)
    y = xp.asarray([0.0, 1, 1, 0, 1, 0])
    a, b = BinaryCrossentropy(), BinaryCrossentropy()
    np.testing.assert_allclose(float(a(Z, y)), float(b(Z, y.reshape(6, 1))), rtol=1e-14)


def test_get_loss_names_and_errors():
    assert isinstance(get_loss("binary_crossentropy"), BinaryCrossentropy)
    assert isinstance(get_loss("categorical_crossentropy"), CategoricalCrossentropy)
    assert isinstance(get_loss("sparse_categorical_crossentropy"), CategoricalCrossentropy)
    assert isinstance(get_loss("mse"), MeanSquaredError) and isinstance(get_loss("mean_squared_error"), MeanSquaredError)
    obj = CategoricalCrossentropy()
    assert get_loss(obj) is obj
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: binary_crossentropy"): get_loss("hinge")
    with pytest.raises(TypeError, match="loss must be a name or a Loss object, got int"): get_loss(3)
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y_true has shape \(4, 2\), expected the predictions' shape \(4, 3\)"):
        CategoricalCrossentropy()(xp.zeros((4, 3)), xp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got labels from 0 to 5"):
        CategoricalCrossentropy()(xp.zeros((2, 3)), xp.asarray([0, 5]))
    with pytest.raises(RuntimeError, match="backward called before forward"): MeanSquaredError().backward()


# ---------------------------------------------------------------- initializers and one_hot

@pytest.mark.parametrize("name", ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform"])
@pytest.mark.parametrize("fans", [(200, 600), (800, 100)])
def test_initializer_variance(name, fans):
    seed(12)
    fan_in, fan_out = fans
    var = 2 / fan_in if name.startswith("he") else 2 / (fan_in + fan_out)
    W = to_numpy(get_initializer(name)((fan_in, fan_out), fan_in, fan_out))
    assert W.shape == (fan_in, fan_out) and W.dtype == np.float32
    assert abs(W.var() / var - 1) < 0.03, (name, W.var(), var)
    if name.endswith("uniform"):
        a = math.sqrt(3 * var)
        assert np.abs(W).max() <= a and np.abs(W).max() > 0.99 * a


def test_initializer_objects_and_errors():
    seed(13)
    W = to_numpy(RandomNormal(stddev=0.2)((400, 300), 400, 300, dtype=np.float64))
    assert W.dtype == np.float64 and abs(W.std() - 0.2) < 0.003
    assert abs(to_numpy(get_initializer("random_normal")((500, 400), 500, 400)).std() - 0.05) < 0.001
    layer = Dense(3, kernel_initializer=RandomNormal(stddev=0.0, mean=0.0), bias_initializer="ones")
    layer(xp.ones((2, 4), dtype=np.float32))
    np.testing.assert_array_equal(to_numpy(layer.params["W"]), np.zeros((4, 3)))
    np.testing.assert_array_equal(to_numpy(layer.params["b"]), np.ones(3))
    custom = lambda shape, fan_in, fan_out, dtype=None: xp.full(shape, 0.5, dtype=dtype or np.float32)
    assert get_initializer(custom) is custom
    assert set(INITIALIZERS) == {"zeros", "ones", "random_normal", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform"}
    with pytest.raises(ValueError, match="unknown initializer 'lecun'; valid names: zeros, ones, random_normal"): get_initializer("lecun")
    with pytest.raises(TypeError, match="initializer must be a name or a callable, got float"): get_initializer(0.1)
    with pytest.raises(ValueError, match="stddev must be >= 0"): RandomNormal(stddev=-1.0)


def test_one_hot():
    Y = to_numpy(one_hot(np.array([1, 0, 2, 1]), 3))
    np.testing.assert_array_equal(Y, np.eye(3, dtype=np.float32)[[1, 0, 2, 1]])
    assert one_hot(np.array([0]), 2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got labels from -1 to 2"): one_hot(np.array([-1, 2]), 3)
    with pytest.raises(ValueError, match=r"1-D array of integer labels, got shape \(2, 1\)"): one_hot(np.array([[0], [1]]), 2)


# ---------------------------------------------------------------- Sequential

def _stack64(seed_=20):
    seed(seed_)
    model = Sequential([Dense(6, activation="tanh"), Dropout(0.3), Dense(5, activation="relu"), Dense(3)])
    model.build((4,))
    for layer in model.layers: _to_float64(layer)
    return model


@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("loss", ["categorical_crossentropy", "mse"])
def test_sequential_end_to_end_backward(m, loss):
    model = _stack64(21 + m)
    X = randn(m, 4, dtype=np.float64)
    Y = one_hot(xp.asarray(np.arange(m) % 3), 3, dtype=np.float64)
    loss = get_loss(loss)
    model.forward(X, training=True)
    model.layers[1].fixed_mask = model.layers[1].mask
    J = lambda: loss.forward(model.forward(X, training=True), Y)
    J()
    dX = model.backward(loss.backward())
    assert dX.shape == X.shape
    d = grad_check(J, {"x": X, **model.params}, {"x": dX, **model.grads})
    assert max(d.values()) < TOL, d
    assert len(model.params) == 6 and set(model.params) == set(model.grads)


def test_sequential_check_layer_and_need_dx():
    model = _stack64(30)
    X = randn(3, 4, dtype=np.float64)
    d = check_layer(model, X)  # inference mode: dropout is the identity
    assert max(d.values()) < TOL, d
    Y = model.forward(X)
    dY = randn(*Y.shape, dtype=np.float64)
    model.backward(dY)
    g = {k: v.copy() for k, v in model.grads.items()}
    assert model.backward(dY, need_dx=False) is None
    for k in g: np.testing.assert_allclose(to_numpy(model.grads[k]), to_numpy(g[k]), rtol=1e-14)
    act_first = Sequential([Activation("tanh"), Dense(2)])  # a first layer without need_dx still returns dx
    act_first(X)
    assert act_first.backward(xp.ones((3, 2)), need_dx=False).shape == (3, 4)


def _blobs(m=120, seed_=0):
    "Three well-separated Gaussian blobs in 2-D (a task any working trainer solves)."
    rng = np.random.default_rng(seed_)
    y = np.arange(m) % 3
    X = rng.normal(size=(m, 2)) * 0.5 + np.array([[0, 3], [3, -2], [-3, -2]])[y]
    return X.astype(np.float32), y


def test_fit_learns_and_counts_batches():
    X, y = _blobs(50)
    seed(40)
    model = Sequential([Dense(8, activation="relu"), Dense(3)])
    opt = SGD(learning_rate=0.1)
    hist = model.fit(X, y, epochs=30, batch_size=16, optimizer=opt, loss="categorical_crossentropy", verbose=0)
    assert isinstance(hist, History) and hist.epoch == list(range(30))
    assert opt.iterations == 30 * 4  # 50 = 16 + 16 + 16 + 2: the last batch is smaller
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]
    assert hist.history["accuracy"][-1] > 0.95
    assert model.evaluate(X, y)["accuracy"] > 0.95


def test_fit_continues_with_the_same_optimizer_and_compile():
    X, y = _blobs(60)
    seed(41)
    model = Sequential([Dense(8, activation="relu"), Dense(3)])
    model.compile(optimizer=Adam(learning_rate=0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=2, batch_size=20, verbose=0)
    opt = model.optimizer
    assert opt.iterations == 6
    model.fit(X, y, epochs=1, batch_size=20, verbose=0)
    assert model.optimizer is opt and opt.iterations == 9


def test_fit_reproducible_and_validation_keys():
    X, y = _blobs(64)
    runs = []
    for _ in range(2):
        seed(42)
        model = Sequential([Dense(8, activation="tanh"), Dropout(0.2), Dense(3)])
        h = model.fit(X, y, epochs=3, batch_size=10, optimizer="adam", loss="categorical_crossentropy",
                      validation_data=(X[:20], y[:20]), verbose=0)
        runs.append(h.history)
    assert list(runs[0]) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert runs[0] == runs[1]
    seed(43)
    a = Sequential([Dense(3)]).fit(X, y, epochs=2, optimizer="sgd", loss="categorical_crossentropy", verbose=0).history
    seed(44)  # a different shuffle, but the same initial weights
    m2 = Sequential([Dense(3)])
    seed(43); m2.build((2,)); seed(44)
    b = m2.fit(X, y, epochs=2, optimizer="sgd", loss="categorical_crossentropy", verbose=0).history
    assert a["loss"][0] != b["loss"][0]


def test_fit_binary_with_label_vector():
    X, y = _blobs(90)
    yb = (y == 0).astype(np.int64)
    seed(45)
    model = Sequential([Dense(8, activation="relu"), Dense(1)])
    h = model.fit(X, yb, epochs=40, batch_size=15, optimizer=Adam(learning_rate=0.02), loss="binary_crossentropy", verbose=0)
    assert h.history["accuracy"][-1] > 0.95
    logits = to_numpy(model.predict(X))
    assert logits.shape == (90, 1)
    assert ((logits[:, 0] > 0) == (yb == 1)).mean() == model.evaluate(X, yb)["accuracy"]


def test_fit_regression_has_no_default_accuracy():
    seed(46)
    X = to_numpy(randn(40, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)
    model = Sequential([Dense(1)])
    h = model.fit(X, y, epochs=50, batch_size=8, optimizer=SGD(learning_rate=0.05), loss="mse", verbose=0)
    assert list(h.history) == ["loss"] and h.history["loss"][-1] < 1e-3
    with pytest.raises(ValueError, match="metric 'accuracy' needs a cross-entropy loss, got mean_squared_error"):
        model.fit(X, y, metrics=["accuracy"], verbose=0)


def test_frozen_layer_is_not_updated():
    X, y = _blobs(30)
    seed(47)
    frozen = Dense(5, activation="relu", trainable=False)
    model = Sequential([frozen, Dense(3)])
    model.build((2,))
    W0 = to_numpy(frozen.params["W"]).copy()
    model.fit(X, y, epochs=2, batch_size=10, optimizer="adam", loss="categorical_crossentropy", verbose=0)
    np.testing.assert_array_equal(to_numpy(frozen.params["W"]), W0)


def test_predict_in_batches_matches_forward():
    seed(48)
    model = Sequential([Dense(4, activation="relu"), Dropout(0.5), Dense(2)])
    X = randn(23, 3)
    np.testing.assert_allclose(to_numpy(model.predict(X, batch_size=5)), to_numpy(model.forward(X)), rtol=1e-6)


def test_summary(capsys):
    seed(49)
    model = Sequential([Dense(16, activation="relu", name="hidden"), Dropout(0.5, name="drop"), Dense(4, name="out")], name="net")
    model.build((8,))
    model.summary()
    out = capsys.readouterr().out
    assert 'Model: "net"' in out
    for piece in ["hidden (Dense)", "(None, 16)", "144", "drop (Dropout)", "out (Dense)", "(None, 4)", "68",
                  "Total params: 212", "Trainable params: 212", "Non-trainable params: 0"]:
        assert piece in out, piece
    model.layers[0].trainable = False
    model.summary()
    assert "Non-trainable params: 144" in capsys.readouterr().out


# ---------------------------------------------------------------- bad input to the model

@pytest.fixture
def fitted():
    X, y = _blobs(30)
    seed(50)
    model = Sequential([Dense(4, activation="relu", name="hidden"), Dense(3, name="out")], name="clf")
    model.fit(X, y, epochs=1, optimizer="sgd", loss="categorical_crossentropy", verbose=0)
    return model, X, y


def test_bad_shapes(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match=r"layer 'hidden' was built for inputs of shape \(batch, 2\), got X of shape \(5, 3\)"):
        model.predict(np.ones((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"layer 'hidden' was built for inputs of shape \(batch, 2\), got X of shape \(30, 7\)"):
        model.fit(np.ones((30, 7)), y, verbose=0)
    with pytest.raises(ValueError, match=r"X and y must have the same number of examples, got X with 30 \(shape \(30, 2\)\) and y with 29"):
        model.fit(X, y[:29], verbose=0)
    with pytest.raises(ValueError, match="X_val and y_val must have the same number of examples, got X_val with 30"):
        model.fit(X, y, validation_data=(X, y[:10]), verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        model.fit(X, y, validation_data=X, verbose=0)
    with pytest.raises(ValueError, match=r"X must have a batch axis and feature axes, got shape \(30,\)"):
        model.fit(X[:, 0], y, verbose=0)
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y_true has shape \(30, 2\), expected the predictions' shape \(30, 3\)"):
        model.fit(X, np.zeros((30, 2), dtype=np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        model.fit(X, y + 1, verbose=0)


@pytest.mark.parametrize("bad, which, n_nan, n_inf", [(np.nan, "X", 2, 0), (np.inf, "X", 0, 2), (-np.inf, "X", 0, 2)])
def test_non_finite_inputs(fitted, bad, which, n_nan, n_inf):
    model, X, y = fitted
    Xb = X.copy(); Xb[0, 0] = bad; Xb[5, 1] = bad
    with pytest.raises(ValueError, match=f"X contains {n_nan} NaN and {n_inf} infinite values"):
        model.fit(Xb, y, verbose=0)
    with pytest.raises(ValueError, match=f"X contains {n_nan} NaN and {n_inf} infinite values"):
        model.predict(Xb)
    Y = to_numpy(one_hot(y, 3)).copy(); Y[3, 1] = bad; Y[4, 1] = bad
    with pytest.raises(ValueError, match=f"y contains {n_nan} NaN and {n_inf} infinite values"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match=f"X_val contains {n_nan} NaN and {n_inf} infinite values"):
        model.fit(X, y, validation_data=(Xb, y), verbose=0)


def test_unknown_names_and_bad_args(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="adamw"): model.fit(X, y, optimizer="adamw", verbose=0)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"): model.fit(X, y, loss="hinge", verbose=0)
    with pytest.raises(ValueError, match="unknown metric 'f1'"): model.fit(X, y, metrics=["f1"], verbose=0)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"): model.fit(X, y, epochs=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got -1"): model.fit(X, y, batch_size=-1, verbose=0)
    with pytest.raises(TypeError, match="X must be numeric"): model.fit(np.array([["a", "b"]] * 30), y, verbose=0)
    with pytest.raises(ValueError, match="a layer named 'out' is already in model 'clf'"): model.add(Dense(2, name="out"))
    with pytest.raises(TypeError, match="Sequential.add expects a layer"): model.add("dense")
    with pytest.raises(ValueError, match="has no layers"): Sequential().predict(X)
    with pytest.raises(ValueError, match="is not built"): Sequential([Dense(2)]).summary()
    with pytest.raises(ValueError, match="has no loss: call compile or fit first"): Sequential([Dense(2)]).evaluate(X, y)
    with pytest.raises(ValueError, match="adamw"): Sequential([Dense(2)]).compile(optimizer="adamw")


def test_integer_inputs_are_cast(fitted):
    model, X, y = fitted
    out = model.predict(np.ones((4, 2), dtype=np.int64))
    assert out.dtype == np.float32 and out.shape == (4, 3)


def test_base_layer_names_are_unique():
    a, b = Layer(), Layer()
    assert a.name != b.name and a.name.startswith("layer") and b.name.startswith("layer")
    assert Dense(2).name.startswith("dense")


def test_failed_first_call_does_not_fix_the_input_shape():
    model = Sequential([Dense(2, name="a"), Activation("relu", name="r")])
    with pytest.raises(ValueError, match="layer 'a' expects a batch"):
        model(np.ones(3, dtype=np.float32))
    assert model.input_shape is None and not model.built
    model.fit(np.ones((4, 5), dtype=np.float32), np.zeros((4, 2), dtype=np.float32), loss="mse", optimizer="sgd", verbose=0)
    assert model.input_shape == (5,) and model.built


# ---------------------------------------------------------------- fit's bookkeeping

def _hand_fit(model, X, Y, loss, opt, epochs, batch_size, binary):
    "The training loop written out plainly: per-epoch mean loss weighted by batch size, and accuracy."
    from dlnotes.backend import permutation
    logs = {"loss": [], "accuracy": []}
    m = X.shape[0]
    for _ in range(epochs):
        order, total, correct = permutation(m), 0.0, 0
        for start in range(0, m, batch_size):
            b = order[start:start + batch_size]
            out = model.forward(X[b], training=True)
            J = loss.forward(out, Y[b])
            model.backward(loss.backward(), need_dx=False)
            opt.step(model.layers)
            total += float(J) * len(b)
            pred = (out > 0) if binary else out.argmax(axis=-1)
            correct += int((pred == (Y[b] > 0.5)).sum()) if binary else int((pred == Y[b].argmax(axis=-1)).sum())
        logs["loss"].append(total / m)
        logs["accuracy"].append(correct / (Y.size if binary else m))
    return logs


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_fit_logs_equal_a_hand_written_loop(binary, opt_name):
    X, y = _blobs(70)
    if binary: y = (y == 0).astype(np.int64)
    Y = (y.reshape(-1, 1) if binary else one_hot(y, 3)).astype(np.float32)
    layers = lambda: [Dense(6, activation="relu"), Dropout(0.25), Dense(1 if binary else 3)]
    make_opt = lambda: SGD(learning_rate=0.1) if opt_name == "sgd" else Adam(learning_rate=0.01)
    loss = "binary_crossentropy" if binary else "categorical_crossentropy"
    seed(50); a = Sequential(layers()); a.build((2,))
    seed(50); b = Sequential(layers()); b.build((2,))
    seed(51)
    h = a.fit(X, y, epochs=3, batch_size=16, optimizer=make_opt(), loss=loss, verbose=0).history
    seed(51)
    hand = _hand_fit(b, X, Y, get_loss(loss), make_opt(), 3, 16, binary)
    assert h == hand  # bit for bit: the same arithmetic in the same order
    for la, lb in zip(a.layers, b.layers):
        for k in la.params: np.testing.assert_array_equal(to_numpy(la.params[k]), to_numpy(lb.params[k]))
