"The objectives of dlnotes.seq.word2vec checked in float64 against central differences and loop references: the neural language model, skip-gram with the full softmax, negative sampling; pairs, subsampling, the noise table, row updates, the trainers and their argument checks."
import json, math
from pathlib import Path
import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.gradcheck import grad_check
from dlnotes.seq.word2vec import (add_rows, check_sentences, encode_sentences, keep_probability, negative_sampling,
                                  nlm_init, nlm_loss, nlm_windows, noise_distribution, noise_table, skipgram_pairs,
                                  softmax_skipgram, train_nlm, train_skipgram)
from dlnotes.seq.embeddings import Vocabulary

WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


def toy_corpus(n_sent=60, V=30, length=12, seed=0):
    "Sentences drawn from two topics (words 0..V/2-1 and V/2..V-1): skip-gram must put same-topic words closer."
    rng = np.random.default_rng(seed)
    half = V // 2
    return [rng.integers(0, half, length) + half * (i % 2) for i in range(n_sent)]


def test_softmax_skipgram_gradients_and_loop():
    rng = np.random.default_rng(1)
    Ec, Theta, t = rng.standard_normal((7, 5)), rng.standard_normal((11, 5)), np.array([0, 10, 10, 3, 3, 3, 7])
    J, dEc, dTheta = softmax_skipgram(Ec, Theta, t)
    grad_check(lambda: softmax_skipgram(Ec, Theta, t)[0], {"Ec": Ec, "Theta": Theta}, {"Ec": dEc, "Theta": dTheta}, tol=1e-7)
    J_loop = 0.0
    for b in range(len(t)):  # the notes' formula with the sum over j, pair by pair
        z = np.array([Theta[j] @ Ec[b] for j in range(len(Theta))])
        J_loop -= z[t[b]] - math.log(sum(math.exp(v) for v in z))
    assert abs(J - J_loop) < 1e-10


def test_softmax_skipgram_large_scores_stay_finite():
    J, dEc, dTheta = softmax_skipgram(np.array([[100.0, 0.0]]), np.array([[10.0, 0.0], [-10.0, 0.0]]), np.array([1]))
    assert math.isclose(J, 2000.0, rel_tol=1e-12) and np.isfinite(dEc).all() and np.isfinite(dTheta).all()


def test_negative_sampling_gradients_and_loop():
    rng = np.random.default_rng(2)
    Ec, Tp, Tn = rng.standard_normal((5, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 6, 4))
    J, dEc, dTp, dTn = negative_sampling(Ec, Tp, Tn)
    grad_check(lambda: negative_sampling(Ec, Tp, Tn)[0], {"Ec": Ec, "Tp": Tp, "Tn": Tn}, {"Ec": dEc, "Tp": dTp, "Tn": dTn}, tol=1e-7)
    sig = lambda z: 1 / (1 + math.exp(-z))
    J_loop = -sum(math.log(sig(Tp[b] @ Ec[b])) + sum(math.log(1 - sig(Tn[b, i] @ Ec[b])) for i in range(6)) for b in range(5))
    assert abs(J - J_loop) < 1e-10


def test_negative_sampling_extreme_scores():
    J, dEc, dTp, dTn = negative_sampling(np.array([[40.0]]), np.array([[40.0]]), np.array([[[-40.0]]]))
    assert abs(J) < 1e-12 and np.isfinite(dEc).all()  # both answers right with huge margins: J ≈ 0
    J, *_ = negative_sampling(np.array([[40.0]]), np.array([[-40.0]]), np.array([[[40.0]]]))
    assert math.isclose(J, 3200.0, rel_tol=1e-12)


def test_nlm_gradients_with_repeated_words():
    p = nlm_init(V=9, n=3, d=4, hidden=6, seed=3, dtype=np.float64)
    X, y = np.array([[1, 1, 1], [2, 8, 2], [0, 5, 7], [8, 8, 3]]), np.array([4, 1, 1, 0])
    J, g = nlm_loss(p, X, y)
    grad_check(lambda: nlm_loss(p, X, y)[0], p, g, tol=1e-7)
    H = np.tanh(p["E"][X].reshape(4, -1) @ p["W1"] + p["b1"])  # loop reference of J
    Z = H @ p["W2"] + p["b2"]
    J_ref = -np.mean([Z[b, y[b]] - math.log(np.exp(Z[b]).sum()) for b in range(4)])
    assert abs(J - J_ref) < 1e-10


def test_nlm_windows_stay_inside_sentences():
    X, y = nlm_windows([np.array([1, 2, 3]), np.array([4, 5, 6, 7])], n=2)
    assert X.tolist() == [[1, 2], [4, 5], [5, 6]] and y.tolist() == [3, 6, 7]
    fails(lambda: nlm_windows([np.array([1, 2])], n=0), contains="n must be a positive int")


def test_skipgram_pairs_against_loop():
    rng = np.random.default_rng(4)
    sents = [rng.integers(0, 50, n) for n in (1, 7, 3, 12)]
    for window in (1, 2, 5):
        c, t = skipgram_pairs(sents, window)
        ref = [(s[i], s[j]) for s in sents for i in range(len(s)) for j in range(len(s)) if 0 < abs(i - j) <= window]
        assert sorted(zip(c.tolist(), t.tolist())) == sorted((int(a), int(b)) for a, b in ref)
    c, t = skipgram_pairs(sents, 5, np.random.default_rng(0))  # reduced windows: a subset of the full-window pairs
    full = skipgram_pairs(sents, 5)
    assert len(c) < len(full[0]) and set(zip(c.tolist(), t.tolist())) <= set(zip(full[0].tolist(), full[1].tolist()))


def test_keep_probability_formula_and_noise():
    counts = np.array([500, 300, 150, 49, 1])
    f = counts / counts.sum()
    for t in (1e-1, 1e-2):
        ref = [min(1.0, (math.sqrt(fi / t) + 1) * t / fi) for fi in f]
        np.testing.assert_allclose(keep_probability(counts, t), ref, rtol=1e-12)
    assert (keep_probability(counts, 0) == 1).all()
    fails(lambda: keep_probability(counts, -1e-3), contains="sample")
    p = noise_distribution(counts)
    np.testing.assert_allclose(p, counts ** 0.75 / (counts ** 0.75).sum(), rtol=1e-12)
    np.testing.assert_allclose(noise_distribution(counts, 0), np.full(5, 0.2))
    table = noise_table(p, size=2**16)
    np.testing.assert_allclose(np.bincount(table, minlength=5) / len(table), p, atol=2 / 2**16)


def test_add_rows_matches_add_at():
    rng = np.random.default_rng(5)
    idx, vals = rng.integers(0, 6, 40), rng.standard_normal((40, 3))
    M, ref = rng.standard_normal((6, 3)), None
    ref = M.copy(); np.add.at(ref, idx, vals)
    np.testing.assert_allclose(add_rows(M, idx, vals), ref, rtol=1e-12, atol=1e-12)


def test_bad_input():
    sents = toy_corpus(4)
    counts = np.bincount(np.concatenate(sents), minlength=30)
    fails(lambda: train_skipgram(sents, counts, window=0), contains="window must be a positive int, got 0")
    fails(lambda: train_skipgram(sents, counts, k=0), contains="k must be a positive int, got 0")
    fails(lambda: train_skipgram([[], []], counts), contains="sentences must be a non-empty corpus")
    fails(lambda: train_skipgram(sents, counts, objective="cbow"), contains="objective")
    fails(lambda: skipgram_pairs(sents, window=0), contains="window must be a positive int")
    fails(lambda: check_sentences([]), contains="sentences must be a non-empty corpus")
    vocab = Vocabulary.from_tokens([["a", "b", "a"]])
    fails(lambda: encode_sentences([["c", "d"]], vocab), contains="sentences must be a non-empty corpus")
    assert encode_sentences([["a", "z", "b"]], vocab)[0].tolist() == [vocab.index("a"), vocab.index("b")]


@pytest.mark.parametrize("objective", ["negative", "softmax"])
def test_skipgram_learns_topics(objective):
    sents, V = toy_corpus(), 30
    counts = np.bincount(np.concatenate(sents), minlength=V)
    E, _, info = train_skipgram(sents, counts, objective, d=8, window=3, k=5, sample=0, epochs=8, batch_size=64,
                                lr=0.05 if objective == "negative" else 0.1, seed=0)
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    S = U @ U.T
    same = np.equal.outer(np.arange(V) < 15, np.arange(V) < 15) & ~np.eye(V, dtype=bool)
    assert S[same].mean() > S[~np.equal.outer(np.arange(V) < 15, np.arange(V) < 15)].mean() + 0.3
    assert info["loss"][-1] < info["loss"][0] and info["words"] == 8 * sum(len(s) for s in sents)


def test_nlm_learns():
    sents = [np.array([1, 2, 3, 4, 5] * 4) for _ in range(30)]  # deterministic successor: the loss must fall far
    params, info = train_nlm(sents, V=6, n=2, d=4, hidden=8, epochs=5, lr=0.1, batch_size=32)
    assert info["loss"][-1] < 0.5 and info["loss"][0] > 2 * info["loss"][-1]


def test_saved_results():
    r = json.loads((WEIGHTS / "word2vec_results.json").read_text())
    assert r["settings"]["window"] == 5 and r["settings"]["d"] == 50 and r["settings"]["min_count"] == 10
    saved = np.load(WEIGHTS / "word2vec_sgns.npz")
    assert saved["E"].shape == (r["settings"]["V"], 50)
