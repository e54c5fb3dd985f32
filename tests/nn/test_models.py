"Sequential end to end (shared layers and names included), fit's bookkeeping and bad inputs to a model, for dlnotes.nn.models."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy, xp
from dlnotes.gradcheck import check_layer, grad_check, as_float64
from dlnotes.nn.layers import Layer, Dense, Activation, Dropout
from dlnotes.nn.losses import get_loss, one_hot
from dlnotes.nn.models import Sequential
from dlnotes.nn.callbacks import History
from dlnotes.nn.optimizers import SGD, Adam

BATCHES = [1, 3, 7]
TOL = 1e-7


# ---------------------------------------------------------------- Sequential

def _stack64(seed_=20):
    seed(seed_)
    model = Sequential([Dense(6, activation="tanh"), Dropout(0.3), Dense(5, activation="relu"), Dense(3)])
    model.build((4,))
    for layer in model.layers: as_float64(layer)
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
    with pytest.raises(ValueError, match="metric 'accuracy' needs a cross-entropy loss to choose binary or categorical accuracy, got mean_squared_error"):
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
    with pytest.raises(ValueError, match=r"layer 'hidden' was built for inputs of shape \(batch, 2\), got x of shape \(5, 3\)"):
        model.predict(np.ones((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"layer 'hidden' was built for inputs of shape \(batch, 2\), got x of shape \(30, 7\)"):
        model.fit(np.ones((30, 7)), y, verbose=0)
    with pytest.raises(ValueError, match=r"the inputs and y must have the same number of examples, got 30 and 29 \(shape \(29,\)\)"):
        model.fit(X, y[:29], verbose=0)
    with pytest.raises(ValueError, match=r"the inputs and y_val must have the same number of examples, got 30 and 10"):
        model.fit(X, y, validation_data=(X, y[:10]), verbose=0)
    with pytest.raises(ValueError, match="validation_data must be a pair"):
        model.fit(X, y, validation_data=X, verbose=0)
    with pytest.raises(ValueError, match=r"x must have at least 2 axes \(batch, features...\), got shape \(30,\)"):
        model.fit(X[:, 0], y, verbose=0)
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y has shape \(30, 2\), expected the predictions' shape \(30, 3\)"):
        model.fit(X, np.zeros((30, 2), dtype=np.float32), verbose=0)
    with pytest.raises(ValueError, match=r"y holds labels from 1 to 3; class labels must be integers in \[0, 3\)"):
        model.fit(X, y + 1, verbose=0)


@pytest.mark.parametrize("bad, which, n_nan, n_inf", [(np.nan, "X", 2, 0), (np.inf, "X", 0, 2), (-np.inf, "X", 0, 2)])
def test_non_finite_inputs(fitted, bad, which, n_nan, n_inf):
    model, X, y = fitted
    Xb = X.copy(); Xb[0, 0] = bad; Xb[5, 1] = bad
    with pytest.raises(ValueError, match=f"x contains {n_nan} NaN and {n_inf} infinite values"):
        model.fit(Xb, y, verbose=0)
    with pytest.raises(ValueError, match=f"x contains {n_nan} NaN and {n_inf} infinite values"):
        model.predict(Xb)
    Y = to_numpy(one_hot(y, 3)).copy(); Y[3, 1] = bad; Y[4, 1] = bad
    with pytest.raises(ValueError, match=f"y contains {n_nan} NaN and {n_inf} infinite values"):
        model.fit(X, Y, verbose=0)
    with pytest.raises(ValueError, match=f"x_val contains {n_nan} NaN and {n_inf} infinite values"):
        model.fit(X, y, validation_data=(Xb, y), verbose=0)


def test_unknown_names_and_bad_args(fitted):
    model, X, y = fitted
    with pytest.raises(ValueError, match="adamw"): model.fit(X, y, optimizer="adamw", verbose=0)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"): model.fit(X, y, loss="hinge", verbose=0)
    with pytest.raises(ValueError, match="unknown metric 'f1'"): model.fit(X, y, metrics=["f1"], verbose=0)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"): model.fit(X, y, epochs=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got -1"): model.fit(X, y, batch_size=-1, verbose=0)
    with pytest.raises(TypeError, match="x must be an array of numbers"): model.fit(np.array([["a", "b"]] * 30), y, verbose=0)
    with pytest.raises(ValueError, match="model 'clf' has two different layers named 'out'"): model.add(Dense(2, name="out"))
    with pytest.raises(TypeError, match=r"Sequential.add expects a Layer \(dlnotes.nn.layers.Layer\), got str"): model.add("dense")
    with pytest.raises(ValueError, match="has no layers"): Sequential().predict(X)
    with pytest.raises(ValueError, match="is not built"): Sequential([Dense(2)]).summary()
    with pytest.raises(ValueError, match="has no loss: call compile or fit first"): Sequential([Dense(2)]).evaluate(X, y)
    with pytest.raises(ValueError, match="adamw"): Sequential([Dense(2)]).compile(optimizer="adamw")


def test_integer_inputs_are_cast(fitted):
    model, X, y = fitted
    out = model.predict(np.ones((4, 2), dtype=np.int64))
    assert out.dtype == np.float32 and out.shape == (4, 3)


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


# ---------------------------------------------------------------- names and shared layers

def test_models_name_their_layers_the_same_way_every_time():
    make = lambda: Sequential([Dense(4, activation="relu"), Dropout(0.1), Dense(4), Dense(2, name="out")])
    a, b = make(), make()
    assert [l.name for l in a.layers] == [l.name for l in b.layers] == ["dense", "dropout", "dense_1", "out"]
    a.build((3,)); b.build((3,))
    assert list(a.params) == list(b.params) == ["dense/W", "dense/b", "dense_1/W", "dense_1/b", "out/W", "out/b"]
    assert Sequential().name == Sequential().name == "sequential"


@pytest.mark.parametrize("m", BATCHES)
def test_a_layer_at_two_positions_gradcheck(m):
    seed(100 + m)
    shared = Dense(3, activation="tanh", name="shared")
    model = Sequential([Dense(3, name="first"), shared, Activation("relu"), shared, Dense(2, name="last")])
    model.build((4,))
    for layer in model.layers: as_float64(layer)
    assert list(model.params) == ["first/W", "first/b", "shared/W", "shared/b", "last/W", "last/b"]
    X, R = randn(m, 4, dtype=np.float64), randn(m, 2, dtype=np.float64)
    model.forward(X); dX = model.backward(R)
    d = grad_check(lambda: (model.forward(X) * R).sum(), {"x": X, **model.params}, {"x": dX, **model.grads})
    assert max(d.values()) < TOL, d


def test_a_shared_layer_is_stepped_once_and_trains():
    seed(110)
    shared = Dense(2, name="shared")
    model = Sequential([shared, Activation("tanh"), shared])
    X, y = _blobs(40)
    W0 = to_numpy(model.build((2,)).layers[0].params["W"]).copy()
    opt = SGD(learning_rate=0.1)
    h = model.fit(X, y.astype(np.float32)[:, None].repeat(2, axis=1), epochs=3, batch_size=40, optimizer=opt, loss="mse", verbose=0)
    assert opt.iterations == 3 and sorted(opt.state) == ["shared/W", "shared/b"] and len(h.history["loss"]) == 3
    assert not np.allclose(to_numpy(shared.params["W"]), W0)
    assert model.count_params() == 6


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="model 'sequential': backward called before forward"):
        Sequential([Dense(2)]).backward(np.ones((1, 2)))


def test_a_model_takes_any_length_its_first_layer_takes():
    seed(120)
    model = Sequential([Dense(4, activation="tanh"), Dense(2)])
    model.build((5, 3))  # sequences of 5 steps of 3 features
    assert model.predict(np.ones((2, 9, 3), dtype=np.float32)).shape == (2, 9, 2)  # the dense layers act on every step
    with pytest.raises(ValueError, match=r"layer 'dense' was built for inputs of shape \(batch, None, 3\), got x of shape \(2, 9, 4\)"):
        model.predict(np.ones((2, 9, 4), dtype=np.float32))


def test_the_readme_quick_start_runs(tmp_path, monkeypatch):
    "The ten lines of README.md, run as they are written, give the same evaluation before saving and after loading."
    import contextlib, io, re
    from pathlib import Path
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = re.search(r"## The library in ten lines.*?```python\n(.*?)```", readme, re.S).group(1)
    assert len([l for l in code.splitlines() if l.strip() and not l.startswith(("from ", "import "))]) <= 10
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out): exec(compile(code, "README.md", "exec"), {})
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 12 and lines[-1] == lines[-2] and lines[-1].startswith("{'loss': ")
    assert (tmp_path / "digits.npz").exists()


def test_a_sequential_over_a_varying_length_fits_per_step_targets():
    # Input((None, 4)): the time axis varies, so must the output's; fit takes targets of any length
    from dlnotes.nn.graphs import Input
    seed(6)
    model = Sequential([Input((None, 4)), Dense(5, activation="tanh"), Dense(3)])
    assert model.output_shapes == [(None, 3)]
    model.compile("adam", "mse")
    for T in (7, 11):
        x, y = randn(8, T, 4), randn(8, T, 3)
        h = model.fit(x, y, epochs=1, batch_size=4, verbose=0)
        assert np.isfinite(h.history["loss"][0])
    assert model.predict(randn(2, 9, 4)).shape == (2, 9, 3)
    assert model.output_shapes == [(None, 3)]
