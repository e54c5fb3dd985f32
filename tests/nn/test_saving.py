"save / load_model / save_weights / load_weights / get_weights / set_weights of dlnotes.nn.saving (through dlnotes.nn.models): exact round trips, an interrupted training resumed bit for bit, and the files refused."
import os, pickle

import numpy as np
import pytest

from dlnotes.backend import seed, randn, xp, to_numpy
from dlnotes.nn.batchnorm import BatchNormalization
from dlnotes.nn.layers import Layer, Dense, Dropout, register_layer, LAYERS
from dlnotes.nn.initializers import RandomNormal
from dlnotes.nn.merging import Add, Concatenate, Dot
from dlnotes.nn.metrics import AUC
from dlnotes.nn.models import Sequential, Model, Input, load_model
from dlnotes.nn.optimizers import Adam
from dlnotes.nn.regularizers import L2
from dlnotes.nn.saving import from_json, to_json
from dlnotes.vision.cnn import Conv2D, MaxPooling2D, Flatten


def _models():
    "A Sequential with dropout, batch norm and penalties; a two-input graph; a Siamese model with a shared encoder; a CNN."
    seed(0)
    seq = Sequential([Dense(32, activation="relu", kernel_initializer=RandomNormal(stddev=0.1), kernel_regularizer=L2(1e-4)),
                      BatchNormalization(), Dropout(0.2), Dense(10)], name="mlp")
    a, b = Input((32,), name="left"), Input((32,), name="right")
    two = Model([a, b], Dense(10)(Concatenate()([Dense(16, activation="tanh")(a), Dense(16, activation="tanh")(b)])), name="two")
    enc = Sequential([Input((32,)), Dense(16, activation="relu"), Dense(8)], name="encoder")
    p, q = Input((32,), name="p"), Input((32,), name="q")
    siam = Model([p, q], Dense(1)(Dot(axes=1, normalize=True)([enc(p), enc(q)])), name="siamese")
    img = Input((8, 8, 1))
    h = MaxPooling2D(2)(Conv2D(4, 3, padding="same", activation="relu", kernel_regularizer="l2")(img))
    cnn = Model(img, Dense(10)(Flatten()(h)), name="cnn")
    return seq, two, siam, cnn


def _data(model, X, y):
    "The inputs and targets of one of _models() from the digits."
    if model.name == "two": return [X[:, :32], X[:, 32:]], y
    if model.name == "siamese": return [X[:, :32], X[::-1, :32]], (to_numpy(y) == to_numpy(y)[::-1]).astype(np.float32)
    if model.name == "cnn": return X.reshape(-1, 8, 8, 1), y
    return X, y


@pytest.mark.parametrize("i", range(4), ids=["sequential", "two_inputs", "siamese", "cnn"])
def test_round_trip_is_exact_and_training_resumes_bit_for_bit(i, digits, tmp_path):
    Xtr, Xte, ytr, yte = digits
    model = _models()[i]
    x, y = _data(model, Xtr, ytr)
    xt, _ = _data(model, Xte, yte)
    loss = "binary_crossentropy" if model.name == "siamese" else "categorical_crossentropy"
    model.compile(Adam(0.005), loss, metrics=["accuracy", AUC()] if model.name == "siamese" else None)
    seed(1); model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded) is type(model) and [l.name for l in loaded.layers] == [l.name for l in model.layers]
    np.testing.assert_array_equal(to_numpy(loaded.predict(xt)), to_numpy(model.predict(xt)))  # the same predictions, exactly
    assert loaded.optimizer.iterations == model.optimizer.iterations and loaded.optimizer.get_config() == model.optimizer.get_config()
    seed(7); h1 = model.fit(x, y, epochs=2, batch_size=64, verbose=0).history
    seed(7); h2 = loaded.fit(x, y, epochs=2, batch_size=64, verbose=0).history
    assert h1 == h2 and len(h1) >= 2  # the same losses and metrics, bit for bit
    for w1, w2 in zip(model.get_weights(), loaded.get_weights()): np.testing.assert_array_equal(w1, w2)


def test_weights_files_and_lists(digits, tmp_path):
    seq = _models()[0]
    seq.build((64,))
    names = list(seq.weight_dict())
    assert names == ["dense/W", "dense/b", "batch_normalization/gamma", "batch_normalization/beta",
                     "batch_normalization/moving_mean", "batch_normalization/moving_variance", "dense_1/W", "dense_1/b"]
    seq.save_weights(tmp_path / "w.npz")
    other = _models()[0]; other.build((64,))
    other.set_weights([w * 0 for w in other.get_weights()])
    other.load_weights(tmp_path / "w.npz")
    for a, b in zip(seq.get_weights(), other.get_weights()): np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="model 'mlp' has 8 weights, got 7"): other.set_weights(other.get_weights()[:7])
    bad = other.get_weights(); bad[0] = bad[0][:3]
    with pytest.raises(ValueError, match=r"weight dense/W has shape \(64, 32\), got \(3, 32\)"): other.set_weights(bad)
    small = Sequential([Dense(32), Dense(10)], name="mlp"); small.build((64,))
    with pytest.raises(ValueError, match=r"missing none, unexpected \['batch_normalization/beta'"): small.load_weights(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="holds weights only"): load_model(tmp_path / "w.npz")
    umask = os.umask(0o022); os.umask(umask)
    try:  # files get the permissions open() gives, not the owner-only ones of a temporary file
        os.umask(0o022); seq.save(tmp_path / "m.npz"); seq.save_weights(tmp_path / "w2.npz")
        assert [oct((tmp_path / n).stat().st_mode & 0o777) for n in ("m.npz", "w2.npz")] == ["0o644", "0o644"]
    finally: os.umask(umask)


def test_custom_layers_register_to_be_loadable(tmp_path):
    class Scale(Layer):
        def __init__(self, factor:float=2.0, name:str=None):
            super().__init__(name); self.factor = factor
        def call(self, x, training=False): return x * self.factor
        def backward(self, dy): return dy * self.factor
    model = Sequential([Dense(3), Scale(3.0)]); model.build((4,))
    model.save(tmp_path / "s.npz")
    LAYERS.pop("Scale", None)
    with pytest.raises(ValueError, match="unknown layer class 'Scale': a layer defined outside dlnotes must be registered"):
        load_model(tmp_path / "s.npz")
    register_layer(Scale)
    loaded = load_model(tmp_path / "s.npz")
    assert loaded.layers[1].factor == 3.0
    X = randn(5, 4)
    np.testing.assert_array_equal(to_numpy(loaded.predict(X)), to_numpy(model.predict(X)))
    LAYERS.pop("Scale")


def test_refused_files_run_nothing_and_write_nothing(tmp_path):
    model = _models()[0]; model.build((64,)); model.compile("adam", "categorical_crossentropy")
    model.save(tmp_path / "good.npz")
    raw = (tmp_path / "good.npz").read_bytes()
    marker = tmp_path / "ran"
    class Evil:
        def __reduce__(self): return (open, (str(marker), "w"))
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps(Evil()))
    (tmp_path / "truncated.npz").write_bytes(raw[: len(raw) * 2 // 3])
    np.savez(tmp_path / "objects.npz", config=np.frombuffer(b'{"format": "dlnotes.model", "version": 1}', np.uint8),
             w=np.array([{"a": 1}], dtype=object))
    z = dict(np.load(tmp_path / "good.npz"))
    z["w/dense/W"] = np.zeros((5, 5), np.float32)
    np.savez(tmp_path / "mismatch.npz", **z)
    (tmp_path / "text.npz").write_text("not a model")
    before = sorted(os.listdir(tmp_path))
    cases = {"pickle.npz": "it is a pickle, which is never loaded", "truncated.npz": "damaged or truncated file",
             "objects.npz": "Object arrays cannot be loaded when allow_pickle=False", "text.npz": "not a dlnotes model file",
             "mismatch.npz": r"the file's weight dense/W has shape \(5, 5\), model 'mlp' has \(64, 32\)"}
    for name, msg in cases.items():
        with pytest.raises(ValueError, match=msg): load_model(tmp_path / name)
    assert not marker.exists() and sorted(os.listdir(tmp_path)) == before
    # a failed save leaves the earlier file as it was
    from dlnotes.nn.reshaping import Lambda
    broken = Sequential([Dense(2), Lambda(lambda x: x * 2, backward=lambda dy, x: dy * 2)]); broken.build((3,))
    with pytest.raises(ValueError, match="lambda"): broken.save(tmp_path / "good.npz")
    assert (tmp_path / "good.npz").read_bytes() == raw and sorted(os.listdir(tmp_path)) == before


def test_configurations_are_data():
    assert to_json({"shape": (None, 3), "n": np.int64(2), "reg": L2(0.5)}) == {
        "shape": [None, 3], "n": 2, "reg": {"__object__": "L2", "config": {"l2": 0.5}}}
    assert from_json({"__object__": "RandomNormal", "config": {"stddev": 0.3, "mean": 0.0}}).stddev == 0.3
    with pytest.raises(ValueError, match="unknown class 'subprocess.Popen'"): from_json({"__object__": "subprocess.Popen", "config": {}})
    with pytest.raises(ValueError, match=r"cannot save <built-in function len>"): to_json({"f": len})
    with pytest.raises(ValueError, match="non-finite"): to_json(float("nan"))
    cfg = _models()[2].get_config()
    cfg["layers"] = [l for l in cfg["layers"] if l["config"].get("name") != "encoder"]
    with pytest.raises(ValueError, match=r"the calls of layers \['dense', 'dot'\] take tensors that are never made"):
        Model.from_config(cfg)


def test_a_fresh_process_loads_layers_of_modules_it_has_not_imported(tmp_path):
    "load_model in a new interpreter that imported only dlnotes.nn.models finds Conv2D (dlnotes.vision.cnn) by itself."
    import subprocess, sys
    cnn = _models()[3]
    cnn.build((8, 8, 1)); cnn.save(tmp_path / "cnn.npz")
    code = ("import sys; from dlnotes.nn.models import load_model; assert 'dlnotes.vision.cnn' not in sys.modules; "
            "m = load_model(sys.argv[1]); print(sorted({type(l).__name__ for l in m.layers}))")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "cnn.npz")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1500:]
    assert "Conv2D" in r.stdout and "MaxPooling2D" in r.stdout, r.stdout


def test_a_model_compiled_with_mse_loads_with_its_loss_and_metric(tmp_path):
    # MeanSquaredError is both a loss and a metric: the saved configuration must say which
    from dlnotes.nn.losses import MeanSquaredError as MSELoss
    from dlnotes.nn.metrics import MeanSquaredError as MSEMetric
    seed(4)
    model = Sequential([Dense(2)])
    model.compile("adam", "mse", metrics=["mse"])
    x, y = randn(6, 3), randn(6, 2)
    model.fit(x, y, epochs=1, verbose=0)
    model.save(tmp_path / "mse.npz")
    again = load_model(tmp_path / "mse.npz")
    assert type(again._losses[0]) is MSELoss
    assert any(type(m) is MSEMetric for m in again._metrics[0])
    assert again.evaluate(x, y) == model.evaluate(x, y)


def test_set_weights_copies_the_callers_arrays():
    seed(5)
    model = Sequential([Dense(2)]); model.build((3,))
    weights = [np.ones((3, 2), np.float32), np.zeros(2, np.float32)]
    model.set_weights(weights)
    model.layers[0].params["W"] += 1  # an optimizer step writes in place
    np.testing.assert_array_equal(weights[0], np.ones((3, 2), np.float32))
