"""Tests of dlnotes.nn.metrics: every metric against scikit-learn on random data accumulated over several batches, with and
without sample weights, from logits and from probabilities; update_state never copies to the host; names; bad input.

The AUC is Keras's: the trapezoid rule over the ROC points at num_thresholds fixed thresholds. It equals the exact AUC
with every positive-negative pair whose scores fall between the same two thresholds counted as a tie, so
|AUC_T - AUC| <= sum_b P_b N_b / (2 P N) (P_b, N_b: weight of the positives and negatives in bin b). That bound,
computed here independently of the library, is the tolerance against roc_auc_score; for scores spread over [0, 1] it is
about 1 / (2 (T - 1)) = 0.0025 at T = 200, and the tests also check that it is that small for such scores."""
import math
import operator

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, precision_score, recall_score, roc_auc_score, mean_absolute_error,
                             mean_squared_error)

from dlnotes.backend import HAS_GPU, get_array_module, to_numpy, xp
from dlnotes.nn.losses import BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError as MSELoss
from dlnotes.nn.metrics import (Metric, BinaryAccuracy, CategoricalAccuracy, Precision, Recall, AUC, MeanAbsoluteError,
                                MeanSquaredError, METRICS, get_metric, get_metrics, HostCopyError, _NoHostArray)

SEEDS = range(3)


def _sigmoid(z): return 1 / (1 + np.exp(-z))


def _splits(m, rng, n=6):
    "Index arrays of n batches of unequal sizes covering range(m)."
    cuts = np.sort(rng.choice(np.arange(1, m), n - 1, replace=False))
    return np.split(np.arange(m), cuts)


def _accumulate(metric, parts, pred, true, w=None):
    "Feed `metric` the batches `parts` of (pred, true, w) and return its result."
    for part in parts: metric.update_state(pred[part], true[part], None if w is None else w[part])
    return metric.result()


def _binary_data(s, m=257, k=1):
    rng = np.random.default_rng(s)
    z = rng.normal(0, 2, (m, k))
    y = rng.integers(0, 2, (m, k))
    return rng, z, y, rng.uniform(0, 3, m)


# ---- binary accuracy, precision, recall ----------------------------------------------------------------------------

SKLEARN = {BinaryAccuracy: accuracy_score, Precision: precision_score, Recall: recall_score}


@pytest.mark.parametrize("cls", list(SKLEARN))
@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.8])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("s", SEEDS)
def test_binary_metrics_equal_sklearn(cls, threshold, from_logits, weighted, s):
    rng, z, y, w = _binary_data(s)
    w = w if weighted else None
    y_hat = (_sigmoid(z[:, 0]) > threshold).astype(int)  # the definition, on probabilities
    want = SKLEARN[cls](y[:, 0], y_hat, sample_weight=w)
    pred = z if from_logits else _sigmoid(z)
    for labels in (y[:, 0], y):  # (m,) labels for (m, 1) predictions, and (m, 1)
        got = _accumulate(cls(threshold=threshold, from_logits=from_logits), _splits(len(y), rng), pred, labels, w)
        assert abs(got - want) < 1e-12, (got, want)


@pytest.mark.parametrize("cls", list(SKLEARN))
@pytest.mark.parametrize("s", SEEDS)
def test_binary_metrics_with_several_outputs_weight_each_example(cls, s):
    "(m, k) outputs: each entry is a prediction, carrying its example's weight (Keras's rule)."
    rng, z, y, w = _binary_data(s, m=120, k=3)
    want = SKLEARN[cls](y.ravel(), (z.ravel() > 0).astype(int), sample_weight=np.repeat(w, 3))
    got = _accumulate(cls(), _splits(120, rng), z, y, w)
    assert abs(got - want) < 1e-12


def test_thresholds_at_the_ends_and_hand_counts():
    z, y = np.array([[2.0], [-1.0], [0.5], [-3.0]]), np.array([1, 0, 0, 1])
    assert Precision(threshold=0.0)(z, y) == 0.5  # everything positive
    assert Recall(threshold=1.0)(z, y) == 0.0  # nothing positive
    assert BinaryAccuracy()(z, y, sample_weight=[1, 1, 2, 3]) == 2 / 7
    assert Precision()(z, y) == 0.5 and Recall()(z, y) == 0.5


# ---- categorical accuracy ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["integers", "column", "floats", "one-hot", "smoothed"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("s", SEEDS)
def test_categorical_accuracy_equals_sklearn(layout, weighted, s):
    rng = np.random.default_rng(s)
    m, C = 203, 4
    Z, k, w = rng.normal(size=(m, C)), rng.integers(0, C, m), rng.uniform(0, 2, m) if weighted else None
    labels = {"integers": k, "column": k[:, None], "floats": k.astype(float), "one-hot": np.eye(C)[k],
              "smoothed": np.eye(C)[k] * 0.9 + 0.1 / C}[layout]
    want = accuracy_score(k, Z.argmax(1), sample_weight=w)
    for pred in (Z, np.exp(Z) / np.exp(Z).sum(1, keepdims=True)):  # logits or probabilities: the same arg-max
        assert abs(_accumulate(CategoricalAccuracy(), _splits(m, rng), pred, labels, w) - want) < 1e-12


def test_categorical_accuracy_over_a_sequence_axis():
    rng = np.random.default_rng(5)
    Z, k, w = rng.normal(size=(40, 6, 3)), rng.integers(0, 3, (40, 6)), rng.uniform(0, 2, 40)
    want = accuracy_score(k.ravel(), Z.argmax(-1).ravel(), sample_weight=np.repeat(w, 6))
    assert abs(_accumulate(CategoricalAccuracy(), _splits(40, rng), Z, k, w) - want) < 1e-12


# ---- AUC -----------------------------------------------------------------------------------------------------------

def _bins(scores, T):
    "Bin of each probability: how many of the interior thresholds i / (T - 1), i = 1..T-2, lie strictly below it."
    t = np.arange(1, T - 1) / (T - 1)
    return (scores[:, None] > t[None, :]).sum(axis=1)


def _keras_auc_and_bound(scores, y, w, T):
    "Keras's AUC (trapezoids between the ROC points at its T thresholds), and the tie bound, computed directly."
    t = np.concatenate([[-1e-7], np.arange(1, T - 1) / (T - 1), [1 + 1e-7]])
    above = scores[:, None] > t[None, :]
    tp, fp = ((w * y)[:, None] * above).sum(0), ((w * (1 - y))[:, None] * above).sum(0)
    tpr, fpr = tp / tp[0], fp / fp[0]
    auc = ((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2).sum()
    b = _bins(scores, T)
    P_b, N_b = np.bincount(b, w * y, T - 1), np.bincount(b, w * (1 - y), T - 1)
    return auc, (P_b * N_b).sum() / (2 * P_b.sum() * N_b.sum())


@pytest.mark.parametrize("T", [200, 2, 17])
@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("s", SEEDS)
def test_auc_is_keras_auc_and_within_its_bound_of_sklearn(T, from_logits, weighted, s):
    rng = np.random.default_rng(s)
    m = 1500
    y = (rng.random(m) < 0.3).astype(np.int64)
    z = rng.normal(1.2 * y - 0.5, 1.0)
    w = rng.uniform(0, 2, m) if weighted else np.ones(m)
    p = _sigmoid(z)
    metric = AUC(num_thresholds=T, from_logits=from_logits)
    got = _accumulate(metric, _splits(m, rng), z if from_logits else p, y, w if weighted else None)
    keras, bound = _keras_auc_and_bound(p, y, w, T)
    assert abs(got - keras) < 1e-12
    assert abs(metric.error_bound() - bound) < 1e-12
    exact = roc_auc_score(y, z, sample_weight=w)
    assert abs(got - exact) <= bound + 1e-12
    if T == 200: assert bound < 1 / (T - 1)  # scores spread over [0, 1]: a few thousandths at most
    if T == 2: assert got == 0.5  # one bin: every pair a tie


def test_auc_of_uniform_scores_is_within_a_quarter_percent():
    rng = np.random.default_rng(11)
    s, y = rng.random(20000), rng.integers(0, 2, 20000)
    s = np.clip(s + 0.2 * y, 0, 1)
    metric = AUC(from_logits=False)
    got = _accumulate(metric, _splits(20000, rng, n=20), s, y)
    assert metric.error_bound() < 1.05 / (2 * 199)
    assert abs(got - roc_auc_score(y, s)) <= metric.error_bound()


def test_auc_hand_cases():
    assert AUC(from_logits=False)(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert AUC()(np.array([-5.0, 5.0]), np.array([0, 1])) == 1.0
    assert AUC()(np.array([[0.0], [1.0]]), np.array([1, 1])) == 0.0  # no negatives
    assert AUC().result() == 0.0 and AUC().error_bound() == 0.0


# ---- errors --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, fn", [(MeanAbsoluteError, mean_absolute_error), (MeanSquaredError, mean_squared_error)])
@pytest.mark.parametrize("k", [0, 1, 3])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("s", SEEDS)
def test_errors_equal_sklearn(cls, fn, k, weighted, s):
    rng = np.random.default_rng(s)
    shape = (97,) if k == 0 else (97, k)
    P, Y, w = rng.normal(size=shape), rng.normal(size=shape), rng.uniform(0, 2, 97) if weighted else None
    want = fn(Y, P, sample_weight=w)
    assert abs(_accumulate(cls(), _splits(97, rng), P, Y, w) - want) < 1e-12
    if k == 1: assert abs(_accumulate(cls(), _splits(97, rng), P, Y[:, 0], w) - want) < 1e-12  # (m,) targets


# ---- state, weights, configuration -----------------------------------------------------------------------------------

ALL = [BinaryAccuracy, Precision, Recall, AUC, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError]


def _inputs(cls, rng, m):
    "Predictions and targets that `cls` accepts."
    if cls is CategoricalAccuracy: return rng.normal(size=(m, 3)), rng.integers(0, 3, m)
    if cls in (MeanAbsoluteError, MeanSquaredError): return rng.normal(size=(m, 2)), rng.normal(size=(m, 2))
    return rng.normal(size=(m, 1)), rng.integers(0, 2, m)


@pytest.mark.parametrize("cls", ALL)
def test_reset_empty_batches_zero_weights_and_results_before_any_batch(cls):
    rng = np.random.default_rng(0)
    metric = cls()
    assert metric.result() == 0.0
    P, Y = _inputs(cls, rng, 30)
    first = metric(P, Y)
    metric.update_state(P[:0], Y[:0])  # an empty batch changes nothing
    assert metric.result() == first
    metric.update_state(P, Y, sample_weight=np.zeros(30))  # neither do zero weights
    assert metric.result() == first
    metric.reset_state()
    assert metric.result() == 0.0
    assert metric(P, Y) == first
    fresh = cls()
    fresh.update_state(P, Y, sample_weight=np.zeros(30))
    assert fresh.result() == 0.0


@pytest.mark.parametrize("cls", ALL)
def test_integer_weights_equal_repeated_examples(cls):
    rng = np.random.default_rng(1)
    P, Y = _inputs(cls, rng, 25)
    w = rng.integers(0, 4, 25)
    weighted = cls()(P, Y, sample_weight=w)
    repeated = cls()(np.repeat(P, w, axis=0), np.repeat(Y, w, axis=0))
    assert abs(weighted - repeated) < 1e-12


@pytest.mark.parametrize("cls", ALL)
def test_config_round_trip_and_configure(cls):
    rng = np.random.default_rng(2)
    P, Y = _inputs(cls, rng, 40)
    metric = cls(name="custom").configure(from_logits=False)
    config = metric.get_config()
    assert config["name"] == "custom"
    assert config.get("from_logits", False) is False and hasattr(metric, "from_logits") == ("from_logits" in config)
    again = cls.from_config(config)
    assert again.get_config() == config and again(P, Y) == metric(P, Y)
    assert repr(metric).startswith(f"{cls.__name__}(")
    assert cls.direction == ("min" if cls in (MeanAbsoluteError, MeanSquaredError) else "max")


def test_default_names_are_kerass():
    assert [c().name for c in ALL] == ["binary_accuracy", "precision", "recall", "auc", "categorical_accuracy",
                                       "mean_absolute_error", "mean_squared_error"]


# ---- no copy to the host ---------------------------------------------------------------------------------------------

def _settings():
    "(metric maker, input maker) for every metric, setting and label layout."
    out = []
    for cls in (BinaryAccuracy, Precision, Recall, AUC):
        out += [(lambda c=cls: c(), lambda r, m: (r.normal(size=(m, 1)), r.integers(0, 2, m))),
                (lambda c=cls: c(from_logits=False), lambda r, m: (r.random((m, 1)), r.integers(0, 2, (m, 1)))),
                (lambda c=cls: c(threshold=0.3) if c is not AUC else c(num_thresholds=7),
                 lambda r, m: (r.normal(size=(m, 3)), r.integers(0, 2, (m, 3)) > 0))]
    out += [(CategoricalAccuracy, lambda r, m: (r.normal(size=(m, 4)), r.integers(0, 4, m))),
            (CategoricalAccuracy, lambda r, m: (r.normal(size=(m, 4)), np.eye(4)[r.integers(0, 4, m)])),
            (CategoricalAccuracy, lambda r, m: (r.normal(size=(m, 4)), r.integers(0, 4, (m, 1)).astype(float))),
            (MeanAbsoluteError, lambda r, m: (r.normal(size=(m, 2)), r.normal(size=(m, 2)))),
            (MeanSquaredError, lambda r, m: (r.normal(size=m), r.normal(size=m)))]
    return out


@pytest.fixture
def guard():
    "The stand-in's switch, reset around each test."
    _NoHostArray.allowed, _NoHostArray.copies = False, 0
    yield _NoHostArray
    _NoHostArray.allowed, _NoHostArray.copies = False, 0


@pytest.mark.parametrize("i", range(len(_settings())))
@pytest.mark.parametrize("weighted", [False, True])
def test_update_state_never_copies_to_the_host_and_result_copies_once(i, weighted, guard):
    make, inputs = _settings()[i]
    rng = np.random.default_rng(i)
    on_device, on_host = make(), make()
    for m in (16, 1, 9, 0, 30):
        P, Y = inputs(rng, m)
        w = rng.uniform(0, 2, m) if weighted else None
        on_device.update_state(_NoHostArray(P), _NoHostArray(Y), None if w is None else _NoHostArray(w))
        on_host.update_state(P, Y, w)
    assert guard.copies == 0
    with pytest.raises(HostCopyError):
        on_device.result()  # the result is a copy: refused while copies are
    guard.allowed = True
    r = on_device.result()
    assert type(r) is float and guard.copies == 1
    assert abs(r - on_host.result()) < 1e-12


def test_metrics_built_by_name_never_copy(guard):
    rng = np.random.default_rng(3)
    z, y = rng.normal(size=(20, 1)), rng.integers(0, 2, 20)
    for metric in get_metrics(["accuracy", "precision", "recall", "auc", "mae", "mse"], BinaryCrossentropy()):
        metric.update_state(_NoHostArray(z), _NoHostArray(y), _NoHostArray(np.ones(20)))
    assert guard.copies == 0


@pytest.mark.parametrize("copy", [float, int, bool, operator.index, to_numpy, np.asarray, np.array, lambda a: a.item(),
                                  lambda a: a.tolist(), lambda a: 1 if a > 0 else 0, lambda a: [1, 2][a],
                                  lambda a: np.float64(a), lambda a: math.isfinite(a)])
def test_the_stand_in_refuses_every_copy_to_the_host(copy, guard):
    a = _NoHostArray(np.array(1))
    with pytest.raises(HostCopyError):
        copy(a)
    assert guard.copies == 0


def test_the_stand_in_computes_like_numpy(guard):
    a = np.arange(12.0).reshape(3, 4)
    d = _NoHostArray(a)
    for op in (lambda x: (x * 2 + 1).sum(axis=0), lambda x: x.argmax(axis=-1), lambda x: np.cumsum(x[::-1], axis=0),
               lambda x: np.where(x > 3, x, 0), lambda x: x.reshape(4, 3).astype(np.float32), lambda x: abs(-x).max(),
               lambda x: np.bincount(x.ravel().astype(int), weights=x.ravel(), minlength=20),
               lambda x: np.searchsorted(np.array([2.5, 7.5]), x.ravel())):
        got = op(d)
        assert isinstance(got, _NoHostArray)
        guard.allowed = True
        np.testing.assert_array_equal(np.asarray(got), op(a))
        guard.allowed = False


class _Careless(BinaryAccuracy):
    "A metric that keeps a running count on the host, as a careless one would."
    def update_state(self, y_pred, y_true, sample_weight=None):
        super().update_state(y_pred, y_true, sample_weight)
        if self.num > 10: self.big = True


def test_a_metric_that_copies_is_caught(guard):
    with pytest.raises(HostCopyError, match="an `if` on an array"):
        _Careless().update_state(_NoHostArray(np.ones((4, 1))), _NoHostArray(np.ones(4)))


@pytest.mark.skipif(not HAS_GPU, reason="needs a GPU")
@pytest.mark.parametrize("i", range(len(_settings())))
def test_on_the_gpu_the_state_stays_there_and_agrees_with_numpy(i):
    make, inputs = _settings()[i]
    rng = np.random.default_rng(i)
    gpu, cpu = make(), make()
    for m in (16, 9, 30):
        P, Y = inputs(rng, m)
        w = rng.uniform(0, 2, m)
        gpu.update_state(xp.asarray(P), xp.asarray(Y), xp.asarray(w))
        cpu.update_state(P, Y, w)
    state = gpu.pos if isinstance(gpu, AUC) else gpu.num
    assert get_array_module(state).__name__ == "cupy"
    assert abs(gpu.result() - cpu.result()) < 1e-9


# ---- names -----------------------------------------------------------------------------------------------------------

def test_accuracy_follows_the_loss_and_one_string_is_one_metric():
    for loss, cls in ((BinaryCrossentropy(), BinaryAccuracy), ("binary_crossentropy", BinaryAccuracy),
                      (CategoricalCrossentropy(), CategoricalAccuracy), ("sparse_categorical_crossentropy", CategoricalAccuracy)):
        for name in ("accuracy", "acc", "Accuracy"):
            got = get_metrics(name, loss)
            assert len(got) == 1 and type(got[0]) is cls and got[0].name == "accuracy"
    for loss in (MSELoss(), "mse", None):
        with pytest.raises(ValueError, match="needs a cross-entropy loss to choose binary or categorical accuracy"):
            get_metric("accuracy", loss)


def test_every_name_resolves_and_is_logged_as_written():
    for name, cls in METRICS.items():
        metric = get_metric(name)
        assert type(metric) is cls and metric.name == name
    assert [m.name for m in get_metrics(("mae", "mean_absolute_error"))] == ["mae", "mean_absolute_error"]


def test_names_take_from_logits_from_the_loss_and_objects_are_kept():
    for name in ("binary_accuracy", "precision", "recall", "auc"):
        assert get_metric(name, BinaryCrossentropy(from_logits=False)).from_logits is False
        assert get_metric(name, BinaryCrossentropy()).from_logits is True
    obj = Precision(from_logits=True)
    assert get_metric(obj, BinaryCrossentropy(from_logits=False)) is obj and obj.from_logits is True
    assert get_metrics(obj) == [obj] and get_metrics([obj, "auc"])[0] is obj
    assert get_metrics(None) == [] and get_metrics([]) == []


def test_bad_names_and_containers():
    with pytest.raises(ValueError, match="unknown metric 'f1'; valid names: accuracy, acc, binary_accuracy, categorical_accuracy, "
                                         "sparse_categorical_accuracy, precision, recall, auc, mae, mean_absolute_error, mse"):
        get_metric("f1")
    with pytest.raises(TypeError, match="a metric must be a name or a Metric object, got NoneType"):
        get_metrics([None])
    with pytest.raises(TypeError, match="metrics must be a name, a Metric or a list of them, got dict"):
        get_metrics({"a": "auc"})
    with pytest.raises(ValueError, match="two metrics are named 'accuracy'"):
        get_metrics(["accuracy", "acc"], BinaryCrossentropy())
    with pytest.raises(TypeError, match="loss must be None, a name or a Loss object, got int"):
        get_metric("auc", loss=3)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_metric("auc", loss="hinge")


# ---- bad input -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, message", [
    (lambda: BinaryAccuracy(threshold=-0.1), "BinaryAccuracy: threshold must be a number in [0, 1], got -0.1"),
    (lambda: Precision(threshold="0.5"), "Precision: threshold must be a number in [0, 1], got '0.5'"),
    (lambda: Recall(threshold=float("nan")), "Recall: threshold must be a number in [0, 1], got nan"),
    (lambda: AUC(num_thresholds=1), "AUC: num_thresholds must be an int >= 2, got 1"),
    (lambda: AUC(num_thresholds=200.0), "AUC: num_thresholds must be an int >= 2, got 200.0"),
    (lambda: AUC(from_logits=1), "AUC: from_logits must be True or False, got 1"),
    (lambda: MeanAbsoluteError(name=""), "MeanAbsoluteError: name must be a non-empty str, got ''"),
    (lambda: BinaryAccuracy().configure(from_logits="no"), "BinaryAccuracy: from_logits must be True or False, got 'no'"),
])
def test_bad_arguments(make, message):
    with pytest.raises(ValueError) as e: make()
    assert message in str(e.value)


Z1, Z2, Z3 = np.zeros((4, 1)), np.zeros((4, 2)), np.zeros((4, 3))


@pytest.mark.parametrize("metric, P, Y, w, error, message", [
    (BinaryAccuracy(), Z1, np.zeros(3), None, ValueError, "BinaryAccuracy: y_true has shape (3,), expected the predictions' shape (4, 1)"),
    (Precision(), Z2, np.zeros(4), None, ValueError, "y_true has shape (4,), expected the predictions' shape (4, 2)"),
    (AUC(), Z1, np.zeros(4), np.ones(5), ValueError, "AUC: sample_weight must have shape (4,), one weight per example, got shape (5,)"),
    (Recall(), Z1, np.array(["a", "b", "a", "b"]), None, TypeError, "Recall: y_true must hold numbers, got dtype <U1"),
    (MeanAbsoluteError(), np.float64(1.0), np.float64(1.0), None, ValueError, "MeanAbsoluteError: y_pred must have a batch axis, got shape ()"),
    (CategoricalAccuracy(), Z1, np.zeros(4), None, ValueError, "C >= 2 classes, got shape (4, 1); for one output per example use BinaryAccuracy"),
    (CategoricalAccuracy(), Z3, Z2, None, ValueError, "y_true must have shape (4,) (class labels) or (4, 3) (one-hot), got shape (4, 2)"),
    (CategoricalAccuracy(), Z3, np.zeros(4), np.ones((2, 2)), ValueError, "sample_weight must have shape (4,)"),
])
def test_bad_batches(metric, P, Y, w, error, message):
    with pytest.raises(error) as e: metric.update_state(P, Y, w)
    assert message in str(e.value)


def test_lists_are_accepted():
    assert BinaryAccuracy()([[1.0], [-1.0]], [1, 1], sample_weight=[1, 3]) == 0.25
    assert CategoricalAccuracy()([[0.1, 0.9], [0.8, 0.2]], [1, 1]) == 0.5
    assert isinstance(BinaryAccuracy(), Metric)
