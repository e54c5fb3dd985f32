"dlnotes.seq.hsoftmax: the Huffman tree (against the textbook, prefix-free, Kraft, the entropy bound), p(t | c) summing to 1, the path gradients in float64, sum_by_index, the pairs, the training and the script's saved results."
import heapq, itertools, json, math
from pathlib import Path

import numpy as np
import pytest

from dlnotes.gradcheck import grad_check
from dlnotes.seq.hsoftmax import (HSCache, HuffmanTree, entropy_bits, expected_length, hs_backward, hs_forward,
                                  huffman_tree, log_sigmoid, sigmoid, skipgram_pairs, sum_by_index, train_hs_skipgram)

ROOT = Path(__file__).resolve().parents[2]


def _codes(tree):
    return ["".join(map(str, tree.codes[w, :tree.lengths[w]])) for w in range(tree.points.shape[0])]


def _huffman_lengths_reference(counts):
    "The code lengths from merging sets of words with a plain list (no heap): each merge adds a bit to its words."
    groups, lengths = [(int(c), [w]) for w, c in enumerate(counts)], [0] * len(counts)
    while len(groups) > 1:
        groups.sort(key=lambda g: g[0])
        (c0, w0), (c1, w1), groups = groups[0], groups[1], groups[2:]
        for w in w0 + w1: lengths[w] += 1
        groups.append((c0 + c1, w0 + w1))
    return lengths


def test_textbook_codes():
    tree = huffman_tree([5, 9, 12, 13, 16, 45])  # Cormen et al., §16.3
    assert _codes(tree) == ["1100", "1101", "100", "101", "111", "0"]
    assert tree.points.shape == (6, 4) and tree.points[5, 0] == 4  # every path starts at the root, node V - 2


@pytest.mark.parametrize("V", [2, 3, 17, 500])
def test_prefix_free_kraft_and_entropy_bound(V):
    counts = np.random.default_rng(V).integers(1, 1000, size=V)
    tree = huffman_tree(counts)
    codes = _codes(tree)
    assert len(set(codes)) == V
    assert not any(a != b and b.startswith(a) for a, b in itertools.product(codes, codes))
    assert sum(2.0 ** -l for l in tree.lengths) == 1.0
    H, ell = entropy_bits(counts), expected_length(counts, tree.lengths)
    assert H <= ell + 1e-12 and ell < H + 1
    # optimal: the same expected length as an independent Huffman construction (ties may change the codes, not the cost)
    assert math.isclose(ell, expected_length(counts, _huffman_lengths_reference(counts)), rel_tol=1e-12)


def test_paths_walk_the_tree():
    "Each word's nodes: the root first, every node's id in 0..V-2, consecutive nodes distinct, paths of siblings shared."
    tree = huffman_tree(np.arange(1, 40))
    V = 39
    for w in range(V):
        p = tree.points[w, :tree.lengths[w]]
        assert p[0] == V - 2 and len(set(p.tolist())) == len(p) and p.min() >= 0 and p.max() <= V - 2
    # the two rarest words are siblings: the same path, the last bit differs
    assert tree.lengths[0] == tree.lengths[1]
    l = tree.lengths[0]
    assert (tree.points[0, :l] == tree.points[1, :l]).all() and (tree.codes[0, :l - 1] == tree.codes[1, :l - 1]).all()
    assert {tree.codes[0, l - 1], tree.codes[1, l - 1]} == {0, 1}


def test_bad_counts():
    for bad in ([3], [[1, 2], [3, 4]], [2, 0, 1], [2, -1]):
        with pytest.raises(ValueError, match="huffman_tree: counts must be a 1-d array of two or more positive counts"):
            huffman_tree(bad)


def test_log_sigmoid_is_stable():
    z = np.array([-800.0, -30.0, 0.0, 30.0, 800.0])
    ls = log_sigmoid(z)
    assert np.isfinite(ls).all()
    np.testing.assert_allclose(ls[1:4], [-math.log1p(math.exp(-v)) for v in z[1:4]], rtol=1e-12)
    np.testing.assert_allclose(sigmoid(z), [0.0, 1 / (1 + np.exp(30)), 0.5, 1 / (1 + np.exp(-30)), 1.0], rtol=1e-12, atol=1e-300)


def _loop_probability(e_c, Theta, tree, w):
    "p(w | c) node by node, with Python floats."
    p = 1.0
    for n, bit in zip(tree.points[w, :tree.lengths[w]], tree.codes[w, :tree.lengths[w]]):
        z = float(Theta[n] @ e_c)
        p *= 1 / (1 + math.exp(-z)) if bit == 0 else 1 / (1 + math.exp(z))
    return p


def test_probabilities_against_a_loop_and_sum_to_one():
    rng = np.random.default_rng(1)
    tree = huffman_tree(rng.integers(1, 100, size=23))
    E, Theta = rng.normal(size=(23, 5)), rng.normal(size=(22, 5))
    for c in (0, 7):
        ps = [math.exp(-float(hs_forward(E[[c]], Theta, tree, np.array([w]))[0])) for w in range(23)]
        np.testing.assert_allclose(ps, [_loop_probability(E[c], Theta, tree, w) for w in range(23)], rtol=1e-10)
        assert math.isclose(sum(ps), 1.0, rel_tol=1e-12)
    # the batch loss is the mean of the pairs' losses
    c, t = np.array([1, 2, 2]), np.array([4, 4, 9])
    J, _ = hs_forward(E[c], Theta, tree, t)
    assert math.isclose(float(J), -np.mean([math.log(_loop_probability(E[a], Theta, tree, b)) for a, b in zip(c, t)]), rel_tol=1e-10)


def test_path_gradients_float64():
    rng = np.random.default_rng(2)
    tree = huffman_tree(rng.integers(1, 60, size=15))
    E, Theta = rng.normal(size=(15, 6)), rng.normal(size=(14, 6))
    c, t = rng.integers(0, 15, size=12), rng.integers(0, 15, size=12)  # repeats in both
    J, cache = hs_forward(E[c], Theta, tree, t)
    de_c, dTheta_path = hs_backward(cache)
    on = cache.mask.astype(bool)
    assert (dTheta_path[~on] == 0).all()  # nothing flows into the padding
    dE, dTheta = np.zeros_like(E), np.zeros_like(Theta)
    k, g = sum_by_index(c, de_c); dE[k] = g
    k, g = sum_by_index(tree.points[t][on], dTheta_path[on]); dTheta[k] = g
    diffs = grad_check(lambda: hs_forward(E[c], Theta, tree, t)[0], {"E": E, "Theta": Theta}, {"E": dE, "Theta": dTheta})
    assert diffs["all"] < 1e-7


def test_backward_on_a_hand_cache():
    cache = HSCache(e_c=np.array([[1.0, -1.0]]), Theta_path=np.array([[[2.0, 0.0], [0.0, 3.0]]]),
                    z=np.array([[0.0, 0.0]]), y=np.array([[0.0, 1.0]]), mask=np.array([[1.0, 1.0]]))
    de_c, dTheta_path = hs_backward(cache)  # dz = (0.5, -0.5)
    np.testing.assert_allclose(de_c, [[1.0, -1.5]])
    np.testing.assert_allclose(dTheta_path, [[[0.5, -0.5], [-0.5, 0.5]]])


def test_sum_by_index_against_a_loop():
    rng = np.random.default_rng(3)
    idx, rows = rng.integers(0, 30, size=500), rng.normal(size=(500, 4))
    keys, sums = sum_by_index(idx, rows)
    want = {}
    for i, r in zip(idx.tolist(), rows):
        want[i] = want.get(i, 0) + r
    assert keys.tolist() == sorted(want)
    np.testing.assert_allclose(sums, np.array([want[k] for k in sorted(want)]), rtol=1e-12)


def test_skipgram_pairs_against_a_loop():
    rng = np.random.default_rng(4)
    sents = [rng.integers(0, 9, size=n) for n in (0, 1, 6, 11)]
    for w in (1, 3, 20):
        c, t = skipgram_pairs(sents, w)
        want = sorted((int(s[p]), int(s[q])) for s in sents for p in range(len(s)) for q in range(len(s)) if 0 < abs(p - q) <= w)
        assert sorted(zip(c.tolist(), t.tolist())) == want


def test_bad_window_and_empty_corpus():
    with pytest.raises(ValueError, match="skipgram_pairs: window must be a positive int, got 0"):
        skipgram_pairs([np.array([1, 2])], 0)
    with pytest.raises(ValueError, match="skipgram_pairs: sentences must be a non-empty list"):
        skipgram_pairs([])
    with pytest.raises(ValueError, match="sentences must be a non-empty list"):
        skipgram_pairs([np.array([], dtype=np.int64)])
    tree = huffman_tree([3, 2, 1])
    with pytest.raises(ValueError, match="train_hs_skipgram: learning_rate must be a positive number"):
        train_hs_skipgram(np.array([0]), np.array([1]), tree, learning_rate=0)


def test_training_learns_a_planted_structure():
    "Two groups of words that only co-occur within their group: after training, a word is closer to its group."
    rng = np.random.default_rng(5)
    sents = [rng.integers(0, 5, size=8) for _ in range(150)] + [rng.integers(5, 10, size=8) for _ in range(150)]
    counts = np.bincount(np.concatenate(sents), minlength=10)
    tree = huffman_tree(counts)
    c, t = skipgram_pairs(sents, 2)
    E, Theta, losses = train_hs_skipgram(c, t, tree, dim=8, epochs=4, learning_rate=0.05, batch_size=64, seed=0)
    assert E.shape == (10, 8) and Theta.shape == (9, 8) and E.dtype == np.float32
    assert losses[-1] < losses[0] < expected_length(np.bincount(t, minlength=10), tree.lengths) * math.log(2)
    U = E / np.linalg.norm(E, axis=1, keepdims=True)
    S = U @ U.T
    same = np.mean([S[a, b] for a in range(10) for b in range(10) if a != b and (a < 5) == (b < 5)])
    other = np.mean([S[a, b] for a in range(10) for b in range(10) if (a < 5) != (b < 5)])
    assert same > other + 0.3
    # the seed fixes everything
    E2, _, _ = train_hs_skipgram(c, t, tree, dim=8, epochs=4, learning_rate=0.05, batch_size=64, seed=0)
    np.testing.assert_array_equal(E, E2)


def test_saved_results():
    run = json.loads((ROOT / "weights" / "hsoftmax_wiki.json").read_text())
    saved = np.load(ROOT / "weights" / "hsoftmax_wiki.npz")
    assert saved["E"].shape == (run["config"]["V"], run["config"]["dim"]) and len(saved["words"]) == run["config"]["V"]
    assert run["config"]["window"] == 5 and run["config"]["epochs"] == 5 and run["config"]["min_count"] == 10
    assert all(b < a for a, b in zip(run["ours"]["losses"], run["ours"]["losses"][1:]))
    assert run["ours"]["scores"]["wordsim353"] > 0.2 and run["gensim"]["scores"]["wordsim353"] > 0.2
