"Gradient checks, masks, folds, the models and bad input for dlnotes.seq.sentiment."
import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import randn, seed, to_numpy
from dlnotes.gradcheck import as_float64, grad_check
from dlnotes.nn.models import load_model
from dlnotes.seq.embeddings import WordVectors
from dlnotes.seq.sentiment import (MaskedAverage, embedding_matrix, majority_accuracy, negation_sentences, sentence_indices,
                                   sentiment_model, stratified_folds)

TOL = 1e-7


@pytest.mark.parametrize("lengths, d", [([5, 3, 1, 0], 3), ([2, 2], 1), ([7], 4)])
def test_masked_average_gradcheck(lengths, d):
    seed(sum(lengths) + d)
    T = max(lengths) or 1
    keep = np.array(lengths)[:, None] > np.arange(T)[None, :]
    words = randn(int(keep.sum()), d, dtype=np.float64)
    def x_of(w):
        x = np.zeros((len(lengths), T, d)); x[keep] = w
        return x
    layer, R = MaskedAverage(), randn(len(lengths), d, dtype=np.float64)
    layer(x_of(words))
    dwords = layer.backward(R)[keep]
    assert grad_check(lambda: (layer(x_of(words)) * R).sum(), words, dwords)["all"] < TOL


def test_masked_average_is_a_loop_mean():
    seed(1)
    x = randn(3, 6, 2, dtype=np.float64)
    x[0, 4:] = 0; x[2, :] = 0; x[1, 2] = 0  # padding at the end, an empty sentence, a zero step inside
    out = MaskedAverage()(x)
    for i in range(3):
        rows = [x[i, t] for t in range(6) if np.any(x[i, t] != 0)]
        np.testing.assert_allclose(out[i], np.mean(rows, axis=0) if rows else np.zeros(2), atol=1e-12)


def _model_gradcheck(kind, trainable):
    seed(5)
    E = randn(7, 4, dtype=np.float64); E[0] = 0
    model = sentiment_model(E, kind, units=3, trainable_embeddings=trainable)
    for l in model.layers: as_float64(l)
    model.params["embedding/embeddings"] = E
    X = np.array([[1, 2, 3, 0, 0], [4, 4, 6, 5, 0], [6, 0, 0, 0, 0]])
    R = randn(3, 2, dtype=np.float64)
    model.forward(X); model.backward(R)
    names = [n for n in model.params if trainable or not n.startswith("embedding")]
    params = {n: model.params[n] for n in names}
    grads = {n: np.array(model.grads[n]) for n in names}
    return grad_check(lambda: (model.forward(X) * R).sum(), params, grads)


@pytest.mark.parametrize("kind", ["average", "lstm"])
@pytest.mark.parametrize("trainable", [False, True])
def test_model_gradcheck(kind, trainable):
    assert _model_gradcheck(kind, trainable)["all"] < TOL


def test_padding_changes_nothing_and_frozen_embeddings_stay():
    seed(2)
    E = randn(9, 5).astype(np.float32); E[0] = 0
    X = np.array([[3, 1, 4, 1, 5], [2, 6, 0, 0, 0]])
    for kind in ("average", "lstm"):
        m = sentiment_model(E, kind, units=4)
        np.testing.assert_allclose(to_numpy(m.predict(X)), to_numpy(m.predict(np.pad(X, ((0, 0), (0, 7))))), atol=1e-6)
        m.fit(X, np.array([1, 0]), epochs=3, verbose=0, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[])
        np.testing.assert_array_equal(to_numpy(m.params["embedding/embeddings"]), E)
    m = sentiment_model(E, "lstm", units=4, trainable_embeddings=True)
    m.fit(X, np.array([1, 0]), epochs=3, verbose=0, optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[])
    moved = np.abs(to_numpy(m.params["embedding/embeddings"]) - E).max(axis=1)
    assert moved[[1, 2, 3, 4, 5, 6]].min() > 0 and moved[[7, 8]].max() == 0  # only the rows that occur are trained


def test_save_and_load(tmp_path):
    seed(3)
    E = randn(6, 3).astype(np.float32); E[0] = 0
    m = sentiment_model(E, "average")
    X = np.array([[1, 2, 0], [5, 0, 0]])
    m.save(tmp_path / "s.npz")
    np.testing.assert_allclose(to_numpy(load_model(tmp_path / "s.npz").predict(X)), to_numpy(m.predict(X)), atol=1e-7)


def test_sentence_indices_and_matrix():
    X, n = sentence_indices([["b", "x", "a"], [], ["a"] * 5], ["a", "b"], maxlen=3)
    assert X.tolist() == [[2, 1, 0], [0, 0, 0], [1, 1, 1]] and n == 1 and X.dtype == np.int64
    wv = WordVectors(["a", "b"], np.array([[1.0, 2.0], [3.0, 4.0]], np.float32))
    assert embedding_matrix(wv, ["b"]).tolist() == [[0, 0], [3, 4]]


@pytest.mark.parametrize("k, seed_", [(2, 0), (5, 1), (10, 2)])
def test_stratified_folds(k, seed_):
    y = np.array([0] * 37 + [1] * 23 + [2] * 10)
    folds = stratified_folds(y, k, seed_)
    assert len(folds) == k
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested.tolist()) == list(range(len(y)))
    for tr, te in folds:
        assert not set(tr) & set(te) and len(tr) + len(te) == len(y)
        for c, n in enumerate((37, 23, 10)):  # each class split as evenly as possible
            assert int((y[te] == c).sum()) in (n // k, -(-n // k))
    assert [te.tolist() for _, te in folds] == [te.tolist() for _, te in stratified_folds(y, k, seed_)]


def test_majority_accuracy():
    y = np.array([0, 0, 0, 1, 1, 0])
    assert majority_accuracy(y, [(np.array([0, 1, 3]), np.array([2, 4, 5]))]) == [2 / 3]
    assert majority_accuracy(y, [(np.array([3, 4]), np.array([0, 1]))]) == [0.0]


def test_negation_sentences_labels():
    s, y = negation_sentences(("nice",), ("dull", "poor"), ("the plot",))
    d = {" ".join(t): l for t, l in zip(s, y)}
    assert d["the plot is not dull at all"] == 1 and d["the plot is nice"] == 1 and d["poor not nice"] == 0
    assert len(s) == 9 + 4 and y.sum() == 1 + 4 + 2


def test_bad_input():
    E = np.zeros((3, 2), np.float32)
    fails(lambda: sentiment_model(E, "gru"), contains="kind must be one of")
    fails(lambda: sentiment_model(E, "lstm", units=0), contains="units must be a positive int, got 0")
    fails(lambda: sentiment_model(E[:1]), contains="E must be a (V + 1, d) embedding matrix")
    fails(lambda: sentiment_model(E, trainable_embeddings="yes"), contains="trainable_embeddings")
    fails(lambda: sentence_indices("a b", ["a"]), contains="sentences must be a list of token lists")
    fails(lambda: sentence_indices([["a"]], ["a"], maxlen=0), contains="maxlen must be a positive int, got 0")
    fails(lambda: stratified_folds([0, 0, 1], 2), contains="k must be at most the size of the smallest class (1), got 2")
    fails(lambda: stratified_folds([0, 1], 1), contains="k must be an int >= 2, got 1")
    fails(lambda: MaskedAverage()(np.ones((2, 3, 4, 5))), contains="x must have 3 axes (batch, T, features)")
    fails(lambda: negation_sentences((), ("bad",)), contains="non-empty lists of adjectives")
    model = sentiment_model(E)
    fails(lambda: model.predict(np.array([[1, 3]])), contains="x must be indices in [0, 2] (input_dim = 3), got index 3")
    fails(lambda: model.predict(np.array([[1.0, 2.0]])), contains="integer array of word indices, got dtype float")
