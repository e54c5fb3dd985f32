"ROC curve and AUC against scikit-learn, the dev threshold and the accuracy against brute force, one-shot trials and the nearest-reference rule against loops, the database of encodings, the |a - b| layer and the binary verifier gradient-checked in float64, the saved verifier, and bad inputs for dlnotes.vision.verification."
from pathlib import Path

import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*
from sklearn.metrics import roc_curve as sk_roc_curve, roc_auc_score

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.gradcheck import check_layer, as_float64, grad_check
from dlnotes.nn.layers import Dense
from dlnotes.nn.losses import BinaryCrossentropy
from dlnotes.nn.models import Sequential, load_model
from dlnotes.vision.cnn import Conv2D, Flatten, GlobalAveragePooling2D
from dlnotes.vision.identities import Identities, make_glyphs
from dlnotes.vision.verification import (roc_curve, auc, best_threshold, verification_accuracy, nearest_reference,
                                         OneShotTrials, one_shot_trials, one_shot_accuracy, FaceDatabase, AbsDifference,
                                         AbsDifferenceCache, binary_verifier, verifier_parts, pair_batches, train_verifier,
                                         Evaluation, open_set_rates, open_set_threshold, evaluate_verifier)

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-7


def _pairs(rng, n, ties=False):
    "n random scores (rounded to create ties) and labels with both kinds."
    s = rng.normal(size=n)
    if ties: s = np.round(s, 1)
    y = (rng.random(n) < 0.4).astype(np.int64)
    y[:2] = [0, 1]
    return s, y


# ---------------------------------------------------------------- ROC, AUC, threshold

@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("n", [5, 57, 400])
def test_roc_curve_and_auc_agree_with_scikit_learn(n, ties):
    rng = np.random.default_rng(n + ties)
    s, y = _pairs(rng, n, ties)
    fpr, tpr, thr = roc_curve(s, y)
    f_sk, t_sk, thr_sk = sk_roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f_sk, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr, t_sk, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], thr_sk[1:])
    assert thr[0] == np.inf and len(thr) == len(np.unique(s)) + 1
    assert abs(auc(fpr, tpr) - roc_auc_score(y, s)) < 1e-12


def test_auc_is_the_mann_whitney_probability():
    rng = np.random.default_rng(3)
    s, y = _pairs(rng, 60, ties=True)
    pos, neg = s[y == 1], s[y == 0]
    loop = np.mean([[1.0 if p > q else 0.5 if p == q else 0.0 for q in neg] for p in pos])
    assert abs(auc(*roc_curve(s, y)[:2]) - loop) < 1e-12
    assert auc(*roc_curve(-s, y)[:2]) == pytest.approx(1 - loop, abs=1e-12)  # reversed scores: the complement


def test_roc_curve_takes_bool_and_float_labels_and_device_arrays():
    s = np.array([0.3, 0.2, 0.9, 0.1])
    a = roc_curve(s, np.array([True, False, True, False]))
    b = roc_curve(s.tolist(), np.array([1.0, 0.0, 1.0, 0.0], np.float32))
    for u, v in zip(a, b): np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("n", [1, 2, 9, 200])
def test_best_threshold_maximises_accuracy_against_brute_force(n):
    rng = np.random.default_rng(n)
    d = np.round(rng.random(n) * 2, 2)
    y = (rng.random(n) < 0.5).astype(np.int64)
    tau = best_threshold(d, y)
    values = np.unique(d)
    candidates = np.r_[values[0] - 1, values, (values[1:] + values[:-1]) / 2, values[-1] + 1]
    loop = max(np.mean((d <= t) == (y == 1)) for t in candidates)
    assert verification_accuracy(d, y, tau) == pytest.approx(loop, abs=1e-12)
    assert not np.any(d == tau) or tau == d.max()  # midway between two distances, or accepting all
    smaller = [t for t in candidates if np.mean((d <= t) == (y == 1)) == loop]
    assert np.sum(d <= tau) == np.sum(d <= min(smaller))  # of several best, the fewest accepted


def test_verification_accuracy_against_a_loop():
    rng = np.random.default_rng(5)
    d, y = rng.random(50), rng.integers(0, 2, 50)
    for t in (0.0, 0.3, 0.5, 1.0):
        assert verification_accuracy(d, y, t) == sum((di <= t) == (yi == 1) for di, yi in zip(d, y)) / 50


def test_bad_inputs_of_the_rates():
    fails(lambda: roc_curve([0.1, 0.2], [0, 3]), contains="roc_curve: same must be labels 1 (a pair of one identity) or 0 (of two), got [0, 3]")
    fails(lambda: roc_curve([0.1, 0.2], [0, 0]), contains="roc_curve: same must be both labels, 1 and 0 (the rates divide by the count of each), got only 0s")
    fails(lambda: roc_curve([], []), contains="roc_curve: scores must be a non-empty 1-D array, one value per pair, got shape (0,)")
    fails(lambda: roc_curve([0.1, np.inf], [0, 1]), contains="roc_curve: scores must be finite numbers, got NaN or infinity")
    fails(lambda: roc_curve(["a", "b"], [0, 1]), contains="could not convert")
    fails(lambda: roc_curve([0.1, 0.2], ["a", "b"]), contains="roc_curve: same must be labels 1")
    fails(lambda: best_threshold([0.1, 0.2, 0.3], [1, 0]), contains="best_threshold: same must be one label per pair, shape (3,) like distances, got shape (2,)")
    fails(lambda: verification_accuracy([0.1], [1], np.nan), contains="verification_accuracy: threshold must be a finite number, got nan")
    fails(lambda: verification_accuracy([0.1], [1], "0.5"), contains="verification_accuracy: threshold must be a finite number, got '0.5'")
    fails(lambda: auc([0.0], [0.0]), contains="auc: fpr must be a 1-D array of at least two rates, got shape (1,)")
    fails(lambda: auc([0, 1], [0, 1, 1]), contains="auc: tpr must be an array of fpr's shape (2,), got shape (3,)")
    fails(lambda: auc([0, 0.5, 0.2, 1], [0, 1, 1, 1]), contains="auc: fpr must be rates that do not decrease")


# ---------------------------------------------------------------- one-shot

@pytest.mark.parametrize("shared", [False, True])
def test_nearest_reference_against_a_loop(shared):
    rng = np.random.default_rng(7)
    T, N, d = 6, 4, 3
    Q = rng.normal(size=(T, d))
    R = rng.normal(size=(N, d)) if shared else rng.normal(size=(T, N, d))
    j, dj = nearest_reference(Q, R)
    for t in range(T):
        refs = R if shared else R[t]
        D = [float(((Q[t] - r) ** 2).sum()) for r in refs]
        assert j[t] == int(np.argmin(D)) and dj[t] == pytest.approx(min(D), rel=1e-12)
    l1 = lambda a, b: np.abs(a - b).sum(axis=1)  # any dissimilarity of encodings
    j1, d1 = nearest_reference(Q, R, distance=l1)
    for t in range(T):
        refs = R if shared else R[t]
        assert j1[t] == int(np.argmin([np.abs(Q[t] - r).sum() for r in refs]))
    one = nearest_reference(Q[0], R if shared else R[0])
    assert one == (int(j[0]), pytest.approx(float(dj[0])))


def test_nearest_reference_refuses_mismatched_shapes():
    fails(lambda: nearest_reference(np.zeros((3, 2)), np.zeros((2, 4, 2))),
          contains="nearest_reference: references must be (T, N, d) or (N, d) encodings, N >= 1, for queries of shape (3, 2), got shape (2, 4, 2)")
    fails(lambda: nearest_reference(np.zeros((3, 2)), np.zeros((4, 5))), contains="references must be (T, N, d) or (N, d) encodings")
    fails(lambda: nearest_reference(np.zeros((3, 2)), np.zeros((3, 0, 2))), contains="N >= 1")


def _toy_ids(K=8, per=3, width=None):
    "K identities of `per` tiny images (1, width, 1); image i of identity k is e_k plus a small offset in the last pixel."
    labels, width = np.repeat(np.arange(K), per), width or K + 1
    images = np.zeros((K * per, 1, width, 1), np.float32)
    images[np.arange(K * per), 0, labels, 0] = 1
    images[:, 0, width - 1, 0] = 0.05 * np.tile(np.arange(per), K)
    return Identities(images, labels.astype(np.int64), tuple(f"id{k}" for k in range(K)))


def test_one_shot_trials_are_valid_and_seeded():
    ids = _toy_ids(K=10, per=3)
    tr = one_shot_trials(ids.labels, 5, 200, seed=4)
    assert isinstance(tr, OneShotTrials) and tr.references.shape == (200, 5)
    L = ids.labels[tr.references]
    assert all(len(set(r)) == 5 for r in L.tolist())
    at = tr.references[np.arange(200), tr.answers]
    np.testing.assert_array_equal(ids.labels[tr.queries], ids.labels[at])
    assert np.all(tr.queries != at)
    assert set(np.unique(tr.answers)) == set(range(5))  # the answer is at every place
    again = one_shot_trials(ids.labels, 5, 200, seed=4)
    for a, b in zip(tr, again): np.testing.assert_array_equal(a, b)
    other = one_shot_trials(ids.labels, 5, 200, seed=5)
    assert not np.array_equal(tr.references, other.references)


def test_one_shot_trials_skip_identities_with_one_image():
    labels = np.array([0, 0, 1, 2, 2, 3, 3])  # identity 1 has one image
    tr = one_shot_trials(labels, 3, 50, seed=0)
    assert 1 not in set(labels[tr.references].ravel().tolist())
    fails(lambda: one_shot_trials(labels, 4, 5), contains="one_shot_trials: n_way must be at most the number of identities with two images or more (3), got 4")
    fails(lambda: one_shot_trials(labels, 1, 5), contains="one_shot_trials: n_way must be an int >= 2, got 1")
    fails(lambda: one_shot_trials(labels, 2, 0), contains="one_shot_trials: n_trials must be a positive int, got 0")


def test_one_shot_accuracy_against_a_loop_and_the_extremes():
    ids = _toy_ids(K=10, per=3)
    rng = np.random.default_rng(0)
    E = np.eye(10)[ids.labels] + rng.normal(0, 0.6, (30, 10))  # a noisy encoding
    acc = one_shot_accuracy(E, ids, n_way=5, n_trials=300, seed=2)
    tr = one_shot_trials(ids.labels, 5, 300, seed=2)
    loop = np.mean([int(np.argmin([((E[q] - E[r]) ** 2).sum() for r in refs])) == a
                    for refs, q, a in zip(tr.references, tr.queries, tr.answers)])
    assert acc == loop and 0.2 < acc < 1
    assert one_shot_accuracy(np.eye(10)[ids.labels], ids, 5, 100) == 1.0
    pixels = Sequential([Flatten()]).build(ids.images.shape[1:])
    assert one_shot_accuracy(pixels, ids, 5, 100) == 1.0  # through a model: the pixels separate the identities
    blind = one_shot_accuracy(np.zeros((30, 4)), ids, n_way=5, n_trials=2000, seed=1)
    assert abs(blind - 0.2) < 0.03  # no information: the first reference, right one time in N


# ---------------------------------------------------------------- the database

def _db():
    pixels = Sequential([Flatten()]).build((1, 3, 1))
    im = lambda *v: np.array(v, np.float32).reshape(1, 3, 1)
    return FaceDatabase(pixels).add("a", im(1, 0, 0)).add("b", im(0, 1, 0)), im


def test_face_database_verify_and_recognize_against_brute_force():
    db, im = _db()
    assert len(db) == 2 and repr(db) == "FaceDatabase(2 names, 2 encodings)"
    rng = np.random.default_rng(0)
    Q = rng.random((20, 1, 3, 1)).astype(np.float32)
    refs = {"a": [np.array([1., 0, 0])], "b": [np.array([0., 1, 0])]}
    names, dist = db.recognize_all(Q, 0.6)
    for q, n, d in zip(Q, names, dist):
        D = {k: min(((q.ravel() - r) ** 2).sum() for r in v) for k, v in refs.items()}
        k = min(D, key=D.get)
        assert d == pytest.approx(D[k], rel=1e-5) and n == (k if D[k] <= 0.6 else None)
        assert db.recognize(q, 0.6) == (n, pytest.approx(D[k], rel=1e-5))
        for name in refs:
            ok, dv = db.verify(q, name, 0.6)
            assert dv == pytest.approx(D[name], rel=1e-5) and ok == (D[name] <= 0.6)
    db.add("a", im(0, 0, 1))  # a second image of 'a': its distance is the nearer one
    assert db.verify(im(0, 0, 0.9), "a", 0.5) == (True, pytest.approx(0.01, rel=1e-5))
    assert repr(db) == "FaceDatabase(2 names, 3 encodings)"


def test_face_database_from_identities_enrols_first_images():
    ids = _toy_ids(K=6, per=3)
    pixels = Sequential([Flatten()]).build(ids.images.shape[1:])
    db = FaceDatabase.from_identities(pixels, ids, which=[1, 4])
    assert db.names == ["id1", "id4"]
    np.testing.assert_array_equal(db.reference_index, [3, 12])
    np.testing.assert_allclose(db.encodings, ids.images[[3, 12]].reshape(2, -1))
    assert db.recognize(ids.images[4], 0.5)[0] == "id1"  # another image of identity 1
    assert db.recognize(ids.images[0], 0.5)[0] is None  # identity 0 is not enrolled
    assert len(FaceDatabase.from_identities(pixels, ids)) == 6


def test_face_database_bad_inputs():
    db, im = _db()
    empty = FaceDatabase(db.encoder)
    for call in (lambda: empty.recognize(im(1, 0, 0), 0.5), lambda: empty.verify(im(1, 0, 0), "a", 0.5),
                 lambda: empty.recognize_all(im(1, 0, 0)[None], 0.5)):
        fails(call, contains="FaceDatabase is empty: enrol someone first (add or from_identities)")
    fails(lambda: db.verify(im(1, 0, 0), "c", 0.5), contains="FaceDatabase.verify: name must be an enrolled name (2 enrolled, e.g. 'a'), got 'c'")
    fails(lambda: db.recognize(np.zeros((1, 4, 1)), 0.5), contains="FaceDatabase: images must be a batch of images of shape (m, 1, 3, 1), got shape (1, 1, 4, 1)")
    fails(lambda: db.recognize(np.zeros((3,)), 0.5), contains="FaceDatabase: image must be one image of shape (1, 3, 1), got shape (3,)")
    fails(lambda: db.recognize([1, 2, 3], 0.5), contains="FaceDatabase: image must be one image of shape (1, 3, 1), got list")
    fails(lambda: db.add("c", np.zeros((2, 3, 1))), contains="images must be a batch of images of shape (m, 1, 3, 1), got shape (1, 2, 3, 1)")
    fails(lambda: db.add(3, im(1, 0, 0)), contains="FaceDatabase.add: name must be a non-empty str, got 3")
    fails(lambda: db.recognize(im(1, 0, 0), -np.inf), contains="FaceDatabase.recognize: threshold must be a finite number, got -inf")


# ---------------------------------------------------------------- |a - b| and the binary verifier

@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 4, 3)])
def test_abs_difference_gradient_check(shape):
    seed(2)
    d = check_layer(AbsDifference(), [randn(*shape, dtype=np.float64), randn(*shape, dtype=np.float64)])
    assert d["all"] < TOL, d


def test_abs_difference_values_backward_and_ties():
    layer = AbsDifference()
    A, B = np.array([[3., -1., 2.]]), np.array([[1., 2., 2.]])
    np.testing.assert_array_equal(layer([A, B]), [[2., 3., 0.]])
    assert isinstance(layer.cache, AbsDifferenceCache)
    dA, dB = layer.backward(np.array([[1., 1., 5.]]))
    np.testing.assert_array_equal(dA, [[1., -1., 0.]])  # sign 0 where A = B
    np.testing.assert_array_equal(dB, -dA)
    assert AbsDifference()([np.zeros((4, 2, 3)), np.ones((4, 2, 3))]).shape == (4, 2, 3)
    fails(lambda: AbsDifference()([np.zeros((2, 3)), np.zeros((2, 4))]), contains="layer 'abs_difference' needs two inputs of one shape, got examples of shapes (3,) and (4,)")
    fails(lambda: AbsDifference()(np.zeros((2, 3))), contains="takes 2 inputs (a list of arrays)")


def _small_encoder(input_shape=(6, 6, 1)):
    return Sequential([Conv2D(3, 3, activation="tanh"), GlobalAveragePooling2D(), Dense(4)]).build(input_shape)


def test_binary_verifier_gradient_check_through_the_shared_encoder():
    seed(3)
    enc = _small_encoder()
    model = binary_verifier(enc, (6, 6, 1))
    for l in enc.layers + [model.layers[-1]]: as_float64(l)
    X1, X2 = randn(4, 6, 6, 1, dtype=np.float64), randn(4, 6, 6, 1, dtype=np.float64)
    y = np.array([[1.], [0.], [0.], [1.]])
    bce = BinaryCrossentropy(from_logits=True)
    J = lambda: bce(model.forward([X1, X2]), y)
    J(); dX1, dX2 = model.backward(bce.backward())
    grads = {k: v.copy() for k, v in model.grads.items()}
    assert set(grads) == {"sequential/conv2d/W", "sequential/conv2d/b", "sequential/dense/W", "sequential/dense/b", "head/W", "head/b"}
    d = grad_check(J, {"x1": X1, "x2": X2, **dict(model.params)}, {"x1": dX1, "x2": dX2, **grads}, tol=TOL)
    assert d["all"] < TOL


def test_binary_verifier_is_symmetric_and_its_distance_is_minus_the_logit():
    seed(4)
    enc = _small_encoder()
    model = binary_verifier(enc, (6, 6, 1))
    X1, X2 = randn(5, 6, 6, 1), randn(5, 6, 6, 1)
    z = to_numpy(model.predict([X1, X2]))
    np.testing.assert_allclose(to_numpy(model.predict([X2, X1])), z, rtol=1e-6)
    encoder, distance = verifier_parts(model)
    assert encoder is enc
    E1, E2 = to_numpy(enc.predict(X1)), to_numpy(enc.predict(X2))
    np.testing.assert_allclose(to_numpy(distance(E1, E2)), -z[:, 0], rtol=1e-5, atol=1e-6)


def test_binary_verifier_saves_and_loads(tmp_path):
    seed(5)
    model = binary_verifier(_small_encoder(), (6, 6, 1))
    X1, X2 = randn(3, 6, 6, 1), randn(3, 6, 6, 1)
    model.save(tmp_path / "v.npz", include_optimizer=False)
    loaded = load_model(tmp_path / "v.npz")
    np.testing.assert_array_equal(to_numpy(loaded.predict([X1, X2])), to_numpy(model.predict([X1, X2])))
    assert [type(l).__name__ for l in loaded.layers].count("AbsDifference") == 1
    verifier_parts(loaded)


def test_binary_verifier_bad_inputs():
    enc = Sequential([Conv2D(3, 3), GlobalAveragePooling2D(), Dense(2)]).build((6, 6, 1))  # leaves H and W open
    fails(lambda: binary_verifier(enc), contains="binary_verifier: input_shape must be the shape of one image (the encoder leaves it open), got (None, None, 1)")
    model = binary_verifier(enc, (6, 6, 1))
    fails(lambda: model.predict([np.zeros((2, 6, 6, 1)), np.zeros((2, 5, 5, 1))]), contains="takes examples of shape (batch, 6, 6, 1), got x[1] of shape (2, 5, 5, 1)")
    fails(lambda: verifier_parts(enc), contains="verifier_parts: model must be a binary_verifier (one encoder and a Dense 'head')")


def test_pair_batches_are_fresh_seeded_pairs():
    ids = _toy_ids(K=5, per=4)
    a, b = pair_batches(ids, 8, seed=1), pair_batches(ids, 8, seed=1)
    (x, y), (x_again, y_again) = next(a), next(b)
    assert x[0].shape == (8, 1, 6, 1) and y.shape == (8, 1) and float(y.sum()) == 4
    np.testing.assert_array_equal(to_numpy(x[0]), to_numpy(x_again[0]))
    (x2, _) = next(a)
    assert not np.array_equal(to_numpy(x2[0]), to_numpy(x[0]))  # the next batch is new
    fails(lambda: next(pair_batches(ids, 1)), contains="pair_batches: batch_size must be an int >= 2, got 1")


# ---------------------------------------------------------------- evaluation

def test_evaluate_verifier_on_a_perfect_encoder():
    dev, test = _toy_ids(K=6, per=3, width=25), _toy_ids(K=24, per=3)
    pixels = Sequential([Flatten()]).build(test.images.shape[1:])
    ev = evaluate_verifier(pixels, dev, test, n_pairs=200, n_trials=100)
    assert isinstance(ev, Evaluation)
    assert ev.auc == 1.0 and ev.accuracy == 1.0 and ev.one_shot_5 == 1.0 and ev.one_shot_20 == 1.0
    assert ev.recognized == 1.0 and ev.rejected == 1.0
    assert 0.05 ** 2 <= ev.threshold < 2 and 0.01 < ev.open_threshold < 2  # between same and different pairs
    small = evaluate_verifier(pixels, dev, _toy_ids(K=6, per=3, width=25), n_pairs=100, n_trials=50)
    assert np.isnan(small.one_shot_20) and small.one_shot_5 == 1.0  # 20-way needs 20 identities


def test_open_set_rates_count_both_kinds_of_query():
    ids = _toy_ids(K=4, per=3)
    pixels = Sequential([Flatten()]).build(ids.images.shape[1:])
    assert open_set_rates(pixels, ids, 0.5) == (1.0, 1.0)
    assert open_set_rates(pixels, ids, 2.5) == (1.0, 0.0)  # a loose threshold lets every stranger in
    assert open_set_rates(pixels, ids, 0.001) == (0.0, 1.0)  # a tight one rejects everybody
    tau = open_set_threshold(pixels, ids)
    assert 0.01 < tau < 2 and open_set_rates(pixels, ids, tau) == (1.0, 1.0)
    one = Identities(ids.images[:3], ids.labels[:3], ids.names[:1])
    fails(lambda: open_set_rates(pixels, one, 0.5), contains="open_set_rates: ids must be at least two identities (enrolled and strangers), got 1")


def test_train_verifier_learns_on_glyphs():
    train = make_glyphs("train", n_per_identity=4)
    model, history = train_verifier(train, epochs=3, steps_per_epoch=15, batch_size=32, seed=1)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], losses


def test_the_saved_binary_verifier_verifies_held_out_glyphs():
    model = load_model(ROOT / "weights" / "siamese_binary.npz")
    encoder, distance = verifier_parts(model)
    ev = evaluate_verifier(encoder, make_glyphs("dev"), make_glyphs("test"), distance, n_pairs=1000, n_trials=300)
    assert ev.auc > 0.9, ev[:8]
    assert ev.one_shot_5 > 0.75 and ev.one_shot_20 > 0.5, ev[:8]
