"dlnotes.seq.glove: the co-occurrence counts against a loop, the weighting and its limit, the objective against a loop, its gradients in float64, AdaGrad against a loop, the training and the script's saved results."
import json, math
from pathlib import Path

import numpy as np
import pytest

from dlnotes.gradcheck import grad_check
from dlnotes.seq.glove import (ROLES, Cooccurrence, adagrad_step, cooccurrence, glove_backward, glove_forward,
                               glove_vectors, glove_weight, init_glove, train_glove)
from dlnotes.seq.hsoftmax import sum_by_index

ROOT = Path(__file__).resolve().parents[2]


def _loop_counts(sents, window):
    X = {}
    for s in sents:
        for p in range(len(s)):
            for q in range(len(s)):
                if 0 < abs(p - q) <= window:
                    X[int(s[p]), int(s[q])] = X.get((int(s[p]), int(s[q])), 0.0) + 1.0 / abs(p - q)
    return X


@pytest.mark.parametrize("window", [1, 2, 5, 30])
def test_cooccurrence_against_a_loop(window):
    rng = np.random.default_rng(window)
    sents = [rng.integers(0, 12, size=n) for n in (0, 1, 3, 9, 25)]
    X = cooccurrence(sents, 12, window)
    want = _loop_counts(sents, window)
    assert list(zip(X.i.tolist(), X.j.tolist())) == sorted(want)
    np.testing.assert_allclose(X.x, [want[k] for k in sorted(want)], rtol=1e-12)
    dense = np.zeros((12, 12)); dense[X.i, X.j] = X.x
    np.testing.assert_allclose(dense, dense.T)  # symmetric
    assert X.V == 12


def test_cooccurrence_bad_input():
    with pytest.raises(ValueError, match="cooccurrence: window must be a positive int, got 0"):
        cooccurrence([np.array([0, 1])], 2, 0)
    with pytest.raises(ValueError, match="cooccurrence: window must be a positive int, got -3"):
        cooccurrence([np.array([0, 1])], 2, -3)
    with pytest.raises(ValueError, match="cooccurrence: sentences must be a non-empty list of encoded sentences"):
        cooccurrence([], 2)
    with pytest.raises(ValueError, match="sentences must be a non-empty list"):
        cooccurrence([np.array([], dtype=np.int64)], 2)


def test_weight_and_its_limit():
    x = np.array([0.5, 1.0, 3.0, 99.0, 100.0, 1e5])
    np.testing.assert_allclose(glove_weight(x), [min(1.0, (v / 100) ** 0.75) for v in x], rtol=1e-12)
    np.testing.assert_allclose(glove_weight(x, 10.0, 1.0), np.minimum(1, x / 10), rtol=1e-12)
    assert (glove_weight(x, 1e-9) == 1).all()  # the notes' f: 1 wherever X != 0
    for bad in (0, 0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="glove_weight: x_max must be a positive number"):
            glove_weight(x, bad)


def _random_problem(seed, V=9, d=4):
    rng = np.random.default_rng(seed)
    P = {"theta": rng.normal(size=(V, d)), "e": rng.normal(size=(V, d)), "b": rng.normal(size=V), "b_tilde": rng.normal(size=V)}
    return P, cooccurrence([rng.integers(0, V, size=60)], V, 4)


def test_objective_against_a_loop():
    P, X = _random_problem(0)
    J, _ = glove_forward(P, X.i, X.j, X.x, x_max=3.0, alpha=0.6)
    want = sum(min(1, (x / 3.0) ** 0.6) * (P["theta"][i] @ P["e"][j] + P["b"][i] + P["b_tilde"][j] - math.log(x)) ** 2
               for i, j, x in zip(X.i, X.j, X.x))
    assert math.isclose(float(J), want, rel_tol=1e-12)


@pytest.mark.parametrize("x_max", [1e-9, 2.0, 100.0])
def test_gradients_float64(x_max):
    P, X = _random_problem(1)
    J, cache = glove_forward(P, X.i, X.j, X.x, x_max=x_max)
    grads = {}
    for k, rows in glove_backward(cache).items():
        grads[k] = np.zeros_like(P[k]); keys, sums = sum_by_index(getattr(X, ROLES[k]), rows); grads[k][keys] = sums
    diffs = grad_check(lambda: glove_forward(P, X.i, X.j, X.x, x_max=x_max)[0], P, grads)
    assert diffs["all"] < 1e-7


def test_adagrad_step_against_a_loop():
    rng = np.random.default_rng(2)
    params = {"e": rng.normal(size=(6, 3)), "b": rng.normal(size=6)}
    G = {"e": np.ones((6, 3)) + rng.random((6, 3)), "b": np.ones(6)}
    rows = {"e": np.array([0, 3, 3, 5]), "b": np.array([1, 1, 1, 2])}
    grads = {"e": rng.normal(size=(4, 3)), "b": rng.normal(size=4)}
    want_p, want_G = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in G.items()}
    for k in params:
        for r in sorted(set(rows[k].tolist())):
            g = grads[k][rows[k] == r].sum(0)
            want_G[k][r] += g ** 2
            want_p[k][r] -= 0.1 * g / np.sqrt(want_G[k][r])
    adagrad_step(params, G, rows, grads, 0.1)
    for k in params:
        np.testing.assert_allclose(params[k], want_p[k], rtol=1e-12); np.testing.assert_allclose(G[k], want_G[k], rtol=1e-12)


def test_training_fits_the_counts_and_is_seeded():
    rng = np.random.default_rng(3)
    sents = [rng.integers(0, 4, size=10) for _ in range(100)] + [rng.integers(4, 8, size=10) for _ in range(100)]
    X = cooccurrence(sents, 8, 2)
    params, losses = train_glove(X, dim=6, epochs=30, learning_rate=0.1, x_max=10.0, batch_size=16, seed=0)
    assert params["e"].shape == (8, 6) and params["b"].shape == (8,) and params["e"].dtype == np.float32
    assert losses[-1] < 0.05 * losses[0]
    W = glove_vectors(params)
    np.testing.assert_array_equal(W, params["e"] + params["theta"])
    U = W / np.linalg.norm(W, axis=1, keepdims=True)
    S = U @ U.T
    same = np.mean([S[a, b] for a in range(8) for b in range(8) if a != b and (a < 4) == (b < 4)])
    other = np.mean([S[a, b] for a in range(8) for b in range(8) if (a < 4) != (b < 4)])
    assert same > other + 0.3
    again, _ = train_glove(X, dim=6, epochs=30, learning_rate=0.1, x_max=10.0, batch_size=16, seed=0)
    np.testing.assert_array_equal(again["e"], params["e"])


def test_init_and_bad_arguments():
    p = init_glove(5, 10, seed=0)
    assert {k: v.shape for k, v in p.items()} == {"theta": (5, 10), "e": (5, 10), "b": (5,), "b_tilde": (5,)}
    assert max(float(np.abs(v).max()) for v in p.values()) <= 0.05
    X = cooccurrence([np.array([0, 1, 2])], 3, 1)
    with pytest.raises(ValueError, match="train_glove: x_max must be a positive number, got 0"):
        train_glove(X, x_max=0)
    with pytest.raises(ValueError, match="train_glove: x_max must be a positive number, got -1.0"):
        train_glove(X, x_max=-1.0)
    with pytest.raises(ValueError, match="train_glove: dim must be a positive int"):
        train_glove(X, dim=0)


def test_saved_results():
    run = json.loads((ROOT / "weights" / "glove_wiki.json").read_text())
    saved = np.load(ROOT / "weights" / "glove_wiki.npz")
    assert saved["W"].shape == (run["config"]["V"], run["config"]["dim"]) and len(saved["words"]) == run["config"]["V"]
    assert run["config"]["window"] == 5 and run["config"]["x_max"] == 100.0
    assert all(b < a for a, b in zip(run["losses"], run["losses"][1:]))
    assert run["scores"]["e + theta"]["wordsim353"] > 0.1
