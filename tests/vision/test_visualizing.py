"""dlnotes.vision.visualizing: what the layers of a CNN compute.

Upsampled digits equal scikit-learn's images resized one by one; shifted copies are shifts of the originals; receptive
fields agree with hand values and with the support of the input gradient of every unit (exactly, for linear networks
with positive weights; never outside, for ReLU and max pools); a unit's activation is unchanged when everything outside
its field changes; the top activations and patches agree with loops; the unit gradients, saliency maps and the
gradient ascent are checked in float64 against central differences and against the closed form of a linear unit;
occlusion agrees with a slow loop; bad arguments raise ValueErrors that name them.
"""
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy, xp
from dlnotes.data import load_digit_images
from dlnotes.gradcheck import as_float64, numerical_grad, rel_diff
from dlnotes.nn.layers import Activation, Dense, Dropout
from dlnotes.nn.models import Model, Sequential, load_model
from dlnotes.nn.graphs import Input
from dlnotes.vision.cnn import (AveragePooling2D, Conv2D, Flatten, GlobalAveragePooling2D, MaxPooling2D, ZeroPadding2D)
from dlnotes.vision.scenes import resize_bilinear
from dlnotes.vision.visualizing import (ReceptiveField, TopActivations, _blur3, cut_patch, filters_as_images,
                                        layer_activations, maximize_activation, occlusion_map, random_shifts,
                                        receptive_field, rf_box, rf_step, saliency_map, top_activations,
                                        top_patches, unit_gradient, upsample_digits, visual_cnn, visual_digit_splits)

ROOT = Path(__file__).resolve().parents[2]


def fails(fn, contains, exc=ValueError):
    "Assert that fn() raises `exc` with `contains` in its message."
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


def small_cnn(relu=True, n_in=1, dtype64=True, shape=(12, 12)):
    "conv 3x3 same, max pool 2, conv 3x3 stride 2 valid, GAP, Dense(4): a small CNN with float64 weights."
    act = "relu" if relu else None
    model = Sequential([Conv2D(3, 3, padding="same", activation=act, name="c1"), MaxPooling2D(2, name="p1"),
                        Conv2D(4, 3, strides=2, activation=act, name="c2"), GlobalAveragePooling2D(name="gap"),
                        Dense(4, name="logits")], name="small")
    model.build((*shape, n_in))
    if dtype64:
        for layer in model.layers: as_float64(layer)
    return model


def noisy(*shape):
    "A float64 input with no ties in any max pool."
    return randn(*shape, dtype=np.float64)


# ---------------------------------------------------------------- data

def test_upsample_digits_equals_resize_bilinear():
    images, _ = load_digit_images()
    up = upsample_digits(images[:5], 24)
    assert up.shape == (5, 24, 24, 1) and up.dtype == np.float32
    for i in range(5):
        np.testing.assert_allclose(up[i, :, :, 0], resize_bilinear(images[i], 24, 24), atol=1e-6)
    assert upsample_digits(images[:2], 32).shape == (2, 32, 32, 1)
    fails(lambda: upsample_digits(np.zeros((2, 8, 6))), "upsample_digits: images must be an (m, n, n) batch of square images, got shape (2, 8, 6)")
    fails(lambda: upsample_digits(np.zeros((8, 8))), "images must be an (m, n, n) batch")
    fails(lambda: upsample_digits(images[:1], 0), "upsample_digits: size must be a positive int, got 0")


def test_visual_digit_splits_are_the_stratified_split():
    X_train, X_test, y_train, y_test = visual_digit_splits()
    assert X_train.shape == (1437, 24, 24, 1) and X_test.shape == (360, 24, 24, 1)
    assert np.bincount(y_test).tolist() == [36, 37, 35, 37, 36, 36, 36, 36, 35, 36]
    assert 0 <= X_train.min() and X_train.max() <= 1


def test_random_shifts_are_shifts_of_the_originals():
    seed(0)
    X = np.random.default_rng(1).random((6, 5, 7, 2)).astype(np.float32)
    y = np.arange(6)
    X_aug, y_aug = random_shifts(X, y, copies=3, max_shift=2, seed=3)
    assert X_aug.shape == (24, 5, 7, 2) and y_aug.tolist() == list(range(6)) * 4
    np.testing.assert_array_equal(X_aug[:6], X)
    for k in range(6, 24):
        i = k % 6
        matches = []
        for dh, dw in product(range(-2, 3), repeat=2):  # loop reference: move pixel (r, c) to (r + dh, c + dw)
            ref = np.zeros_like(X[i])
            for r, c in product(range(5), range(7)):
                if 0 <= r + dh < 5 and 0 <= c + dw < 7: ref[r + dh, c + dw] = X[i, r, c]
            matches.append(np.array_equal(X_aug[k], ref))
        assert sum(matches) == 1, k
    np.testing.assert_array_equal(random_shifts(X, y, 3, 2, seed=3)[0], X_aug)  # seeded
    assert random_shifts(X, y, copies=0)[0].shape == X.shape
    fails(lambda: random_shifts(X, y, copies=-1), "random_shifts: copies must be a non-negative int, got -1")
    fails(lambda: random_shifts(X, y, max_shift=1.5), "random_shifts: max_shift must be a non-negative int, got 1.5")


# ---------------------------------------------------------------- receptive fields

def test_rf_step_by_hand():
    assert rf_step(ReceptiveField(1, 1, 0), 3, 1, 1) == (3, 1, -1)
    assert rf_step(ReceptiveField(3, 1, -1), 2, 2) == (4, 2, -1)
    assert rf_step(ReceptiveField(4, 2, -1), 3, 1, 1) == (8, 2, -3)
    assert rf_step(ReceptiveField(5, 4, 2), 3, 2, 0) == (13, 8, 2)
    assert rf_step(ReceptiveField(7, 3, 1), 1, 1, 2) == (7, 3, -5)  # a zero padding: the field only moves


def test_receptive_fields_of_the_visual_cnn():
    model = visual_cnn().build((24, 24, 1))
    want = {"conv1": (3, 1, -1), "pool1": (4, 2, -1), "conv2": (8, 2, -3), "pool2": (10, 4, -3),
            "conv3": (18, 4, -7), "pool3": (22, 8, -7), "conv4": (38, 8, -15)}
    assert {n: tuple(receptive_field(model, n)) for n in want} == want
    assert rf_box(receptive_field(model, "conv2"), 0, 0, (24, 24)) == (0, 5, 0, 5)
    assert rf_box(receptive_field(model, "conv2"), 11, 4, (24, 24)) == (19, 24, 5, 13)


ARCHS = {
    "same+pool": lambda: [Conv2D(2, 3, padding="same", name="a"), AveragePooling2D(2, name="b"), Conv2D(2, 3, padding="same", name="c")],
    "strided": lambda: [Conv2D(2, 3, strides=2, name="a"), Conv2D(2, 2, name="b"), Conv2D(2, 3, strides=2, padding="same", name="c")],
    "padded": lambda: [ZeroPadding2D(2, name="a"), Conv2D(2, 5, name="b"), Activation("sigmoid", name="c"), Dropout(0.5, name="d"),
                       AveragePooling2D(3, strides=2, name="e")],
}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_the_field_is_the_support_of_the_input_gradient(arch):
    "Linear layers with positive weights: the gradient of every unit is positive exactly on its (clipped) field."
    seed(0)
    model = Sequential(ARCHS[arch]()).build((13, 11, 1))
    for layer in model.layers:
        if layer.params: layer.params["W"] = xp.abs(layer.params["W"]).astype(np.float64) + 0.01
    x = xp.ones((1, 13, 11, 1))
    for layer in model.layers:
        rf, sub = receptive_field(model, layer.name), model.up_to(layer.name)
        _, n_H, n_W, n_C = sub.predict(x).shape
        for h, w in product(range(n_H), range(n_W)):
            def one_at(y, h=h, w=w):
                d = xp.zeros_like(y); d[0, h, w, n_C - 1] = 1.0; return d
            support = to_numpy(sub.input_gradient(x, one_at))[0, :, :, 0] > 0
            r0, r1, c0, c1 = rf_box(rf, h, w, (13, 11))
            field = np.zeros((13, 11), bool); field[r0:r1, c0:c1] = True
            np.testing.assert_array_equal(support, field, err_msg=f"{arch} {layer.name} unit ({h}, {w}) rf {rf}")


def test_relu_max_pool_gradients_stay_inside_the_field_and_outside_pixels_do_not_matter():
    seed(1)
    model = small_cnn()
    x = noisy(3, 12, 12, 1)
    for name in ("c1", "p1", "c2"):
        rf, sub = receptive_field(model, name), model.up_to(name)
        A = to_numpy(sub.predict(x))
        for h, w in product(range(A.shape[1]), range(A.shape[2])):
            def one_at(y, h=h, w=w):
                d = xp.zeros_like(y); d[:, h, w, :] = 1.0; return d
            g = to_numpy(sub.input_gradient(x, one_at))
            r0, r1, c0, c1 = rf_box(rf, h, w, (12, 12))
            g[:, r0:r1, c0:c1] = 0
            assert not g.any(), (name, h, w)
            x2 = noisy(3, 12, 12, 1)  # a new image that agrees with x on the field only
            x2[:, r0:r1, c0:c1] = x[:, r0:r1, c0:c1]
            np.testing.assert_allclose(to_numpy(sub.predict(x2))[:, h, w], A[:, h, w], atol=1e-12)


def test_receptive_field_errors():
    model = small_cnn()
    fails(lambda: receptive_field(model, "gap"), "receptive_field: layer 'gap' (GlobalAveragePooling2D) has no local receptive field")
    fails(lambda: receptive_field(model, "logits"), "layer 'gap' (GlobalAveragePooling2D) has no local receptive field")
    fails(lambda: receptive_field(model, "nope"), "layer_name must be one of ['c1', 'p1', 'c2', 'gap', 'logits'], got 'nope'")
    flat = Sequential([Conv2D(2, 3, name="c"), Flatten(name="f"), Dense(2, name="d")]).build((5, 5, 1))
    fails(lambda: receptive_field(flat, "f"), "layer 'f' (Flatten) has no local receptive field")
    inp = Input((5, 5, 1))
    graph = Model(inp, Conv2D(2, 3, name="c")(inp))
    fails(lambda: receptive_field(graph, "c"), "model must be a Sequential, got Model")


# ---------------------------------------------------------------- top activations and patches

def test_top_activations_against_loops():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((20, 4, 5, 3))
    A[3, 1, 2, 1] = A[7, 0, 0, 1] = 10.0  # a tie between images 3 and 7: the lower index first
    top = top_activations(A, k=4)
    assert isinstance(top, TopActivations) and top.images.shape == (3, 4)
    for c in range(3):
        resp = [(A[i, :, :, c].max(), i) for i in range(20)]
        order = sorted(range(20), key=lambda i: (-resp[i][0], i))[:4]
        assert top.images[c].tolist() == order
        for j, i in enumerate(order):
            h, w = np.unravel_index(np.argmax(A[i, :, :, c]), (4, 5))
            assert (top.rows[c, j], top.cols[c, j]) == (h, w)
            assert top.values[c, j] == A[i, h, w, c]
    assert top.images[1, :2].tolist() == [3, 7]
    fails(lambda: top_activations(A, k=21), "top_activations: k must be an int in [1, 20], got 21")
    fails(lambda: top_activations(A[0]), "top_activations: A must be an (m, n_H, n_W, n_C) array, got shape (4, 5, 3)")


def test_cut_patch_against_a_loop():
    image = np.random.default_rng(0).random((7, 6, 2))
    for rf in (ReceptiveField(3, 1, -1), ReceptiveField(8, 2, -3), ReceptiveField(4, 3, 0)):
        for h, w in product(range(4), range(3)):
            p = cut_patch(image, rf, h, w)
            assert p.shape == (rf.size, rf.size, 2)
            for u, v in product(range(rf.size), repeat=2):
                r, c = rf.start + h * rf.jump + u, rf.start + w * rf.jump + v
                if 0 <= r < 7 and 0 <= c < 6: np.testing.assert_array_equal(p[u, v], image[r, c])
                else: assert np.isnan(p[u, v]).all()


def test_top_patches_are_the_fields_of_the_strongest_units():
    seed(2)
    model = small_cnn()
    X = noisy(15, 12, 12, 1)
    top, patches = top_patches(model, X, "c2", k=5)
    rf = receptive_field(model, "c2")
    A = to_numpy(layer_activations(model, X, "c2"))
    assert patches.shape == (4, 5, rf.size, rf.size, 1)
    for c, j in product(range(4), range(5)):
        i, h, w = top.images[c, j], top.rows[c, j], top.cols[c, j]
        assert top.values[c, j] == A[i, h, w, c] == A[:, :, :, c].reshape(15, -1).max(axis=1)[i]
        np.testing.assert_array_equal(patches[c, j], cut_patch(to_numpy(X)[i], rf, h, w))


def test_layer_activations_use_the_trained_weights():
    seed(3)
    model = small_cnn()
    x = noisy(2, 12, 12, 1)
    by_hand = lambda: to_numpy(model.layers[2](model.layers[1](model.layers[0](x))))
    np.testing.assert_allclose(to_numpy(layer_activations(model, x, "c2")), by_hand(), atol=1e-12)
    model.layers[0].params["b"] += 1.0  # seen at once: the weights are shared, not copied
    np.testing.assert_allclose(to_numpy(layer_activations(model, x, "c2")), by_hand(), atol=1e-12)
    np.testing.assert_allclose(to_numpy(layer_activations(model, x, "logits", batch_size=1)), to_numpy(model.predict(x)), atol=1e-12)


# ---------------------------------------------------------------- filters

def test_filters_as_images():
    W = np.zeros((3, 3, 2, 3)); W[:, 0, 1, 0], W[1, 1, 1, 1] = -2, 4
    F = filters_as_images(W, channel=1)
    assert F.shape == (3, 3, 3)
    np.testing.assert_array_equal(F[0], [[-1, 0, 0]] * 3)
    np.testing.assert_array_equal(F[1], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(F[2], np.zeros((3, 3)))
    np.testing.assert_array_equal(filters_as_images(W)[0], np.zeros((3, 3)))
    fails(lambda: filters_as_images(W, channel=2), "filters_as_images: channel must be an int in [0, 1], got 2")
    fails(lambda: filters_as_images(W[0]), "filters_as_images: W must be an (f, f, n_C_prev, n_C) array, got shape (3, 2, 3)")


# ---------------------------------------------------------------- input gradients

@pytest.mark.parametrize("layer_name,position", [("c1", None), ("c1", (0, 11)), ("p1", (2, 3)), ("c2", None), ("logits", None)])
def test_unit_gradient_against_central_differences(layer_name, position):
    seed(4)
    model = small_cnn(n_in=2)
    x = noisy(3, 12, 12, 2)
    channels = [0, 2, 1]
    a, g = unit_gradient(model, x, layer_name, channels, position)
    A = to_numpy(layer_activations(model, x, layer_name))
    at = (() if A.ndim == 2 else (A.shape[1] // 2, A.shape[2] // 2) if position is None else position)
    np.testing.assert_allclose(to_numpy(a), [A[(i, *at, c)] for i, c in enumerate(channels)])
    J = lambda v: float(sum(to_numpy(layer_activations(model, v, layer_name))[(i, *at, c)] for i, c in enumerate(channels)))
    assert rel_diff(g, numerical_grad(J, x.copy())) < 1e-7


def test_unit_gradient_leaves_the_weight_gradients_and_checks_channels():
    seed(5)
    model = small_cnn()
    before = {l.name: {k: to_numpy(v).copy() for k, v in l.grads.items()} for l in model.layers}
    unit_gradient(model, noisy(2, 12, 12, 1), "logits", [0, 3])
    for l in model.layers:
        for k, v in l.grads.items(): np.testing.assert_array_equal(to_numpy(v), before[l.name][k])
    fails(lambda: unit_gradient(model, noisy(2, 12, 12, 1), "logits", [0]), "unit_gradient: channels must be 2 channel indices, one per example, got 1")
    fails(lambda: unit_gradient(model, noisy(2, 12, 12, 1), "c2", [0, 4]), "unit_gradient: channels must be indices in [0, 4), got [0, 4]")


def test_saliency_map():
    seed(6)
    lin = Sequential([Flatten(name="f"), Dense(3, name="d")]).build((4, 5, 2))
    W = to_numpy(lin.get_layer("d").params["W"])
    S = saliency_map(lin, randn(2, 4, 5, 2), [2, 0])  # a linear score: |dz_c/dx| = |W[:, c]|, maximised over channels
    np.testing.assert_allclose(S[0], np.abs(W[:, 2]).reshape(4, 5, 2).max(axis=-1), rtol=1e-6)
    np.testing.assert_allclose(S[1], np.abs(W[:, 0]).reshape(4, 5, 2).max(axis=-1), rtol=1e-6)
    model = small_cnn(n_in=2)
    x = noisy(2, 12, 12, 2)
    S = saliency_map(model, x, [1, 3])
    for i, c in enumerate((1, 3)):
        g = numerical_grad(lambda v: float(to_numpy(model.predict(v))[i, c]), x.copy())
        assert rel_diff(S[i], np.abs(to_numpy(g)[i]).max(axis=-1)) < 1e-7


def test_blur3_against_a_loop():
    x = np.random.default_rng(0).random((2, 5, 4, 3))
    k = np.array([1, 2, 1]) / 4
    ref = np.zeros_like(x)
    for i, r, c, ch in product(range(2), range(5), range(4), range(3)):
        ref[i, r, c, ch] = sum(k[u] * k[v] * x[i, min(max(r + u - 1, 0), 4), min(max(c + v - 1, 0), 3), ch]
                               for u, v in product(range(3), repeat=2))
    np.testing.assert_allclose(_blur3(x), ref)


def test_maximize_activation_reaches_the_closed_form_of_a_linear_unit():
    seed(7)
    lin = Sequential([Flatten(name="f"), Dense(4, name="d")]).build((3, 3, 1))
    for layer in lin.layers: as_float64(layer)
    W = to_numpy(lin.get_layer("d").params["W"])
    for lam in (0.5, 2.0):
        x, a = maximize_activation(lin, "d", [3, 1], steps=80, lr=0.2, l2=lam)  # contraction 1 - 2 λ η < 1
        np.testing.assert_allclose(to_numpy(x).reshape(2, 9), W[:, [3, 1]].T / (2 * lam), atol=1e-9)
        assert a.shape == (80, 2)
    x_j, _ = maximize_activation(lin, "d", [0], steps=100, lr=0.2, l2=0.5, jitter=1, seed=1)  # jitter: shifted gradients
    assert np.isfinite(to_numpy(x_j)).all()


def test_maximize_activation_raises_a_cnn_unit():
    seed(8)
    model = small_cnn(relu=False)  # no ReLU: no unit is off at the start
    x0 = 0.5 + 0.1 * noisy(2, 12, 12, 1)
    x, a = maximize_activation(model, "c2", [0, 1], steps=50, lr=0.05, l2=0.01, blur=0.2, jitter=1, x0=x0)
    assert (a[-1] > a[0]).all()
    a_end, _ = unit_gradient(model, x, "c2", [0, 1])
    assert (to_numpy(a_end) > a[0]).all()
    fails(lambda: maximize_activation(model, "c2", [0], lr=0, input_shape=(12, 12, 1)), "maximize_activation: lr must be a positive number, got 0")
    fails(lambda: maximize_activation(model, "c2", [0], blur=1.5, input_shape=(12, 12, 1)), "maximize_activation: blur must be a number in [0, 1], got 1.5")
    fails(lambda: maximize_activation(model, "c2", [0], steps=0, input_shape=(12, 12, 1)), "maximize_activation: steps must be a positive int, got 0")
    anysize = Sequential([Conv2D(2, 3, name="c")])
    anysize.build((None, None, 1))
    fails(lambda: maximize_activation(anysize, "c", [0]), "maximize_activation: input_shape must be (n_H, n_W, n_C)")


# ---------------------------------------------------------------- occlusion

def occlusion_loop(model, x, classes, size, stride, fill, from_logits=True):
    "One occluded image at a time."
    def prob(v):
        z = to_numpy(model.predict(v))[0].astype(np.float64)
        if not from_logits: return z
        e = np.exp(z - z.max()); return e / e.sum()
    m, n_H, n_W, _ = x.shape
    rows, cols = range(0, n_H - size + 1, stride), range(0, n_W - size + 1, stride)
    D = np.zeros((m, len(rows), len(cols)))
    for i in range(m):
        p0 = prob(x[i:i + 1])[classes[i]]
        for a, r in enumerate(rows):
            for b, c in enumerate(cols):
                xo = x[i:i + 1].copy(); xo[0, r:r + size, c:c + size, :] = fill
                D[i, a, b] = p0 - prob(xo)[classes[i]]
    return D


@pytest.mark.parametrize("size,stride,fill", [(3, 2, 0.5), (4, 3, 0.0), (1, 1, -1.0), (12, 5, 0.2)])
def test_occlusion_map_against_a_slow_loop(size, stride, fill):
    seed(9)
    model = small_cnn(n_in=2)
    x = noisy(3, 12, 12, 2)
    D = occlusion_map(model, x, [0, 3, 1], size=size, stride=stride, fill=fill)
    np.testing.assert_allclose(D, occlusion_loop(model, x, [0, 3, 1], size, stride, fill), atol=1e-12)


def test_occlusion_map_with_probabilities_and_by_hand():
    seed(10)
    soft = Sequential([Flatten(name="f"), Dense(3, activation="softmax", name="d")]).build((5, 5, 1))
    x = randn(2, 5, 5, 1)
    D = occlusion_map(soft, x, [2, 0], size=2, stride=1, fill=0.5, from_logits=False)
    np.testing.assert_allclose(D, occlusion_loop(soft, to_numpy(x), [2, 0], 2, 1, 0.5, from_logits=False), atol=1e-6)
    summer = Sequential([Flatten(name="f"), Dense(2, name="d")]).build((4, 4, 1))
    summer.get_layer("d").params["W"] = xp.stack([xp.ones(16), xp.zeros(16)], axis=1)
    sig = lambda t: 1 / (1 + np.exp(-t))
    D = occlusion_map(summer, xp.ones((1, 4, 4, 1)), [0], size=2, stride=2, fill=0.0)
    np.testing.assert_allclose(D, np.full((1, 2, 2), sig(16) - sig(12)), rtol=1e-5)


def test_occlusion_map_errors():
    model = small_cnn()
    x = noisy(2, 12, 12, 1)
    fails(lambda: occlusion_map(model, x, [0]), "occlusion_map: classes must be 2 class indices, one per image, got 1")
    fails(lambda: occlusion_map(model, x, [0, 1], size=13), "occlusion_map: size must be an int in [1, 12], got 13")
    fails(lambda: occlusion_map(model, x, [0, 1], stride=0), "occlusion_map: stride must be a positive int, got 0")
    fails(lambda: occlusion_map(model, x, [0, 1], fill=float("nan")), "occlusion_map: fill must be a finite number, got nan")


# ---------------------------------------------------------------- the saved model

def test_the_saved_model_is_small_and_accurate():
    path = ROOT / "weights" / "visual_cnn.npz"
    assert path.stat().st_size < 1_000_000
    model = load_model(path)
    assert [l.name for l in model.layers] == [l.name for l in visual_cnn().layers]
    _, X_test, _, y_test = visual_digit_splits()
    acc = (to_numpy(model.predict(X_test)).argmax(axis=1) == y_test).mean()
    assert acc >= 0.97, acc
