"The gender direction, neutralise, equalise, debias and bad input for dlnotes.seq.debias."
import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.seq.debias import (DEFINITIONAL_PAIRS, equalize, explained_variance, gender_direction, neutralize, pair_differences,
                                projections, debias)
from dlnotes.seq.embeddings import WordVectors


def _random_vectors(seed, n=12, d=6):
    rng = np.random.default_rng(seed)
    words = [f"f{i}" for i in range(3)] + [f"m{i}" for i in range(3)] + [f"w{i}" for i in range(n - 6)]
    return WordVectors(words, rng.normal(size=(n, d))), [(f"f{i}", f"m{i}") for i in range(3)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gender_direction_maximises_the_projected_variance(seed):
    wv, pairs = _random_vectors(seed)
    g = gender_direction(wv, pairs)
    D = pair_differences(wv, pairs)
    assert abs(np.linalg.norm(g) - 1) < 1e-12 and (D @ g).sum() > 0
    C = np.concatenate([D, -D])
    w, V = np.linalg.eigh(C.T @ C)  # another route: the top eigenvector of the scatter matrix
    assert abs(abs(V[:, -1] @ g) - 1) < 1e-10
    rng = np.random.default_rng(seed + 10)
    for _ in range(20):  # no other unit vector has more of the variance
        u = rng.normal(size=g.shape); u /= np.linalg.norm(u)
        assert ((C @ u) ** 2).sum() <= ((C @ g) ** 2).sum() + 1e-12
    np.testing.assert_allclose(explained_variance(D), np.sort(w)[::-1][:len(explained_variance(D))] / w.sum(), atol=1e-12)


def test_mean_direction_and_pair_differences_by_hand():
    wv = WordVectors(["a", "b", "c", "d"], np.array([[3.0, 4], [3, -4], [0, 2], [2, 0]]))
    np.testing.assert_allclose(pair_differences(wv, [("a", "b"), ("c", "d")]), [[0, 0.8], [-0.5, 0.5]])
    g = gender_direction(wv, [("a", "b"), ("c", "d")], method="mean")
    np.testing.assert_allclose(g, np.array([-0.25, 0.65]) / np.hypot(0.25, 0.65))


@pytest.mark.parametrize("seed", [0, 3])
def test_neutralize_and_equalize_properties(seed):
    rng = np.random.default_rng(seed)
    d = 7
    g = rng.normal(size=d); g /= np.linalg.norm(g)
    E = rng.normal(size=(5, d)) * rng.uniform(0.5, 3, size=(5, 1))
    N = neutralize(E, g)
    np.testing.assert_allclose(N @ g, 0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(N, axis=1), 1, atol=1e-12)
    for i in range(5):  # the part orthogonal to g keeps its direction
        perp = E[i] - (E[i] @ g) * g
        np.testing.assert_allclose(N[i], perp / np.linalg.norm(perp), atol=1e-12)
    np.testing.assert_allclose(neutralize(E[0], g), N[0], atol=1e-12)
    a, b = rng.normal(size=d), rng.normal(size=d)
    ea, eb = equalize(a, b, g)
    np.testing.assert_allclose([np.linalg.norm(ea), np.linalg.norm(eb)], 1, atol=1e-12)
    np.testing.assert_allclose(ea @ g, -(eb @ g), atol=1e-12)
    np.testing.assert_allclose(ea - (ea @ g) * g, eb - (eb @ g) * g, atol=1e-12)
    np.testing.assert_allclose(N @ ea, N @ eb, atol=1e-12)  # every neutral word equally similar to both
    ua, ub = a / np.linalg.norm(a), b / np.linalg.norm(b)
    assert np.sign(ea @ g - eb @ g) == np.sign(ua @ g - ub @ g)  # each word stays on its side


def test_debias_on_a_small_vocabulary():
    wv, pairs = _random_vectors(4, n=10)
    g = gender_direction(wv, pairs)
    out = debias(wv, g, gender_specific={w for p in pairs for w in p}, pairs=pairs + [("f0", "absent")])
    U = out.vectors
    np.testing.assert_allclose(np.linalg.norm(U, axis=1), 1, atol=1e-12)
    neutral = [w for w in wv.words if w.startswith("w")]
    np.testing.assert_allclose(list(projections(out, neutral, g).values()), 0, atol=1e-12)
    for a, b in pairs:
        np.testing.assert_allclose(out[a] @ g, -(out[b] @ g), atol=1e-12)
        for w in neutral: assert abs(out.similarity(w, a) - out.similarity(w, b)) < 1e-12
    assert np.abs(wv.vectors).sum() > 0 and not np.shares_memory(out.vectors, wv.vectors)


def test_definitional_pairs_are_pairs():
    assert len(DEFINITIONAL_PAIRS) == 10 and all(len(p) == 2 for p in DEFINITIONAL_PAIRS)


def test_bad_input():
    wv, pairs = _random_vectors(5)
    fails(lambda: gender_direction(wv, pairs, method="svd"), contains="method must be one of")
    fails(lambda: gender_direction(wv, []), contains="pairs must be a non-empty list of word pairs")
    fails(lambda: gender_direction(wv, [("f0", "nobody")]), contains="nobody")
    g = np.zeros(6); g[0] = 1
    fails(lambda: equalize(np.r_[0.0, 1, 0, 0, 0, 0], np.r_[0.0, 2, 0, 0, 0, 0], g), contains="difference has a component along g")
