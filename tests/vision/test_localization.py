"Localization targets, decoding and metrics, the localization loss (float64 gradient checks, a loop reference, training), and sliding windows run window by window and convolutionally, for dlnotes.vision.localization."
import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import seed, randn, rand, to_numpy, to_device, xp
from dlnotes.gradcheck import grad_check
from dlnotes.nn.layers import Dense, Dropout, Activation
from dlnotes.nn.models import Sequential
from dlnotes.nn.optimizers import Adam
from dlnotes.vision.boxes import iou
from dlnotes.vision.cnn import Conv2D, MaxPooling2D, AveragePooling2D, Flatten
from dlnotes.vision.scenes import make_scenes
from dlnotes.vision.localization import (LOC_SCENES, Localization, LocalizationCache, LocalizationLoss, decode_localization,
                                         dense_to_conv, localization_metrics, localization_model, localization_scenes,
                                         localization_target, sliding_window_scores, window_classifier, window_dataset)
from dlnotes.vision.localization import _dense_kernel


# ---------------------------------------------------------------- targets, decoding, metrics

def _random_boxes(rng, m, H, W, K):
    "m images, each with zero or one random box in an H x W image, and labels."
    boxes, labels = [], []
    for _ in range(m):
        if rng.random() < 0.3: boxes.append(np.zeros((0, 4))); labels.append(np.zeros(0, dtype=int)); continue
        x1, y1 = rng.uniform(0, W - 2), rng.uniform(0, H - 2)
        boxes.append(np.array([[x1, y1, rng.uniform(x1 + 1, W), rng.uniform(y1 + 1, H)]])); labels.append(rng.integers(0, K, 1))
    return boxes, labels


@pytest.mark.parametrize("H,W,K", [(32, 32, 4), (64, 48, 3), (20, 50, 1)])
def test_target_entries_and_round_trip(H, W, K):
    rng = np.random.default_rng(H + W + K)
    boxes, labels = _random_boxes(rng, 30, H, W, K)
    Y = to_numpy(localization_target(boxes, labels, (H, W), K))
    assert Y.shape == (30, 5 + K)
    dec = decode_localization(to_device(Y.astype(np.float64)), (H, W), from_logits=False)
    for i, (b, c) in enumerate(zip(boxes, labels)):
        if not len(b):
            assert (Y[i] == 0).all(); continue
        x1, y1, x2, y2 = b[0]
        np.testing.assert_allclose(Y[i, :5], [1, (x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (y2 - y1) / H, (x2 - x1) / W], rtol=1e-6)
        assert Y[i, 5:].sum() == 1 and Y[i, 5 + c[0]] == 1
        np.testing.assert_allclose(to_numpy(dec.boxes[i]), b[0], atol=1e-3)
        assert int(dec.labels[i]) == c[0]
    np.testing.assert_array_equal(to_numpy(dec.p), Y[:, 0])


def test_decode_probability_and_negative_sizes():
    y = xp.asarray([[0.0, .5, .5, -.2, .4, 0, 1], [np.log(3), .5, .5, .2, .4, 2, 1]])
    dec = decode_localization(y, 10)
    assert isinstance(dec, Localization)
    np.testing.assert_allclose(to_numpy(dec.p), [0.5, 0.75], rtol=1e-9)
    np.testing.assert_allclose(to_numpy(dec.boxes), [[3, 5, 7, 5], [3, 4, 7, 6]], atol=1e-9)  # height -0.2 -> empty box
    assert to_numpy(dec.labels).tolist() == [1, 0]


def test_target_bad_input():
    b, l = [np.array([[1, 2, 5, 6]])], [np.array([0])]
    fails(lambda: localization_target([np.array([[5, 2, 1, 6]])], l, 10, 2), contains="x2 > x1 and y2 > y1")
    fails(lambda: localization_target([np.array([[1, 6, 5, 6]])], l, 10, 2), contains="x2 > x1 and y2 > y1")
    fails(lambda: localization_target(b, [np.array([-1])], 10, 2), contains="labels must be class indices in [0, 2), got [-1]")
    fails(lambda: localization_target(b, [np.array([0.5])], 10, 2), contains="labels must be class indices in [0, 2)")
    fails(lambda: localization_target(b, l + l, 10, 2), contains="1 images of boxes but 2 of labels")
    fails(lambda: localization_target(b, l, 10, 0), contains="n_classes must be a positive int, got 0")
    fails(lambda: localization_target(b, l, (10, 10, 1), 2), contains="image_size must be an int or a pair (H, W), got (10, 10, 1)")
    fails(lambda: decode_localization(xp.zeros(7), 10), contains="y must be an (m, 5 + K) array with K >= 1, got shape (7,)")


def test_metrics_against_a_loop():
    rng = np.random.default_rng(5)
    boxes, labels = _random_boxes(rng, 40, 32, 32, 3)
    Y = localization_target(boxes, labels, 32, 3).astype(np.float64)
    P = Y + to_device(rng.normal(0, 0.05, Y.shape))
    P[:, 0] = to_device(rng.normal(0, 3, 40))
    met = localization_metrics(P, Y, 32)
    P_, Y_ = to_numpy(P), to_numpy(Y)
    ious, hits, present = [], [], []
    for i in range(40):
        present.append((1 / (1 + np.exp(-P_[i, 0])) > 0.5) == (Y_[i, 0] == 1))
        if Y_[i, 0] != 1: continue
        bx, by, bh, bw = P_[i, 1:5] * [32, 32, 32, 32]
        bh, bw = max(bh, 0), max(bw, 0)
        ious.append(iou((bx - bw / 2, by - bh / 2, bx + bw / 2, by + bh / 2), boxes[i][0]))
        hits.append(P_[i, 5:].argmax() == labels[i][0])
    np.testing.assert_allclose(met["iou"], ious, rtol=1e-5)  # the targets are float32
    assert met["mean_iou"] == pytest.approx(np.mean(ious)) and met["accuracy"] == pytest.approx(np.mean(hits))
    assert met["presence_accuracy"] == pytest.approx(np.mean(present))


# ---------------------------------------------------------------- the loss

def _targets(m, K, seed_):
    "Random float64 targets: about half the images hold an object of a random class."
    rng = np.random.default_rng(seed_)
    Y = np.zeros((m, 5 + K))
    for i in range(m):
        if i % 2 == 0 or rng.random() < 0.3:
            Y[i, :5] = 1, *rng.uniform(0.1, 0.9, 4)
            Y[i, 5 + rng.integers(K)] = 1
    return to_device(Y)


@pytest.mark.parametrize("m,K", [(1, 1), (6, 3), (9, 4), (16, 10)])
@pytest.mark.parametrize("box_weight", [0.0, 1.0, 5.0])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_gradcheck(m, K, box_weight, weighted):
    seed(m * K + int(box_weight))
    Y = _targets(m, K, m + K)
    w = rand(m, dtype=np.float64) * 2 if weighted else None
    loss = LocalizationLoss(box_weight)
    P = randn(m, 5 + K, dtype=np.float64) * 2
    loss.forward(P, Y, w)
    d = grad_check(lambda: loss.forward(P, Y, w), P, loss.backward(), tol=1e-7)
    assert d["all"] < 1e-7


def test_loss_against_a_loop_reference():
    seed(11)
    m, K, lam = 12, 4, 3.0
    Y, P, w = _targets(m, K, 1), randn(m, 5 + K, dtype=np.float64) * 3, rand(m, dtype=np.float64)
    Y_, P_, w_ = to_numpy(Y), to_numpy(P), to_numpy(w)
    total = 0.0
    for i in range(m):
        p, a = Y_[i, 0], 1 / (1 + np.exp(-P_[i, 0]))
        L = -(p * np.log(a) + (1 - p) * np.log(1 - a))
        if p == 1:
            s = np.exp(P_[i, 5:]) / np.exp(P_[i, 5:]).sum()
            L += lam * ((P_[i, 1:5] - Y_[i, 1:5]) ** 2).sum() - np.log(s[Y_[i, 5:].argmax()])
        total += w_[i] * L
    assert float(LocalizationLoss(lam)(P, Y, w)) == pytest.approx(total / m, rel=1e-12)


def test_loss_is_stable_and_ignores_empty_images():
    Y = xp.asarray([[0.0] * 7, [1.0, .5, .5, .3, .3, 0, 1]])
    P = xp.asarray([[-1e4, 1e3, -1e3, 5, 5, 1e4, -1e4], [1e4, .5, .5, .3, .3, -1e4, 1e4]])
    loss = LocalizationLoss()
    assert float(loss(P, Y)) == 0.0  # both right, at logits where exp overflows
    g = to_numpy(loss.backward())
    assert np.isfinite(g).all() and (g == 0).all()
    P2 = P.copy(); P2[0, 1:] = 0.0
    assert float(loss(P2, Y)) == float(loss(P, Y))
    loss.cache = LocalizationCache(xp.asarray([[0.5]]), xp.asarray([[1.0, 2, 3, 4]]), xp.asarray([[0.5, 0.5]]), xp.zeros((1, 7)))
    np.testing.assert_allclose(to_numpy(loss.backward()), [[0.5, 0, 0, 0, 0, 0, 0]])


def test_loss_config_and_bad_input():
    loss = LocalizationLoss(2.5)
    assert loss.get_config() == {"box_weight": 2.5} and repr(loss) == "LocalizationLoss(box_weight=2.5)"
    fails(lambda: LocalizationLoss("x"), contains="LocalizationLoss: box_weight must be a non-negative number, got 'x'")
    fails(lambda: loss(xp.zeros((3, 6)), xp.zeros((3, 7))), contains="y_true has shape (3, 7), expected the predictions' shape (3, 6)")
    fails(lambda: loss(xp.zeros((3, 4)), xp.zeros((3, 4))), contains="y_pred must be an (m, 5 + K) array with K >= 1, got shape (3, 4)")
    fails(lambda: LocalizationLoss().backward(), contains="localization: backward called before forward")


def test_a_model_learns_to_localize_with_the_loss():
    "A few epochs on 400 scenes: the loss falls and the boxes beat the mean box (a quick test, not the notebook's training)."
    X, Y, _, _ = localization_scenes(300, 100, "train", seed=7)
    seed(1)
    model = localization_model(4, filters=(8, 16, 16), units=32)
    h = model.fit(to_device(X), Y, epochs=4, batch_size=32, optimizer=Adam(learning_rate=3e-3), loss=LocalizationLoss(), verbose=0)
    assert h.history["loss"][-1] < 0.7 * h.history["loss"][0]
    assert model.predict(to_device(X[:5])).shape == (5, 9)


def test_localization_scenes():
    X, Y, boxes, labels = localization_scenes(5, 6, "dev", seed=3)
    assert X.shape == (11, LOC_SCENES["size"], LOC_SCENES["size"], 1) and Y.shape == (11, 9)
    assert all(len(b) == 1 for b in boxes[:5]) and all(len(b) <= 1 for b in boxes[5:])
    np.testing.assert_array_equal(to_numpy(Y[:, 0]), [len(b) for b in boxes])


# ---------------------------------------------------------------- sliding windows

def test_dense_kernel_is_the_flatten_order():
    rng = np.random.default_rng(0)
    f, n_C, units = 3, 4, 5
    W = rng.normal(size=(f * f * n_C, units))
    K = _dense_kernel(W, f, n_C)
    v = rng.normal(size=(f, f, n_C))
    np.testing.assert_allclose(v.reshape(-1) @ W, np.einsum("hwc,hwcu->u", v, K), rtol=1e-12)
    for h, w_, c in [(0, 0, 0), (1, 2, 3), (2, 1, 0)]:
        np.testing.assert_array_equal(K[h, w_, c], W[(h * f + w_) * n_C + c])
    fails(lambda: _dense_kernel(W, 2, n_C), contains="W must be a (2 * 2 * 4, units) matrix, got shape (36, 5)")


def _crops(image, f, s):
    n_h, n_w = (image.shape[0] - f) // s + 1, (image.shape[1] - f) // s + 1
    return [[image[None, s * i:s * i + f, s * j:s * j + f] for j in range(n_w)] for i in range(n_h)]


@pytest.mark.parametrize("model_fn,window,stride,shape", [
    (lambda: window_classifier(4), 16, 2, (40, 30, 1)),
    (lambda: window_classifier(2, filters=(3, 5), units=7), 16, 2, (16, 16, 1)),
    (lambda: Sequential([Conv2D(4, 3, activation="tanh"), Flatten(), Dense(6, activation="relu"), Dropout(0.5),
                         Dense(3, activation="sigmoid"), Dense(2, use_bias=False)]), 5, 1, (9, 12, 2)),
    (lambda: Sequential([Conv2D(3, 3, strides=2), AveragePooling2D(2), Flatten(), Dense(4)]), 12, 4, (28, 20, 3)),
])
def test_dense_to_conv_equals_the_loop(model_fn, window, stride, shape):
    seed(sum(shape))
    model = model_fn()
    model.build((window, window, shape[-1]))
    for layer in model.layers:  # random biases, so that a lost bias would show
        if "b" in layer.params: layer.params["b"] = randn(*layer.params["b"].shape)
    conv = dense_to_conv(model)
    image = randn(*shape)
    Z_loop, Z_conv = sliding_window_scores(model, image, window, stride), conv.forward(image[None])[0]
    assert Z_loop.shape == Z_conv.shape
    np.testing.assert_allclose(to_numpy(Z_conv), to_numpy(Z_loop), atol=1e-5)
    ref = np.stack([np.stack([to_numpy(model.forward(c))[0] for c in row]) for row in _crops(image, window, stride)])
    np.testing.assert_allclose(to_numpy(Z_loop), ref, atol=1e-6)
    assert all(type(l).__name__ in ("Conv2D", "MaxPooling2D", "AveragePooling2D") for l in conv.layers)


def test_dense_to_conv_shares_the_weights():
    seed(2)
    model = window_classifier(3)
    model.build((16, 16, 1))
    conv = dense_to_conv(model, name="fcn")
    assert conv.name == "fcn" and conv.count_params() == model.count_params()
    model.layers[0].params["W"][...] = 0.0  # in place: seen by both
    model.layers[4].params["W"][...] *= 2.0
    x = randn(1, 16, 16, 1)
    np.testing.assert_allclose(to_numpy(conv.forward(x)).reshape(1, -1), to_numpy(model.forward(x)), atol=1e-6)


def test_dense_to_conv_bad_input():
    fails(lambda: dense_to_conv(Dense(3)), contains="dense_to_conv: model must be a built Sequential")
    fails(lambda: dense_to_conv(window_classifier(2)), contains="model must be a built Sequential")
    m = Sequential([Conv2D(2, 3), MaxPooling2D(2)]).build((8, 8, 1))
    fails(lambda: dense_to_conv(m), contains="model must be a Sequential with a Flatten layer")
    m = Sequential([Conv2D(2, 3), Flatten(), Dense(3)]).build((8, 10, 1))
    fails(lambda: dense_to_conv(m), contains="Flatten must read a square (f, f, n_C) volume, got (6, 8, 2)")
    m = Sequential([Conv2D(2, 3), Flatten(), Dense(3), Activation("relu")]).build((8, 8, 1))
    fails(lambda: dense_to_conv(m), contains="model must be a Sequential with only Dense and Dropout layers after Flatten, got Activation layer")


def test_sliding_window_bad_input():
    model = window_classifier(2)
    model.build((16, 16, 1))
    fails(lambda: sliding_window_scores(model, xp.zeros((1, 20, 20, 1)), 16, 2), contains="image must be one image (H, W, C), got shape (1, 20, 20, 1)")
    fails(lambda: sliding_window_scores(model, xp.zeros((20, 12, 1)), 16, 2), contains="window must be an int in [1, 12], got 16")
    fails(lambda: sliding_window_scores(model, xp.zeros((20, 20, 1)), 16, 0), contains="stride must be a positive int, got 0")


def test_window_dataset():
    sc = make_scenes(20, size=64, scale=(12, 16), background="flat", noise=0.0, seed=4)
    X, y = window_dataset(sc.images, sc.boxes, sc.labels, 16, 4, background_per_image=3, seed=0)
    assert X.shape[1:] == (16, 16, 1) and len(X) == len(y)
    assert set(np.unique(y)) <= {0, 1, 2, 3, 4} and (y == 4).sum() > 0 and (y < 4).sum() > 0
    assert (X[y < 4].reshape((y < 4).sum(), -1).max(axis=1) > 0).all()  # a digit crop holds ink
    X2, y2 = window_dataset(sc.images, sc.boxes, sc.labels, 16, 4, background_per_image=3, seed=0)
    np.testing.assert_array_equal(X, X2); np.testing.assert_array_equal(y, y2)
    fails(lambda: window_dataset(sc.images, sc.boxes, sc.labels, 100, 4), contains="window must be an int in [1, 64], got 100")
    fails(lambda: window_dataset(sc.images, sc.boxes, [l * 0 + 4 for l in sc.labels], 16, 4), contains="labels must be class indices in [0, 4)")


def test_the_training_script_saves_a_model_the_notebook_can_load(tmp_path):
    "scripts/train_localization.py, on a few scenes for one epoch: it writes a file that load_model reads back."
    import importlib.util
    from pathlib import Path
    from dlnotes.nn.models import load_model
    path = Path(__file__).resolve().parents[2] / "scripts" / "train_localization.py"
    spec = importlib.util.spec_from_file_location("train_localization", path)
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    script.main(["--scenes", "40", "--epochs", "1", "--out", str(tmp_path / "loc.npz")])
    model = load_model(tmp_path / "loc.npz")
    assert model.predict(np.zeros((2, 32, 32, 1), dtype=np.float32)).shape == (2, 9)
