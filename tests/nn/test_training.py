"compile, fit, evaluate and predict of dlnotes.nn.training, through Sequential and functional models: the Keras arguments, the mistakes a new user makes, penalties, clipping and released caches."
import pickle

import numpy as np
import pytest

from dlnotes.backend import seed, randn, xp, to_numpy
from dlnotes.data import load_breast_cancer_data
from dlnotes.gradcheck import numerical_grad, rel_diff, as_float64
from dlnotes.nn.callbacks import Callback, EarlyStopping, LearningRateScheduler, TerminateOnNaN, ReduceLROnPlateau
from dlnotes.nn.layers import Layer, Dense, Dropout, _leaf_layers
from dlnotes.nn.losses import BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError
from dlnotes.nn.metrics import Precision, Recall, AUC
from dlnotes.nn.models import Sequential, Model, Input
from dlnotes.nn.optimizers import SGD, Adam
from dlnotes.nn.regularizers import L1L2, L2


def cancer():
    "The breast cancer data, standardized."
    X, y, _ = load_breast_cancer_data()
    return (X - X.mean(axis=0)) / X.std(axis=0), y


def mlp(out=10, act=None, s=0, hidden=32, **kw):
    seed(s)
    return Sequential([Dense(hidden, activation="relu", **kw), Dense(out, activation=act)])


def test_compile_with_a_single_metric_name_and_a_regression_loss(digits):
    Xtr, Xte, ytr, yte = digits
    m = mlp().compile("adam", "categorical_crossentropy", metrics="accuracy")  # a string, not a list
    h = m.fit(Xtr, ytr, epochs=2, verbose=0)
    assert list(h.history) == ["loss", "accuracy"] and 0 < h.history["accuracy"][-1] <= 1
    reg = mlp(out=1).compile("adam", "mse")  # no extra arguments for a regression model
    h = reg.fit(Xtr, to_numpy(ytr).astype(np.float32) / 9, epochs=2, verbose=0)
    assert list(h.history) == ["loss"]
    reg = mlp(out=1).compile("adam", "mse", metrics=["mae"])
    assert list(reg.fit(Xtr, to_numpy(ytr) / 9.0, epochs=1, verbose=0).history) == ["loss", "mae"]


def test_softmax_output_with_a_loss_by_name_trains_like_logits(digits):
    Xtr, _, ytr, _ = digits
    logits = mlp(s=3).compile(SGD(0.1), "categorical_crossentropy")
    probs = mlp(act="softmax", s=3).compile(SGD(0.1), "categorical_crossentropy")
    seed(9); a = logits.fit(Xtr, ytr, epochs=3, verbose=0).history["loss"]
    seed(9); b = probs.fit(Xtr, ytr, epochs=3, verbose=0).history["loss"]
    np.testing.assert_allclose(a, b, rtol=1e-3)  # the same model: softmax in the loss or in the layer
    with pytest.raises(ValueError, match=r"output 'dense_1' ends in a softmax activation, but the loss CategoricalCrossentropy\(from_logits=True\) expects logits"):
        mlp(act="softmax").compile("adam", CategoricalCrossentropy())
    with pytest.raises(ValueError, match="ends in a sigmoid activation"):
        mlp(out=1, act="sigmoid").compile("adam", BinaryCrossentropy(from_logits=True))
    assert mlp(out=1, act="sigmoid").compile("adam", BinaryCrossentropy(from_logits=False))._losses[0].from_logits is False


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate"])
def test_empty_inputs_are_refused(call):
    m = mlp().compile("adam", "categorical_crossentropy")
    X, y = np.zeros((0, 64), np.float32), np.zeros(0, np.int64)
    args = (X,) if call == "predict" else (X, y)
    with pytest.raises(ValueError, match=r"x is empty: it holds no examples \(shape \(0, 64\)\)"):
        getattr(m, call)(*args, **({"verbose": 0} if call == "fit" else {}))


def test_label_forms(digits):
    Xtr, _, ytr, _ = digits
    y = to_numpy(ytr)
    runs = {}
    for form, labels in {"int": y, "float": y.astype(np.float64), "column": y.reshape(-1, 1), "list": y.tolist()}.items():
        m = mlp(s=4).compile(SGD(0.1), "categorical_crossentropy")
        seed(1); runs[form] = m.fit(Xtr, labels, epochs=1, verbose=0).history["loss"]
    assert runs["float"] == runs["int"] == runs["column"] == runs["list"]
    m = mlp().compile("adam", "categorical_crossentropy")
    with pytest.raises(TypeError, match=r"categorical_crossentropy: y must hold numbers \(class labels as integers 0..K-1, or targets\), got dtype <U5"):
        m.fit(Xtr, np.array(["digit"] * len(y)), verbose=0)
    with pytest.raises(ValueError, match=r"class labels must be integers in \[0, 10\)"):
        m.fit(Xtr, y + 0.5, verbose=0)
    with pytest.raises(ValueError, match=r"y holds labels from 1 to 10; class labels must be integers in \[0, 10\)"):
        m.fit(Xtr, y + 1, verbose=0)


def test_shuffle_and_verbose_are_checked_and_verbose_2_prints_a_line_per_epoch(digits, capsys):
    Xtr, _, ytr, _ = digits
    m = mlp().compile("adam", "categorical_crossentropy")
    with pytest.raises(ValueError, match="fit: shuffle must be True or False, got 'yes'"): m.fit(Xtr, ytr, shuffle="yes", verbose=0)
    with pytest.raises(ValueError, match="fit: verbose must be one of 0, 1, 2, got 3"): m.fit(Xtr, ytr, verbose=3)
    m.fit(Xtr, ytr, epochs=3, verbose=2, validation_split=0.1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(l.startswith(f"Epoch {i + 1}/3 - ") and "val_accuracy: " in l for i, l in enumerate(lines))
    m.fit(Xtr, ytr, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_validation_split_holds_out_the_last_examples(digits):
    Xtr, _, ytr, _ = digits
    n = len(ytr)
    k = int(n * 0.2)
    a, b = mlp(s=5).compile(SGD(0.1), "categorical_crossentropy"), mlp(s=5).compile(SGD(0.1), "categorical_crossentropy")
    seed(2); ha = a.fit(Xtr, ytr, epochs=2, validation_split=0.2, verbose=0).history
    seed(2); hb = b.fit(Xtr[:n - k], ytr[:n - k], epochs=2, validation_data=(Xtr[n - k:], ytr[n - k:]), verbose=0).history
    assert ha == hb and list(ha) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    with pytest.raises(ValueError, match="validation_split must be a number in"): a.fit(Xtr, ytr, validation_split=1.0, verbose=0)
    with pytest.raises(ValueError, match="not both"): a.fit(Xtr, ytr, validation_split=0.2, validation_data=(Xtr, ytr), verbose=0)


def test_class_weight_and_sample_weight(digits):
    X, y = cancer()
    y = to_numpy(y)
    w = np.where(y == 0, 4.0, 1.0)
    a, b = mlp(out=1, s=6), mlp(out=1, s=6)
    seed(3); ha = a.fit(X, y, epochs=2, loss="binary_crossentropy", optimizer=SGD(0.05), class_weight={0: 4.0}, verbose=0).history
    seed(3); hb = b.fit(X, y, epochs=2, loss="binary_crossentropy", optimizer=SGD(0.05), sample_weight=w, verbose=0).history
    assert ha == hb  # class weights are per-example weights looked up from the labels
    # the evaluation's weighted loss: Σ w_i ℓ_i / m
    per = [a.evaluate(X[i:i + 1], y[i:i + 1])["loss"] for i in range(20)]
    assert a.evaluate(X[:20], y[:20], sample_weight=w[:20])["loss"] == pytest.approx(float(np.dot(w[:20], per)) / 20, rel=1e-5)
    # weighting the negatives raises their recall (the specificity) after training
    seed(4); plain = mlp(out=1, s=7); plain.fit(X, y, epochs=15, loss="binary_crossentropy", metrics=[Recall()], verbose=0)
    seed(4); heavy = mlp(out=1, s=7); heavy.fit(X, y, epochs=15, loss="binary_crossentropy", metrics=[Recall()], class_weight={1: 0.05}, verbose=0)
    assert heavy.evaluate(X, y)["recall"] < plain.evaluate(X, y)["recall"]
    with pytest.raises(ValueError, match="class_weight's classes must be an int in"): a.fit(X, y, class_weight={2: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight must be a non-empty dict"): a.fit(X, y, class_weight=[1, 2], verbose=0)
    with pytest.raises(ValueError, match="one non-negative weight per example"): a.fit(X, y, sample_weight=w[:5], verbose=0)


def test_batches_from_a_list_or_a_generator_equal_arrays_without_shuffling(digits):
    Xtr, _, ytr, _ = digits
    Xn, yn = to_numpy(Xtr), to_numpy(ytr)
    batches = [(Xn[s:s + 64], yn[s:s + 64]) for s in range(0, len(yn), 64)]
    ref = mlp(s=8).compile(SGD(0.1), "categorical_crossentropy").fit(Xtr, ytr, epochs=2, batch_size=64, shuffle=False, verbose=0).history
    got = mlp(s=8).compile(SGD(0.1), "categorical_crossentropy").fit(batches, epochs=2, verbose=0).history
    assert got == ref
    def endless():
        while True: yield from batches
    gen = mlp(s=8).compile(SGD(0.1), "categorical_crossentropy").fit(endless(), epochs=2, steps_per_epoch=len(batches), verbose=0).history
    assert gen == ref
    once = (b for b in batches)
    with pytest.raises(ValueError, match="gave no batches in epoch 2: a generator is used up after one pass"):
        mlp().compile("adam", "categorical_crossentropy").fit(once, epochs=2, verbose=0)
    with pytest.raises(ValueError, match=r"each batch of x must be a pair \(x, y\) or a triple"):
        mlp().fit([Xn[:5]], epochs=1, verbose=0) if False else mlp().fit([(Xn[:5],)], epochs=1, verbose=0)
    h = mlp().fit(batches[:3], epochs=1, validation_data=batches[3:5], verbose=0).history
    assert "val_loss" in h


def test_callbacks_in_fit(digits, tmp_path):
    Xtr, Xte, ytr, yte = digits
    m = mlp(s=9, hidden=64).compile(Adam(0.01), "categorical_crossentropy")
    stop = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(Xtr, ytr, epochs=60, validation_data=(Xte, yte), callbacks=[stop], verbose=0)
    n = len(h.history["loss"])
    best = int(np.argmin(h.history["val_loss"]))
    assert n < 60 and n == best + 3 and m.stop_training
    assert m.evaluate(Xte, yte)["loss"] == pytest.approx(h.history["val_loss"][best], rel=1e-6)  # the best epoch's weights
    lrs = []
    class Spy(Callback):
        def on_epoch_begin(self, epoch, logs=None): lrs.append(self.model.optimizer.learning_rate)
    m.fit(Xtr, ytr, epochs=3, callbacks=[LearningRateScheduler(lambda e, lr: 0.001 * (e + 1)), Spy()], verbose=0)
    assert lrs == [0.001, 0.002, 0.003]
    nan = mlp(out=1, s=1).compile(SGD(1e30), "mse")
    with np.errstate(all="ignore"): h = nan.fit(Xtr, to_numpy(ytr) * 1e10, epochs=5, batch_size=16, callbacks=[TerminateOnNaN()], verbose=0)
    assert len(h.history["loss"]) == 1 and not np.isfinite(h.history["loss"][0])


def test_metrics_by_name_and_object():
    X, y = cancer()
    m = mlp(out=1)
    h = m.fit(X, y, epochs=3, loss="binary_crossentropy", metrics=["accuracy", Precision(), Recall(), AUC()], validation_split=0.2, verbose=0)
    assert list(h.history) == ["loss", "accuracy", "precision", "recall", "auc", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_auc"]
    assert all(0 <= v <= 1 for k, vs in h.history.items() if k != "loss" and "loss" not in k for v in vs)
    with pytest.raises(ValueError, match="unknown metric 'f1'"): m.compile("adam", "binary_crossentropy", metrics=["f1"])


def test_penalties_and_clipping_are_gradient_checked():
    seed(10)
    m = Sequential([Dense(5, activation="tanh", kernel_regularizer=L1L2(0.01, 0.02), bias_regularizer=L2(0.1)),
                    Dense(3, kernel_regularizer="l2")])
    m.build((4,))
    for l in m.layers: as_float64(l)
    m.layers[0].params["b"][...] = xp.asarray(np.linspace(-1, 1, 5))
    m.compile(SGD(0.0001), "categorical_crossentropy")
    X, y = randn(7, 4, dtype=np.float64), xp.asarray([0, 1, 2, 0, 1, 2, 0])
    loss = m._losses[0]
    def J():
        return float(loss.forward(m.forward(X), loss.targets(y, (7, 3)))) + sum(float(l.regularization_loss()) for l in m.layers)
    loss.forward(m.forward(X), loss.targets(y, (7, 3))); m.backward(loss.backward(), need_dx=False)
    for l in m.layers: l.regularization_loss(add_gradients=True)
    for k in m.params:
        assert rel_diff(to_numpy(m.grads[k]), numerical_grad(lambda _: J(), m.params[k])) < 1e-7, k
    # fit's loss is the data loss plus the penalties, and evaluate reports the same
    penalty = sum(float(l.regularization_loss()) for l in m.layers)
    assert penalty > 0 and m.evaluate(X, y)["loss"] == pytest.approx(J(), rel=1e-12)
    # clipping: one step of SGD with clipnorm moves each parameter by -lr * g * c / max(|g|, c), g the checked gradient
    c = 1e-3
    before = {k: to_numpy(v).copy() for k, v in m.params.items()}
    grads = {}
    loss.forward(m.forward(X, training=True), loss.targets(y, (7, 3))); m.backward(loss.backward(), need_dx=False)
    for l in m.layers: l.regularization_loss(add_gradients=True)
    grads = {k: to_numpy(v).copy() for k, v in m.grads.items()}
    m.compile(SGD(0.5, clipnorm=c), "categorical_crossentropy")
    m.fit(X, y, epochs=1, batch_size=7, shuffle=False, verbose=0)
    for k, g in grads.items():
        np.testing.assert_allclose(to_numpy(m.params[k]), before[k] - 0.5 * g * c / max(np.linalg.norm(g), c), rtol=1e-10, atol=1e-14)


def test_caches_are_released_after_fit_predict_and_evaluate(digits):
    Xtr, Xte, ytr, yte = digits
    m = Sequential([Dense(64, activation="relu"), Dropout(0.2), Dense(10)])
    m.fit(Xtr, ytr, epochs=1, verbose=0)
    after_fit = len(pickle.dumps(m))
    big = np.tile(to_numpy(Xtr), (40, 1))  # 53,880 examples
    m.predict(big)
    assert len(pickle.dumps(m)) == after_fit
    m.evaluate(big, np.tile(to_numpy(ytr), 40))
    assert len(pickle.dumps(m)) == after_fit
    assert all(l.cache is None for l in m.layers) and m.cache is None and m._losses[0].cache is None and m.layers[1].mask is None
    assert after_fit < 25 * 4 * m.count_params()  # weights, gradients, optimizer state and scratch: no batch of data


def test_several_outputs_with_loss_weights(digits):
    Xtr, _, ytr, _ = digits
    seed(11)
    x = Input((64,))
    h = Dense(32, activation="relu")(x)
    digit, parity = Dense(10, name="digit")(h), Dense(1, name="odd")(h)
    m = Model(x, [digit, parity])
    odd = (to_numpy(ytr) % 2).astype(np.float32)
    m.compile("adam", {"digit": "categorical_crossentropy", "odd": "binary_crossentropy"}, loss_weights={"odd": 0.5})
    logs = m.evaluate(Xtr, [ytr, odd])
    assert list(logs) == ["loss", "digit_loss", "digit_accuracy", "odd_loss", "odd_accuracy"]
    assert logs["loss"] == pytest.approx(logs["digit_loss"] + 0.5 * logs["odd_loss"], rel=1e-6)
    h = m.fit(Xtr, {"digit": ytr, "odd": odd}, epochs=3, verbose=0).history
    assert h["digit_accuracy"][-1] > 0.5 and h["odd_accuracy"][-1] > 0.6
    only = Model(x, [digit, parity]).compile("adam", [None, "binary_crossentropy"])  # the digit head is not trained
    W0 = to_numpy(only.params["digit/W"]).copy()
    only.fit(Xtr, [None, odd], epochs=1, verbose=0)
    np.testing.assert_array_equal(to_numpy(only.params["digit/W"]), W0)
    with pytest.raises(ValueError, match=r"loss has 3 entries, the model has 2 outputs \['digit', 'odd'\]"):
        m.compile("adam", ["mse"] * 3)
    with pytest.raises(ValueError, match=r"y\['odd'\] is missing: output 'odd' has the loss"): m.fit(Xtr, [ytr, None], verbose=0)


class _Lookup(Layer):
    "A stand-in for an embedding: integer indices in, rows of a table out (refuses floats, as an Embedding must)."
    takes_indices = True
    variable_axes = (0,)
    def build(self, input_shape):
        super().build(input_shape); self.params = {"T": randn(10, 3)}; self.grads = {"T": xp.zeros((10, 3))}
    def call(self, x, training=False):
        if x.dtype.kind not in "iu": raise ValueError(f"layer {self.name!r} takes integer indices, got dtype {x.dtype}")
        self.cache = x
        return self.params["T"][x]
    def backward(self, dy):
        g = xp.zeros_like(self.params["T"])
        for i, d in zip(self.cache.reshape(-1), dy.reshape(-1, 3)): g[int(i)] += d
        self.grads = {"T": g}


def test_integer_inputs_reach_a_layer_that_takes_indices():
    from dlnotes.nn.graphs import Input
    from dlnotes.nn.models import Model
    seed(11)
    idx, y = np.arange(24).reshape(8, 3) % 10, randn(8, 3, 2)
    for model in (Sequential([_Lookup(), Dense(2)]), Sequential([Input((None,)), _Lookup(), Dense(2)])):
        model.compile("adam", "mse")
        h = model.fit(idx, y, epochs=2, batch_size=4, verbose=0)
        assert np.isfinite(h.history["loss"]).all() and model.predict(idx[:2]).shape == (2, 3, 2)
    inp = Input((None,))
    graph = Model(inp, Dense(2)(_Lookup()(inp)))
    graph.compile("adam", "mse")
    graph.fit(idx, y, epochs=1, verbose=0)
    assert graph.evaluate(idx, y)["loss"] >= 0
