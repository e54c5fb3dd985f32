"Agreement with sklearn.metrics on random label arrays, splits, model selection and bad inputs of dlnotes.strategy.metrics."
import math
import re
import warnings

import numpy as np
import pytest
import sklearn.metrics as skm

from dlnotes.strategy.metrics import (confusion_matrix, accuracy, precision_recall_f1, precision, recall, f1_score,
                             classification_report, standard_error, min_dev_size, train_dev_test_split,
                             split_with_train_dev, select_model, multiply_adds, time_per_batch, AVERAGES)


def _random_labels(rng, K, m, agree=0.5):
    "Random (y_true, y_pred) over K classes; a share `agree` of the predictions copy the truth."
    t = rng.integers(0, K, m)
    p = np.where(rng.random(m) < agree, t, rng.integers(0, K, m))
    return t, p


def _sk(t, p, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skm.precision_recall_fscore_support(t, p, zero_division=0, **kw)[:3]


@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None])
def test_multiclass_averages_agree_with_sklearn(average):
    rng = np.random.default_rng(0)
    for _ in range(250):
        K, m = int(rng.integers(1, 8)), int(rng.integers(1, 40))
        t, p = _random_labels(rng, K, m, agree=rng.random())
        np.testing.assert_allclose(np.asarray(precision_recall_f1(t, p, average), dtype=float),
                                   np.asarray(_sk(t, p, average=average), dtype=float), atol=1e-12)


@pytest.mark.parametrize("average", ["micro", "macro", "weighted", None])
def test_averages_with_given_labels_agree_with_sklearn(average):
    "A `labels` list that omits present classes or adds absent ones."
    rng = np.random.default_rng(1)
    for _ in range(150):
        K, m = int(rng.integers(2, 7)), int(rng.integers(1, 30))
        t, p = _random_labels(rng, K, m)
        labels = rng.choice(K + 2, size=int(rng.integers(1, K + 2)), replace=False)
        np.testing.assert_allclose(np.asarray(precision_recall_f1(t, p, average, labels=labels), dtype=float),
                                   np.asarray(_sk(t, p, average=average, labels=labels), dtype=float), atol=1e-12)


def test_binary_agrees_with_sklearn():
    rng = np.random.default_rng(2)
    n = 0
    for _ in range(300):
        m = int(rng.integers(1, 30))
        t, p = _random_labels(rng, 2, m, agree=rng.random())
        for pos_label in (0, 1):
            if len(np.union1d(t, p)) < 2 and pos_label not in np.union1d(t, p): continue
            np.testing.assert_allclose(precision_recall_f1(t, p, "binary", pos_label=pos_label),
                                       _sk(t, p, average="binary", pos_label=pos_label), atol=1e-12)
            n += 1
    assert n > 500


def test_binary_with_string_labels_agrees_with_sklearn():
    rng = np.random.default_rng(3)
    names = np.array(["ham", "spam"])
    for _ in range(200):
        t, p = (names[a] for a in _random_labels(rng, 2, int(rng.integers(2, 25))))
        if len(np.union1d(t, p)) < 2: continue
        np.testing.assert_allclose(precision_recall_f1(t, p, pos_label="spam"), _sk(t, p, average="binary", pos_label="spam"))


def test_confusion_matrix_and_accuracy_agree_with_sklearn():
    rng = np.random.default_rng(4)
    for _ in range(200):
        K, m = int(rng.integers(1, 8)), int(rng.integers(1, 50))
        t, p = _random_labels(rng, K, m)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_array_equal(confusion_matrix(t, p), skm.confusion_matrix(t, p))
            labels = rng.permutation(K + 1)[: int(rng.integers(1, K + 2))]
            if np.isin(t, labels).any():  # scikit-learn refuses labels that match no true label
                np.testing.assert_array_equal(confusion_matrix(t, p, labels=labels), skm.confusion_matrix(t, p, labels=labels))
        assert accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))


def test_micro_equals_accuracy_and_f1_is_harmonic_mean():
    rng = np.random.default_rng(5)
    for _ in range(200):
        t, p = _random_labels(rng, 6, 60)
        assert precision_recall_f1(t, p, "micro") == pytest.approx((accuracy(t, p),) * 3)
        P, R, F1 = precision_recall_f1(t, p, None)
        ok = (P > 0) & (R > 0)
        np.testing.assert_allclose(F1[ok], 2 / (1 / P[ok] + 1 / R[ok]))
        np.testing.assert_array_equal(F1[~ok], 0.0)


def test_single_metric_functions_match_the_triple():
    t, p = _random_labels(np.random.default_rng(6), 4, 50)
    for avg in ("micro", "macro", "weighted"):
        P, R, F1 = precision_recall_f1(t, p, avg)
        assert (precision(t, p, avg), recall(t, p, avg), f1_score(t, p, avg)) == (P, R, F1)


def test_zero_division_is_zero():
    assert precision_recall_f1([0, 0], [0, 0]) == (0.0, 0.0, 0.0)
    assert precision_recall_f1([1, 1], [0, 0]) == (0.0, 0.0, 0.0)
    assert precision_recall_f1([0, 0], [1, 1]) == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(precision_recall_f1([0, 1], [0, 2], None)[1], [1.0, 0.0, 0.0])


def test_report_lists_every_class():
    rep = classification_report([0, 1, 2, 2], [0, 2, 2, 1], target_names=["a", "b", "c"])
    lines = rep.splitlines()
    assert lines[0].split() == ["precision", "recall", "f1-score", "support"]
    assert lines[4].split() == ["c", "0.500", "0.500", "0.500", "2"]
    assert lines[-2].split()[:2] == ["macro", "avg"] and lines[-1].split()[:2] == ["weighted", "avg"]


@pytest.mark.parametrize("fn", [confusion_matrix, accuracy, precision, recall, f1_score, precision_recall_f1, classification_report])
def test_labels_of_different_lengths(fn):
    with pytest.raises(ValueError, match="y_true and y_pred must have the same length, got 4 and 3"):
        fn([0, 1, 1, 0], [0, 1, 1])


@pytest.mark.parametrize("fn", [precision, recall, f1_score, precision_recall_f1])
def test_unknown_average(fn):
    with pytest.raises(ValueError, match="average must be one of .* got 'avg'"):
        fn([0, 1], [0, 1], average="avg")
    assert AVERAGES == ("binary", "micro", "macro", "weighted", None)


def test_binary_refuses_multiclass_and_missing_pos_label():
    with pytest.raises(ValueError, match="needs at most 2 classes, got 3"):
        f1_score([0, 1, 2], [0, 1, 2])
    with pytest.raises(ValueError, match="pos_label must be one of 'a', 'b', got 'x'"):
        f1_score(["a", "b"], ["a", "b"], pos_label="x")


def test_bad_label_arrays():
    with pytest.raises(ValueError, match=re.escape("y_pred must be 1-D, (1, m) or (m, 1) (one label per example), got shape (2, 2)")):
        accuracy([0, 1], [[0, 1], [1, 0]])
    with pytest.raises(ValueError, match="empty"):
        confusion_matrix([], [])
    with pytest.raises(TypeError, match="y_true must be an array of labels, got None"):
        accuracy(None, [1])
    with pytest.raises(ValueError, match="labels must be a non-empty 1-D list"):
        confusion_matrix([0], [0], labels=[])


# ---------------------------------------------------------------- dev-set size

def test_standard_error_matches_simulation():
    rng = np.random.default_rng(7)
    p, n = 0.9, 400
    estimates = rng.binomial(n, p, size=20_000) / n
    assert estimates.std() == pytest.approx(standard_error(p, n), rel=0.03)


def test_min_dev_size_is_smallest():
    for delta, p in ((0.01, 0.97), (0.005, 0.9), (0.02, 0.5)):
        n = min_dev_size(delta, p)
        assert 2 * math.sqrt(2 * p * (1 - p) / n) <= delta * (1 + 1e-9)
        assert n == 1 or 2 * math.sqrt(2 * p * (1 - p) / (n - 1)) > delta
    with pytest.raises(ValueError, match="p must be a number in \\[0, 1\\], got -0.1"):
        min_dev_size(0.01, -0.1)
    with pytest.raises(ValueError, match="z must be a positive number, got 0"):
        min_dev_size(0.01, 0.5, z=0)


# ---------------------------------------------------------------- splits

def _data(m=300, K=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(m) % K
    X = np.c_[np.arange(m), rng.standard_normal(m)]  # column 0: the example's number
    return X, y


@pytest.mark.parametrize("fractions", [(0.6, 0.2, 0.2), (0.98, 0.01, 0.01), (0.5, 0.25, 0.25), (0.34, 0.33, 0.33)])
def test_train_dev_test_split_partitions_and_stratifies(fractions):
    X, y = _data()
    Xtr, Xdv, Xts, ytr, ydv, yts = train_dev_test_split(X, y, fractions, seed=3)
    ids = np.concatenate([Xtr[:, 0], Xdv[:, 0], Xts[:, 0]]).astype(int)
    np.testing.assert_array_equal(np.sort(ids), np.arange(len(y)))
    for Xp, yp, f in ((Xtr, ytr, fractions[0]), (Xdv, ydv, fractions[1]), (Xts, yts, fractions[2])):
        assert abs(len(yp) - f * len(y)) < 1
        np.testing.assert_array_equal(yp, y[Xp[:, 0].astype(int)])
        assert np.all(np.abs(np.bincount(yp, minlength=3) - len(yp) / 3) <= 1)


def test_train_dev_test_split_is_seeded():
    X, y = _data()
    a, b, c = (train_dev_test_split(X, y, seed=s)[1] for s in (5, 5, 6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("fractions,total", [((0.6, 0.2, 0.1), "0.9"), ((0.7, 0.2, 0.2), "1.1"), ((0.5, 0.5, 0.5), "1.5")])
def test_fractions_must_sum_to_one(fractions, total):
    X, y = _data()
    with pytest.raises(ValueError, match=rf"fractions \(train, dev, test\) must sum to 1, got {re_tuple(fractions)} with sum {total}"):
        train_dev_test_split(X, y, fractions)
    with pytest.raises(ValueError, match=rf"fractions \(train, dev, test\) must sum to 1, got {re_tuple(fractions)} with sum {total}"):
        split_with_train_dev(X, y, X, y, target_fractions=fractions)


def re_tuple(t):
    return re.escape(str(tuple(t)))


def test_split_bad_inputs():
    X, y = _data()
    with pytest.raises(ValueError, match="the test fraction must be a positive number, got -0.1"):
        train_dev_test_split(X, y, (0.9, 0.2, -0.1))
    with pytest.raises(ValueError, match="X and y must have the same number of examples, got 300 and 299"):
        train_dev_test_split(X, y[:-1])
    with pytest.raises(ValueError, match="X_target and y_target must have the same number of examples, got 300 and 10"):
        split_with_train_dev(X, y, X, y[:10])


def test_split_with_train_dev_sources():
    Xs, ys = _data(300)
    Xt, yt = _data(200, seed=1)
    Xt = Xt.copy(); Xt[:, 0] += 10_000  # target examples are numbered from 10000
    parts = split_with_train_dev(Xs, ys, Xt, yt, train_dev_size=0.2, target_fractions=(0.25, 0.375, 0.375), seed=1)
    is_target = lambda k: parts[k][0][:, 0] >= 10_000
    assert not is_target("train_dev").any() and len(parts["train_dev"][1]) == 60
    assert is_target("dev").all() and is_target("test").all()
    assert is_target("train").sum() == 50 and (~is_target("train")).sum() == 240
    ids = np.concatenate([parts[k][0][:, 0] for k in parts]).astype(int)
    np.testing.assert_array_equal(np.sort(ids), np.r_[np.arange(300), 10_000 + np.arange(200)])
    for k in parts: assert len(parts[k][0]) == len(parts[k][1])


# ---------------------------------------------------------------- selection

def test_select_model_optimizing_under_constraints():
    cands = {"small": {"f1": 0.90, "ms": 3, "params": 1e3}, "mid": {"f1": 0.94, "ms": 8, "params": 5e4},
             "large": {"f1": 0.97, "ms": 30, "params": 1e6}}
    assert select_model(cands, "f1", {"ms": 10})["best"] == "mid"
    assert select_model(cands, "f1", {"ms": ("<", 8)})["best"] == "small"
    assert select_model(cands, "f1", {"ms": 10, "params": 1e4})["ranking"] == ["small"]
    assert select_model(cands, "ms", {"f1": (">", 0.92)}, maximize=False)["best"] == "mid"
    assert select_model(cands, "f1", {"ms": 10})["rejected"] == {"large": ["ms 30 violates <= 10"]}
    with pytest.raises(ValueError, match="no candidate meets"):
        select_model(cands, "f1", {"ms": 1})
    with pytest.raises(ValueError, match="candidate 'small' has no metric 'latency'"):
        select_model(cands, "f1", {"latency": 10})


def test_multiply_adds_and_timer():
    from dlnotes.nn.layers import Dense
    from dlnotes.nn.models import Sequential
    m = Sequential([Dense(7, activation="relu"), Dense(3)])
    m.build((5,))
    assert multiply_adds(m) == 5 * 7 + 7 * 3
    assert time_per_batch(lambda X: X @ X.T, np.ones((8, 8)), repeats=3) >= 0
    with pytest.raises(ValueError, match="repeats must be a positive int, got -1"):
        time_per_batch(lambda X: X, np.ones(2), repeats=-1)


def test_time_per_batch_is_the_best_of_repeats_after_a_warm_up():
    calls = []
    assert time_per_batch(lambda X: calls.append(len(X)), np.ones((4, 2)), repeats=3) >= 0
    assert calls == [4] * 4  # one warm-up call, then the timed ones


def test_split_with_train_dev_without_seed_follows_the_library_generator():
    from dlnotes.backend import seed
    Xs, ys = _data(300)
    Xt, yt = _data(200, seed=1)
    runs = []
    for _ in range(2):
        seed(4)
        runs.append(split_with_train_dev(Xs, ys, Xt, yt, target_fractions=(0.2, 0.4, 0.4), seed=None)["train"][0])
    np.testing.assert_array_equal(*runs)


_X, _y = np.zeros((30, 1)), np.arange(30) % 3


@pytest.mark.parametrize("call,message", [
    (lambda: standard_error(0.5, 2.0), "n must be a positive int, got 2.0"),
    (lambda: standard_error(True, 10), "p must be a number in [0, 1], got True"),
    (lambda: min_dev_size(1, 0.5), "delta must be a number in (0, 1), got 1"),
    (lambda: min_dev_size(0.01, float("nan")), "p must be a number in [0, 1], got nan"),
    (lambda: classification_report([0, 1], [0, 1], digits=-1), "digits must be a non-negative int, got -1"),
    (lambda: classification_report([0, 1], [0, 1], target_names=["a"]), "target_names must be a list of 2 names (one per class), got ['a']"),
    (lambda: confusion_matrix([0, 1], [0, 1], labels=[0, 0]), "labels must be a list of distinct classes, got [0, 0]"),
    (lambda: confusion_matrix([[0, 1]], [0]), "y_true and y_pred must have the same length, got 2 and 1"),
    (lambda: confusion_matrix(np.zeros((2, 3)), [0]), "y_true must be 1-D, (1, m) or (m, 1) (one label per example), got shape (2, 3)"),
    (lambda: f1_score([0, 1], [0, 1], average="mean"), "average must be one of 'binary', 'micro', 'macro', 'weighted', None, got 'mean'"),
    (lambda: f1_score([0, 2], [2, 0]), "pos_label must be one of 0, 2, got 1"),
    (lambda: select_model({"a": {"f1": float("inf")}}, "f1"), "candidate 'a': metric 'f1' must be a finite number, got inf"),
    (lambda: select_model({"a": {"f1": 1, "ms": 2}}, "f1", {"ms": ("=", 3)}), "satisficing['ms']: op must be one of '<=', '<', '>=', '>', got '='"),
    (lambda: select_model({"a": {"f1": 1, "ms": 2}}, "f1", {"ms": float("nan")}), "satisficing['ms']: bound must be a finite number, got nan"),
    (lambda: select_model([], "f1"), "candidates must be a non-empty dict of name -> {metric: value}, got []"),
    (lambda: train_dev_test_split(_X, _y, (0.6, 0.4)), "fractions must be a sequence of 3 numbers (train, dev, test), got (0.6, 0.4)"),
    (lambda: train_dev_test_split(_X, _y, (0.6, "0.2", 0.2)), "the dev fraction must be a positive number, got '0.2'"),
    (lambda: split_with_train_dev(_X, _y, _X, _y, target_fractions=(-0.1, 0.6, 0.5)), "the train fraction must be a non-negative number, got -0.1"),
    (lambda: time_per_batch(lambda X: X, np.ones(2), repeats=0), "repeats must be a positive int, got 0"),
])
def test_bad_arguments_say_what_was_expected(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ---------------------------------------------------------------- label arrays as chapter 1 and the layer API give them

from dlnotes.nn.deep import initialize_parameters_deep, L_model_forward, predict as deep_predict

LABEL_METRICS = [confusion_matrix, accuracy, precision, recall, f1_score, precision_recall_f1, classification_report]


def _deep_predictions(m=40):
    "Labels Y (1, m) and a chapter 1 network's predictions (1, m) and probabilities (1, m)."
    rng = np.random.default_rng(11)
    X = rng.standard_normal((3, m))
    Y = (X[:1] > 0).astype(np.int64)
    P = initialize_parameters_deep([3, 4, 1], seed=0, dtype=np.float64)
    return Y, deep_predict(X, P), L_model_forward(X, P)[0]


@pytest.mark.parametrize("fn", LABEL_METRICS)
def test_row_and_column_label_arrays_are_accepted(fn):
    Y, Y_hat, _ = _deep_predictions()
    t, p = np.ravel(Y), np.ravel(Y_hat)
    expected = fn(t, p)
    for a, b in ((Y, Y_hat), (Y.T, Y_hat.T), (t, Y_hat), (Y, p.tolist())):   # (1, m) from deep.predict, (m, 1) from a layer model
        got = fn(a, b)
        if isinstance(expected, str): assert got == expected
        else: np.testing.assert_array_equal(got, expected)
    assert accuracy([0.0, 1.0, 2.0], [0, 1, 1]) == pytest.approx(2 / 3)       # float labels that are whole numbers are labels


@pytest.mark.parametrize("fn", LABEL_METRICS)
def test_probabilities_are_refused_not_scored_as_zeros(fn):
    Y, _, AL = _deep_predictions()
    Y, AL = np.ravel(Y), np.ravel(AL)
    for a, b, name in ((Y, AL, "y_pred"), (AL, Y, "y_true"), (Y, AL.reshape(1, -1), "y_pred")):
        with pytest.raises(ValueError, match=rf"{name} must hold class labels, got non-integer values such as 0\.\d+ \(probabilities or scores\?\): threshold them first"):
            fn(a, b)
    if fn in (precision, recall, f1_score, precision_recall_f1):  # averaged over the "classes" 0.0, 0.0404, ..., these scored 0.0
        with pytest.raises(ValueError, match="y_pred must hold class labels"):
            fn(Y, AL, average="macro")
    with pytest.raises(ValueError, match=re.escape("y_pred contains 1 NaN and 0 infinite values (of 2)")):
        fn([0, 1], [0.0, np.nan])
