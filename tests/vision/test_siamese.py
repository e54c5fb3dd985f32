"Siamese networks and the triplet loss (dlnotes.vision.siamese): layers, distances, the loss and its mining, each gradient in float64."
import itertools

import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import randn, rand, seed, to_numpy, xp
from dlnotes.gradcheck import as_float64, check_layer, grad_check
from dlnotes.nn.graphs import Input
from dlnotes.nn.layers import Dense
from dlnotes.nn.models import Model, Sequential, load_model
from dlnotes.vision.siamese import (MINING, SquaredDistance, TripletCache, TripletLoss, UnitNormalization, check_triplets,
                                    make_encoder, mine_triplets, pair_distances, pairwise_sq_distances, siamese_distance,
                                    siamese_model, triplet_loss, triplet_losses, triplet_losses_backward, _pair_auc)


def _np(a): return np.asarray(to_numpy(a))


def _float64(model):
    for layer in model.layers:
        if hasattr(layer, "layers"): _float64(layer)
        else: as_float64(layer)
    return model


# ---- UnitNormalization -------------------------------------------------------------------------------------------

def test_unit_normalization_forward_is_x_over_its_length():
    seed(0)
    x = randn(6, 5, dtype=np.float64)
    u = _np(UnitNormalization()(x))
    ref = _np(x) / np.sqrt((_np(x) ** 2).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(u, ref, rtol=1e-12)
    np.testing.assert_allclose((u ** 2).sum(axis=1), 1.0, rtol=1e-12)


def test_unit_normalization_backward_float64():
    seed(1)
    assert check_layer(UnitNormalization(), randn(4, 9, dtype=np.float64))["all"] < 1e-7
    assert check_layer(UnitNormalization(), randn(2, 3, 6, dtype=np.float64))["all"] < 1e-7  # leading axes too


def test_unit_normalization_backward_is_orthogonal_to_u():
    seed(2)
    x, du = randn(5, 4, dtype=np.float64), randn(5, 4, dtype=np.float64)
    layer = UnitNormalization()
    u = _np(layer(x)); dx = _np(layer.backward(du))
    np.testing.assert_allclose((u * dx).sum(axis=1), 0.0, atol=1e-12)


def test_unit_normalization_saves_and_loads(tmp_path):
    seed(3)
    model = Sequential([Input((6,)), Dense(4), UnitNormalization(epsilon=1e-6)])
    x = randn(3, 6)
    model.save(tmp_path / "m.npz", include_optimizer=False)
    loaded = load_model(tmp_path / "m.npz")
    assert type(loaded.layers[-1]) is UnitNormalization and loaded.layers[-1].epsilon == 1e-6
    np.testing.assert_array_equal(_np(loaded.predict(x)), _np(model.predict(x)))


def test_unit_normalization_bad_epsilon():
    fails(lambda: UnitNormalization(epsilon=0), contains="UnitNormalization: epsilon must be a positive number, got 0")


# ---- distances -------------------------------------------------------------------------------------------------

def test_siamese_distance_against_a_loop():
    seed(4)
    f1, f2 = randn(7, 3, dtype=np.float64), randn(7, 3, dtype=np.float64)
    a, b = _np(f1), _np(f2)
    ref = [sum((a[i, k] - b[i, k]) ** 2 for k in range(3)) for i in range(7)]
    np.testing.assert_allclose(_np(siamese_distance(f1, f2)), ref, rtol=1e-12)


def test_siamese_distance_of_unit_vectors_lies_in_0_4():
    seed(5)
    u, v = UnitNormalization()(randn(200, 8)), UnitNormalization()(randn(200, 8))
    d = _np(siamese_distance(u, v))
    assert d.min() >= 0 and d.max() <= 4 + 1e-5
    np.testing.assert_allclose(d, 2 - 2 * (_np(u) * _np(v)).sum(axis=1), atol=1e-5)
    np.testing.assert_allclose(_np(siamese_distance(u, -u)), 4.0, rtol=1e-5)


def test_distance_shape_errors():
    fails(lambda: siamese_distance(xp.zeros((3, 4)), xp.zeros((3, 5))),
              contains="siamese_distance: f1 and f2 must be encodings of one shape (m, d), got shapes (3, 4) and (3, 5)")
    fails(lambda: siamese_distance(xp.zeros((3, 4, 1)), xp.zeros((3, 4, 1))), contains="must be encodings of one shape (m, d)")
    enc = make_encoder((8, 8, 1), 4, (2,))
    fails(lambda: pair_distances(enc, xp.zeros((2, 8, 8, 1)), xp.zeros((2, 6, 6, 1))),
              contains="pair_distances: x1 and x2 must hold pairs of images of one shape, got shapes (2, 8, 8, 1) and (2, 6, 6, 1)")
    fails(lambda: SquaredDistance()([xp.zeros((2, 3)), xp.zeros((2, 4))]), contains="takes two encodings of one shape")


def test_pairwise_sq_distances_against_a_loop():
    seed(6)
    E = randn(6, 3, dtype=np.float64)
    e = _np(E)
    ref = np.array([[((e[i] - e[j]) ** 2).sum() for j in range(6)] for i in range(6)])
    np.testing.assert_allclose(_np(pairwise_sq_distances(E)), ref, atol=1e-12)


def test_squared_distance_layer_backward_float64():
    seed(7)
    d = check_layer(SquaredDistance(), [randn(5, 4, dtype=np.float64), randn(5, 4, dtype=np.float64)])
    assert d["all"] < 1e-7


# ---- the Siamese model: one encoder, shared weights --------------------------------------------------------------

def test_siamese_model_shares_the_encoder():
    seed(8)
    enc = make_encoder((8, 8, 1), 5, (3,))
    model = siamese_model(enc)
    assert model.count_params() == enc.count_params()
    assert [l for l in model.layers if l is enc] == [enc]
    x1, x2 = rand(3, 8, 8, 1), rand(3, 8, 8, 1)
    np.testing.assert_allclose(_np(model.predict([x1, x2]))[:, 0], _np(siamese_distance(enc.predict(x1), enc.predict(x2))), rtol=1e-5)


def test_siamese_gradient_through_the_shared_encoder_float64():
    "Perturb the weights the two branches share; the gradient must be the sum of both branches' (not one of them)."
    seed(9)
    enc = _float64(make_encoder((8, 8, 1), 5, (3,), name="enc"))
    model = siamese_model(enc)
    x1, x2 = rand(4, 8, 8, 1, dtype=np.float64), rand(4, 8, 8, 1, dtype=np.float64)
    w = randn(4, 1, dtype=np.float64)
    J = lambda: (model.forward([x1, x2]) * w).sum()
    J(); dx1, dx2 = model.backward(w)
    grads = {k: v.copy() for k, v in model.grads.items()}
    diffs = grad_check(J, {"x1": x1, "x2": x2, **model.params}, {"x1": dx1, "x2": dx2, **grads})
    assert diffs["all"] < 1e-7
    kernel = "enc/conv2d/W"  # the first convolution's kernel, used by both branches
    W = model.params[kernel]
    i = (0, 1, 0, 2)
    old = float(W[i]); eps = 1e-6
    W[i] = old + eps; Jp = float(J()); W[i] = old - eps; Jm = float(J()); W[i] = old
    assert abs((Jp - Jm) / (2 * eps) - float(grads[kernel][i])) < 1e-7 * max(1.0, abs(float(grads[kernel][i])))
    # the same gradient from the two branches run one at a time, summed
    f1, f2 = enc.forward(x1), enc.forward(x2)
    g1 = 2 * (f1 - f2) * w
    enc.forward(x1); enc.backward(g1); G1 = _np(enc.grads["conv2d/W"]).copy()
    enc.forward(x2); enc.backward(-g1); G2 = _np(enc.grads["conv2d/W"]).copy()
    np.testing.assert_allclose(_np(grads[kernel]), G1 + G2, rtol=1e-10, atol=1e-12)
    assert not np.allclose(_np(grads[kernel]), G1)  # one branch alone is not the gradient


def test_siamese_model_refuses_pairs_of_different_shapes():
    enc = make_encoder((8, 8, 1), 4, (2,))
    model = siamese_model(enc)
    fails(lambda: model.forward([xp.zeros((2, 8, 8, 1)), xp.zeros((2, 7, 8, 1))]),
              contains="input 'image_2' takes examples of shape (batch, 8, 8, 1), got x[1] of shape (2, 7, 8, 1)")
    fails(lambda: siamese_model(Sequential([Dense(3)])), contains="siamese_model: the image shape must be known")


def test_make_encoder_checks_and_output_norm():
    fails(lambda: make_encoder((28, 28)), contains="make_encoder: input_shape must be three positive ints (n_H, n_W, n_C), got (28, 28)")
    fails(lambda: make_encoder(embedding_dim=0), contains="make_encoder: embedding_dim must be a positive int, got 0")
    seed(10)
    enc = make_encoder((12, 12, 1), 7, (4, 4))
    u = _np(enc.predict(rand(5, 12, 12, 1)))
    assert u.shape == (5, 7)
    np.testing.assert_allclose((u ** 2).sum(axis=1), 1.0, rtol=1e-5)


# ---- the triplet loss -------------------------------------------------------------------------------------------

def _loop_triplet(A, P, N, alpha):
    A, P, N = _np(A), _np(P), _np(N)
    return [max(sum((A[i] - P[i]) ** 2) - sum((A[i] - N[i]) ** 2) + alpha, 0.0) for i in range(len(A))]


def test_triplet_loss_against_a_loop():
    seed(11)
    A, P, N = (randn(9, 4, dtype=np.float64) for _ in range(3))
    for alpha in (0.0, 0.2, 1.5):
        ref = _loop_triplet(A, P, N, alpha)
        np.testing.assert_allclose(_np(triplet_losses(A, P, N, alpha)[0]), ref, rtol=1e-12)
        np.testing.assert_allclose(float(triplet_loss(A, P, N, alpha)), sum(ref), rtol=1e-12)


def test_the_notes_margin_example():
    "α = 0.2 and d(A, P) = 0.5: the triplet costs nothing exactly when d(A, N) >= 0.7."
    def unit(d): c = 1 - d / 2; return [c, np.sqrt(1 - c * c)]
    A, P = xp.asarray([[1.0, 0.0]]), xp.asarray([unit(0.5)])
    for d_an, want in ((0.5, 0.2), (0.65, 0.05), (0.7, 0.0), (0.75, 0.0), (1.2, 0.0)):
        assert abs(float(triplet_loss(A, P, xp.asarray([unit(d_an)]), 0.2)) - want) < 1e-12


def test_triplet_backward_float64():
    seed(12)
    A, P, N = (randn(8, 5, dtype=np.float64) for _ in range(3))
    L, cache = triplet_losses(A, P, N, 0.8)
    assert 0 < int(_np(cache.active).sum()) < 8  # active and inactive triplets both checked
    dL = randn(8, dtype=np.float64)
    grads = dict(zip("APN", triplet_losses_backward(dL, cache)))
    J = lambda: (triplet_losses(A, P, N, 0.8)[0] * dL).sum()
    assert grad_check(J, {"A": A, "P": P, "N": N}, grads)["all"] < 1e-7


def test_triplet_backward_by_hand():
    A, P, N = xp.asarray([[1.0, 2.0]]), xp.asarray([[0.0, 2.0]]), xp.asarray([[1.0, 1.0]])
    dA, dP, dN = triplet_losses_backward(xp.asarray([3.0]), TripletCache(A, P, N, xp.asarray([1.0])))
    np.testing.assert_allclose(_np(dA), [[3 * 2 * 1.0, 3 * 2 * -1.0]])  # 2 (N - P) dL
    np.testing.assert_allclose(_np(dP), [[-6.0, 0.0]])  # 2 (P - A) dL
    np.testing.assert_allclose(_np(dN), [[0.0, 6.0]])  # 2 (A - N) dL


def test_triplet_errors():
    A = xp.zeros((2, 3))
    fails(lambda: triplet_loss(A, A, A, alpha=-0.2), contains="triplet_loss: alpha must be a non-negative number (the margin α), got -0.2")
    fails(lambda: triplet_loss(A, A, xp.zeros((2, 4))), contains="A, P and N must be encodings of one shape (m, d)")
    fails(lambda: triplet_loss(A, A, A, labels=([1, 2], [1, 2], [0, 2])), contains="the anchor and the negative of triplet 1 share the identity 2")
    fails(lambda: check_triplets([1, 2], [1, 3], [0, 0]), contains="the positive of triplet 1 has identity 3, its anchor 2")
    fails(lambda: check_triplets([1, 2], [1, 2], [0]), contains="y_A, y_P and y_N must have one length, got 2, 2 and 1")
    check_triplets(np.array([1, 2]), np.array([1, 2]), np.array([0, 0]))  # a valid triplet passes
    fails(lambda: TripletLoss(alpha=-1), contains="TripletLoss: alpha must be a non-negative number")
    fails(lambda: TripletLoss(mining="easy"), contains="TripletLoss: mining must be one of 'random', 'hard', 'semihard', got 'easy'")
    fails(lambda: mine_triplets(A, xp.asarray([0, 1]), "all"), contains="mine_triplets: mining must be one of")


# ---- mining -----------------------------------------------------------------------------------------------------

def _batch(seed_, P=4, K=3, d=5):
    seed(seed_)
    return randn(P * K, d, dtype=np.float64), xp.asarray(np.repeat(np.arange(P), K))


def test_hard_mining_against_a_loop():
    E, y = _batch(13)
    D, lab = _np(pairwise_sq_distances(E)), _np(y)
    a, p, n = (_np(t) for t in mine_triplets(E, y, "hard"))
    assert a.tolist() == list(range(len(lab)))
    for i, j, k in zip(a, p, n):
        pos = [t for t in range(len(lab)) if lab[t] == lab[i] and t != i]
        neg = [t for t in range(len(lab)) if lab[t] != lab[i]]
        assert j == max(pos, key=lambda t: D[i, t]) and k == min(neg, key=lambda t: D[i, t])


def test_semihard_mining_against_a_loop():
    E, y = _batch(14, P=5, K=3, d=3)
    D, lab = _np(pairwise_sq_distances(E)), _np(y)
    got = list(zip(*(_np(t).tolist() for t in mine_triplets(E, y, "semihard"))))
    want, fallbacks = [], 0
    for i, j in itertools.permutations(range(len(lab)), 2):
        if lab[i] != lab[j]: continue
        neg = [t for t in range(len(lab)) if lab[t] != lab[i]]
        farther = [t for t in neg if D[i, t] > D[i, j]]
        fallbacks += not farther
        want.append((i, j, min(farther, key=lambda t: D[i, t]) if farther else max(neg, key=lambda t: D[i, t])))
    assert got == want


def test_semihard_fallback_is_exercised():
    E = xp.asarray([[1.0, 0.0], [-1.0, 0.0], [0.9, np.sqrt(0.19)], [0.8, 0.6]])
    a, p, n = (_np(t) for t in mine_triplets(E, xp.asarray([0, 0, 1, 1]), "semihard"))
    assert (a[0], p[0], n[0]) == (0, 1, 3)  # both negatives nearer than the positive: the farther one


def test_random_mining_gives_valid_triplets_and_varies():
    E, y = _batch(15)
    lab = _np(y)
    seed(0)
    draws = [tuple(_np(t).tolist() for t in mine_triplets(E, y, "random")) for _ in range(5)]
    for a, p, n in draws:
        a, p, n = map(np.asarray, (a, p, n))
        check_triplets(lab[a], lab[p], lab[n])
        assert (p != a).all() and len(a) == len(lab)
    assert len({tuple(d[1] + d[2]) for d in draws}) > 1  # not the same triplets every time


def test_mining_skips_anchors_without_a_positive():
    E = randn(4, 3, dtype=np.float64)
    y = xp.asarray([0, 0, 1, 2])  # identities 1 and 2 have one photo each: anchors only 0 and 1
    for mining in MINING:
        a, p, n = (_np(t) for t in mine_triplets(E, y, mining))
        assert sorted(a.tolist()) == [0, 1] and sorted(p.tolist()) == [0, 1]


# ---- TripletLoss ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mining", MINING)
def test_triplet_loss_object_is_the_mean_and_its_backward_float64(mining):
    E, y = _batch(16)
    loss = TripletLoss(0.6, mining)
    J = float(loss(E, y))
    a, p, n = (_np(t) for t in loss.triplets)
    e = _np(E)
    np.testing.assert_allclose(J, np.mean(_loop_triplet(e[a], e[p], e[n], 0.6)), rtol=1e-12)
    dE = loss.backward()
    loss.fixed_triplets = loss.triplets
    assert grad_check(lambda: loss(E, y), E, dE)["all"] < 1e-7


def test_triplet_loss_object_sample_weight_and_errors():
    E, y = _batch(17)
    w = rand(12, dtype=np.float64)
    loss = TripletLoss(0.6, "hard")
    J = float(loss(E, y, sample_weight=w))
    a, p, n = (_np(t) for t in loss.triplets)
    e = _np(E)
    np.testing.assert_allclose(J, np.mean(np.array(_loop_triplet(e[a], e[p], e[n], 0.6)) * _np(w)[a]), rtol=1e-12)
    dE = loss.backward(); loss.fixed_triplets = loss.triplets
    assert grad_check(lambda: loss(E, y, sample_weight=w), E, dE)["all"] < 1e-7
    fails(lambda: TripletLoss()(E, xp.arange(12)), contains="triplet: the batch has no triplet")
    fails(lambda: TripletLoss()(E, xp.zeros(12)), contains="y_true must be (12,) integer identities")
    fails(lambda: TripletLoss().backward(), contains="backward called before forward")
    assert TripletLoss(0.3, "random").get_config() == {"alpha": 0.3, "mining": "random"}


def test_fit_trains_an_encoder_with_the_triplet_loss():
    "A tiny encoder on two well-separated clusters per identity: fit lowers the loss and separates the identities."
    seed(18)
    centres = randn(6, 10)
    y = np.repeat(np.arange(6), 8)
    x = to_numpy(centres)[y] + 0.3 * np.random.default_rng(0).normal(size=(48, 10)).astype(np.float32)
    enc = Sequential([Input((10,)), Dense(16, activation="relu"), Dense(4), UnitNormalization()])
    enc.compile("adam", TripletLoss(0.2, "semihard"))
    h = enc.fit(x, y, epochs=30, batch_size=48, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    D, same = _np(pairwise_sq_distances(enc.predict(x))), y[:, None] == y[None, :]
    assert D[same].mean() < D[~same].mean()


def test_pair_auc():
    same = np.array([1.0, 0.0, 1.0, 0.0])
    assert _pair_auc(np.array([0.1, 0.5, 0.4, 2.0]), same) == 1.0
    assert _pair_auc(np.array([0.1, 0.3, 0.25, 0.2]), same) == 0.75
    assert _pair_auc(np.array([2.0, 0.1, 3.0, 0.2]), same) == 0.0


def test_train_encoder_records_every_epoch_and_keeps_the_best():
    from dlnotes.vision.identities import Identities
    from dlnotes.vision.siamese import train_encoder
    rng = np.random.default_rng(0)
    centres = rng.random((16, 8, 8, 1)).astype(np.float32)
    labels = np.repeat(np.arange(16), 4)
    images = np.clip(centres[labels] + 0.4 * rng.normal(size=(64, 8, 8, 1)), 0, 1).astype(np.float32)
    ids = Identities(images, labels.astype(np.int64), tuple(str(k) for k in range(16)))
    i1, i2 = np.arange(0, 64, 2), np.r_[np.arange(1, 32, 2), np.arange(33, 64, 2)[::-1]]  # half same, half different
    pairs = (images[i1], images[i2], (labels[i1] == labels[i2]).astype(np.float32))
    enc, h = train_encoder(ids, "semihard", epochs=3, steps_per_epoch=2, dev_pairs=pairs, embedding_dim=8, keep_best=True)
    assert [len(h[k]) for k in ("loss", "active", "dev_auc", "seconds")] == [3, 3, 3, 3]
    assert h["best_epoch"] == int(np.argmax(h["dev_auc"])) + 1
    assert abs(_pair_auc(pair_distances(enc, *pairs[:2]), pairs[2]) - h["dev_auc"][h["best_epoch"] - 1]) < 1e-9
    assert all(0 <= a <= 1 for a in h["active"])
    fails(lambda: train_encoder(ids, "semihard", epochs=0), contains="train_encoder: epochs must be a positive int, got 0")
