"dlnotes.seq.vanishing: the recall task, gradient norms by distance (checked against an initial state's gradient), decay rates, gate biases, the training helpers, and the sweep script and its saved results."
import importlib.util, json, math
from pathlib import Path

import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy, xp
from dlnotes.gradcheck import as_float64
from dlnotes.nn.layers import Dense
from dlnotes.nn.losses import CategoricalCrossentropy
from dlnotes.nn.models import Sequential
from dlnotes.nn.optimizers import SGD
from dlnotes.seq.recurrent import GRU, LSTM, SimpleRNN
from dlnotes.seq.vanishing import (CELLS, decay_per_step, gradient_norm, hidden_grad_norms, norms_by_distance,
                                   open_gate_bias, recall_model, recall_task, train_recall, train_with_norms)

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the task

def test_recall_task_shapes_labels_and_seeds():
    X, y = recall_task(50, 7, n_symbols=3, seed=1)
    X, y = to_numpy(X), to_numpy(y)
    assert X.shape == (50, 7, 3) and y.shape == (50,) and X.dtype == np.float32
    np.testing.assert_array_equal(X.sum(-1), 1)
    np.testing.assert_array_equal(X[:, 0].argmax(-1), y)
    np.testing.assert_array_equal(to_numpy(recall_task(50, 7, 3, seed=1)[0]), X)  # a seed gives the same data
    assert not np.array_equal(to_numpy(recall_task(50, 7, 3, seed=2)[0]), X)
    assert set(np.unique(y)) == {0, 1, 2}


@pytest.mark.parametrize("args, msg", [((0, 5), "m must be a positive int"), ((3, 0), "T must be a positive int"),
                                       ((3, 5, 1), "n_symbols must be an int >= 2"), ((3, 2.5), "T must be a positive int")])
def test_recall_task_bad_arguments(args, msg):
    with pytest.raises(ValueError, match=f"recall_task: {msg}"):
        recall_task(*args)


# ---------------------------------------------------------------- norms and rates

def test_norms_by_distance_against_a_loop():
    seed(1)
    H = to_numpy(randn(4, 6, 3, dtype=np.float64))
    want = [math.sqrt(sum(float(H[i, t, u]) ** 2 for i in range(4) for u in range(3))) for t in range(5, -1, -1)]
    np.testing.assert_allclose(norms_by_distance(H), want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"hidden_grads must have shape \(batch, T, units\), got \(4, 6\)"):
        norms_by_distance(H[..., 0])


def test_decay_per_step():
    assert decay_per_step([2.0 * 0.7 ** k for k in range(20)]) == pytest.approx(0.7, rel=1e-12)
    assert decay_per_step([1.5 ** k for k in range(10)], start=2, stop=8) == pytest.approx(1.5, rel=1e-12)
    rng = np.random.default_rng(0)  # noise around a geometric decay: the fit recovers the rate
    noisy = 0.9 ** np.arange(200) * np.exp(rng.normal(0, 0.3, 200))
    assert decay_per_step(noisy) == pytest.approx(0.9, abs=0.005)
    for bad in ([1.0], [1.0, -1.0], [1.0, 0.0]):
        with pytest.raises(ValueError, match="two or more positive norms"):
            decay_per_step(bad)


def test_gradient_norm_of_layers_and_nested_models():
    d1, d2 = Dense(2), Dense(1)
    d1.build((3,)); d2.build((2,))
    d1.grads = {"W": xp.full((3, 2), 2.0), "b": xp.zeros(2)}
    d2.grads = {"W": xp.asarray([[3.0], [4.0]]), "b": xp.asarray([12.0])}
    assert gradient_norm(d1) == pytest.approx(math.sqrt(24))
    assert gradient_norm([d1, d2]) == pytest.approx(math.sqrt(24 + 25 + 144))
    outer = Sequential([Sequential([d1]), d2])
    assert gradient_norm(outer) == pytest.approx(math.sqrt(24 + 25 + 144))


# ---------------------------------------------------------------- the models

def test_open_gate_bias():
    seed(2)
    lstm, gru = recall_model("LSTM", 3).layers[0], recall_model("GRU", 2).layers[0]
    np.testing.assert_array_equal(to_numpy(open_gate_bias(lstm, 2.5).params["bias"])[3:6], 2.5)
    np.testing.assert_array_equal(to_numpy(lstm.params["bias"])[[0, 1, 2, 6, 7, 8, 9, 10, 11]], 0)
    b = to_numpy(open_gate_bias(gru, 4.0).params["bias"])
    np.testing.assert_array_equal(b, [[4, 4, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    # a GRU whose update gate is almost shut keeps its state: the gradient hardly decays
    seed(3)
    X, y = recall_task(64, 30, seed=3)
    keep = recall_model("GRU", 16, gate_bias=8.0)
    assert decay_per_step(hidden_grad_norms(keep, X, y)) > 0.99
    for bad in (SimpleRNN(2), LSTM(2), LSTM(2, use_bias=False)):
        if bad.units == 2 and isinstance(bad, LSTM) and not bad.use_bias: bad.build((None, 3))
        with pytest.raises(ValueError, match="open_gate_bias: layer must be a built GRU or LSTM with a bias"):
            open_gate_bias(bad, 1.0)
    with pytest.raises(ValueError, match="open_gate_bias: value must be a finite number"):
        open_gate_bias(lstm, float("nan"))


def test_recall_model():
    for name, cls in CELLS.items():
        model = recall_model(name, units=5, n_symbols=3)
        assert isinstance(model.layers[0], cls) and model.layers[0].units == 5 and model.layers[1].units == 3
        assert tuple(model.predict(recall_task(2, 4, 3, seed=0)[0]).shape) == (2, 3)
    with pytest.raises(ValueError, match="recall_model: cell must be one of 'SimpleRNN', 'GRU', 'LSTM', got 'rnn'"):
        recall_model("rnn")


@pytest.mark.parametrize("cell", ["SimpleRNN", "GRU", "LSTM"])
def test_hidden_grad_norms_are_the_gradients_of_the_states(cell):
    "‖∂J/∂a<t>‖ from hidden_grads equals the norm of the gradient of the initial state of the sequence's tail."
    seed(4)
    X, y = recall_task(6, 7, seed=4)
    X = X.astype(np.float64)
    model = recall_model(cell, units=3)
    for layer in model.layers: as_float64(layer)
    norms = hidden_grad_norms(model, X, y)
    rnn, dense = model.layers
    head = CELLS[cell](3, return_state=True)
    head.build((None, 4)); head.params = rnn.params
    loss = CategoricalCrossentropy()
    for t in (1, 3, 5):
        states = head(X[:, :t + 1])[1:]  # the states after step t
        out = dense(rnn(X[:, t + 1:], initial_state=states))
        loss.forward(out, y)
        grads = rnn.backward(dense.backward(loss.backward()))
        assert float(np.linalg.norm(to_numpy(grads[1]))) == pytest.approx(norms[6 - t], rel=1e-10)


# ---------------------------------------------------------------- training helpers

def test_train_recall_learns_a_short_task():
    r = train_recall("SimpleRNN", 5, epochs=3, n_train=512, n_test=256)
    assert set(r) == {"cell", "T", "gate_bias", "val_accuracy", "norms_init", "norms_trained", "seconds"}
    assert len(r["val_accuracy"]) == 3 and r["val_accuracy"][-1] >= 0.9
    assert len(r["norms_init"]) == len(r["norms_trained"]) == 5
    json.dumps(r)  # plain data, ready for the sweep's JSON


def test_train_with_norms_records_the_gradient_before_clipping():
    X, y = recall_task(100, 6, seed=5)
    hist = {}
    for name, opt in (("plain", SGD(0.1)), ("clipped", SGD(0.1, global_clipnorm=1e-3))):
        seed(5); model = recall_model("SimpleRNN", 8)
        w0 = [w.copy() for w in model.get_weights()]
        hist[name] = train_with_norms(model, opt, X, y, epochs=2, batch_size=32, seed=0)
        if name == "clipped":  # every step moved the weights by at most α c
            moved = math.sqrt(sum(float(((to_numpy(a) - b) ** 2).sum()) for a, b in zip(model.get_weights(), w0)))
            assert moved <= 8 * 0.1 * 1e-3 + 1e-9
    assert len(hist["plain"]["loss"]) == len(hist["plain"]["grad_norm"]) == 2 * 4  # ceil(100 / 32) = 4 steps per epoch
    assert hist["plain"]["grad_norm"][0] == pytest.approx(hist["clipped"]["grad_norm"][0], rel=1e-6)  # same first gradient
    with pytest.raises(ValueError, match="train_with_norms: epochs must be a positive int"):
        train_with_norms(recall_model("GRU", 2), SGD(0.1), X, y, epochs=0)


# ---------------------------------------------------------------- the sweep

def test_saved_sweep_is_complete_and_consistent():
    sweep = json.loads((ROOT / "weights" / "vanishing_sweep.json").read_text())
    cfg, records = sweep["config"], sweep["records"]
    assert len(records) == len(cfg["lengths"]) * len(cfg["runs"])
    for r in records:
        assert len(r["val_accuracy"]) == cfg["epochs"] and len(r["norms_init"]) == len(r["norms_trained"]) == r["T"]
        assert all(0 <= a <= 1 for a in r["val_accuracy"]) and all(n > 0 for n in r["norms_init"])
    # the initial norms are reproducible: the same initialisation and data, no training
    r = next(r for r in records if r["cell"] == "GRU" and r["gate_bias"] is None and r["T"] == 10)
    seed(0)
    X, y = recall_task(512, 10, seed=2010)
    np.testing.assert_allclose(hidden_grad_norms(recall_model("GRU"), X[:256], y[:256]), r["norms_init"], rtol=1e-3)


def test_sweep_script_writes_its_json(tmp_path):
    spec = importlib.util.spec_from_file_location("vanishing_sweep", ROOT / "scripts" / "vanishing_sweep.py")
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    out = tmp_path / "sweep.json"
    script.main(["--epochs", "1", "--lengths", "3", "--out", str(out)])
    data = json.loads(out.read_text())
    assert [(r["cell"], r["gate_bias"], r["T"]) for r in data["records"]] == [(c, b, 3) for c, b in script.RUNS]
    assert data["config"]["epochs"] == 1 and data["config"]["lengths"] == [3]
