"One-hot products, the Embedding layer (float64 gradient checks with repeated indices and padding, models, saving), cosine similarity, vocabularies, word vectors, GloVe, Spearman and the evaluation (against SciPy and gensim), and the corpora, for dlnotes.seq.embeddings."
import tempfile
from pathlib import Path
import numpy as np
import pytest
import scipy.spatial.distance
import scipy.stats
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import seed
from dlnotes.gradcheck import grad_check
from dlnotes.nn.graphs import Input
from dlnotes.nn.layers import Dense
from dlnotes.nn.models import Model, Sequential, load_model
from dlnotes.seq.recurrent import LSTM
from dlnotes.seq.embeddings import (CORPORA, Embedding, Vocabulary, WordVectors, accumulate_rows, cosine_similarity,
                                    evaluate_vectors, load_analogies, load_corpus, load_glove, load_polarity,
                                    load_similarity, spearman, tokenize)
from dlnotes.seq.embeddings import _analogy_counts, _gensim_data, _ranks, _wiki_prose


@pytest.fixture(scope="module")
def glove(): return load_glove()


def _loop_accumulate(idx, dY, V):
    out = np.zeros((V, dY.shape[-1]), dtype=np.float64)
    for p in np.ndindex(idx.shape): out[idx[p]] += dY[p]
    return out


# --- accumulate_rows and the Embedding layer --------------------------------------------------------------------

@pytest.mark.parametrize("method", ["onehot", "sort", None])
@pytest.mark.parametrize("shape", [(7,), (4, 6), (2, 3, 5)])
def test_accumulate_rows_matches_a_loop(method, shape):
    rng = np.random.default_rng(sum(shape))
    idx = rng.integers(0, 5, shape)  # few rows: many repeats
    dY = rng.standard_normal((*shape, 3))
    got = accumulate_rows(idx, dY, 9, method=method)
    assert got.shape == (9, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, _loop_accumulate(idx, dY, 9), atol=1e-12)
    assert not got[5:].any()  # rows never read get zero


def test_accumulate_rows_float32_and_empty():
    rng = np.random.default_rng(0)
    idx, dY = rng.integers(0, 1000, (64, 50)), rng.standard_normal((64, 50, 8)).astype(np.float32)
    for method in ("onehot", "sort"):
        got = accumulate_rows(idx, dY, 1000, method=method)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, _loop_accumulate(idx, dY, 1000), atol=1e-4)
        assert not accumulate_rows(np.zeros((0,), np.int64), np.zeros((0, 4)), 3, method=method).any()
    fails(lambda: accumulate_rows(idx, dY, 1000, method="add.at"), contains="accumulate_rows: method must be one of 'onehot', 'sort'")


def test_naive_fancy_assignment_loses_repeats():
    "The reason for accumulate_rows: dW[x] += dY keeps only the last occurrence of a repeated index."
    x, dY = np.array([1, 1, 1]), np.ones((3, 2))
    naive = np.zeros((3, 2)); naive[x] += dY
    assert naive[1, 0] == 1 and accumulate_rows(x, dY, 3)[1, 0] == 3


def test_embedding_is_the_one_hot_product():
    seed(0)
    V, d = 11, 4
    layer = Embedding(V, d)
    x = np.array([[3, 0, 3, 10], [1, 2, 2, 9]])
    Y = layer(x)
    W = layer.params["embeddings"]
    assert Y.shape == (2, 4, d) and W.shape == (V, d)
    O = np.eye(V)[x.reshape(-1)].T  # (V, n): one-hot columns
    np.testing.assert_allclose(Y.reshape(-1, d), (W.T @ O).T, atol=1e-7)  # e_w = E o_w with E = Wᵀ
    assert -0.05 <= W.min() and W.max() <= 0.05  # Keras's uniform initializer
    y1 = Embedding(V, d)(np.array([4, 7]))  # (batch,) -> (batch, d)
    assert y1.shape == (2, d)


@pytest.mark.parametrize("mask_zero", [False, True])
def test_embedding_gradient_float64(mask_zero):
    seed(1)
    layer = Embedding(6, 3, embeddings_initializer="glorot_uniform", mask_zero=mask_zero)
    x = np.array([[1, 4, 4, 2, 0, 0], [4, 1, 5, 4, 0, 3]])
    layer(x)
    layer.params["embeddings"] = layer.params["embeddings"].astype(np.float64)
    R = np.random.default_rng(2).standard_normal((2, 6, 3))
    layer(x)
    assert layer.backward(R) is None  # indices have no gradient
    diffs = grad_check(lambda: float((layer(x) * R).sum()), layer.params, layer.grads)
    assert diffs["all"] < 1e-8
    g = layer.grads["embeddings"]
    np.testing.assert_allclose(g[4], R[0, 1] + R[0, 2] + R[1, 0] + R[1, 3], atol=1e-12)  # four occurrences
    if mask_zero:
        assert not g[0].any() and not layer(x)[0, 4].any()


def test_embedding_bad_input():
    layer = Embedding(5, 2)
    fails(lambda: layer(np.array([[1, 5]])), contains="x must be indices in [0, 4] (input_dim = 5), got index 5")
    fails(lambda: layer(np.array([[-2, 1]])), contains="got index -2")
    fails(lambda: layer(np.array([[1.0, 2.0]])), contains="x must be an integer array of word indices, got dtype float64")
    fails(lambda: layer(np.array([[True, False]])), contains="got dtype bool")
    fails(lambda: layer(np.int64(3)), contains="x must be indices of shape (batch,) or (batch, T)")
    fails(lambda: layer([np.array([1])]), contains="takes one input array")
    fails(lambda: Embedding(0, 2), contains="input_dim must be a positive int, got 0")
    fails(lambda: Embedding(5, 1.5), contains="output_dim must be a positive int")
    fails(lambda: Embedding(5, 2, mask_zero=1), contains="mask_zero must be True or False")


def test_embedding_in_models_masking_and_saving():
    seed(0)
    model = Sequential([Embedding(30, 6, mask_zero=True), LSTM(5, mask_value=0.0), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam")
    x = np.array([[3, 7, 1, 0, 0], [5, 2, 9, 4, 11], [8, 8, 0, 0, 0], [1, 29, 6, 2, 0]])
    y = np.array([0, 1, 0, 1])
    model.predict(x)  # builds the model
    W0 = model.layers[0].params["embeddings"].copy()
    model.fit(x, y, epochs=5, batch_size=4, verbose=0)
    W1 = model.layers[0].params["embeddings"]
    assert np.array_equal(W0[20:29], W1[20:29]) and np.array_equal(W0[0], W1[0])  # unused words and padding do not move
    assert not np.allclose(W0[[1, 2, 3, 5, 8]], W1[[1, 2, 3, 5, 8]])
    np.testing.assert_allclose(model.predict(x[2:3]), model.predict(np.array([[8, 8]])), atol=1e-6)  # padding = shorter
    with tempfile.TemporaryDirectory() as d:
        model.save(Path(d) / "m.npz")
        loaded = load_model(Path(d) / "m.npz")
    assert isinstance(loaded.layers[0], Embedding) and loaded.layers[0].mask_zero
    np.testing.assert_allclose(loaded.predict(x), model.predict(x), atol=1e-6)


def test_embedding_in_a_graph():
    seed(0)
    inp = Input((None,))
    out = Dense(3)(Embedding(12, 4)(inp))
    model = Model(inp, out)
    y = model.predict(np.array([[1, 2, 3], [4, 5, 11]]))
    assert y.shape == (2, 3, 3)


# --- similarity, vocabularies, word vectors ---------------------------------------------------------------------

def test_cosine_similarity_against_scipy():
    rng = np.random.default_rng(0)
    U, v = rng.standard_normal((6, 5)), rng.standard_normal(5)
    want = [1 - scipy.spatial.distance.cosine(u, v) for u in U]
    np.testing.assert_allclose(cosine_similarity(U, v), want, atol=1e-12)
    a, b = np.eye(4)[1], np.eye(4)[3]
    assert cosine_similarity(a, b) == 0 and np.isclose(np.linalg.norm(a - b), np.sqrt(2))


def test_vocabulary():
    sents = [["b", "a", "b"], ["c", "b", "a", "d"]]
    v = Vocabulary.from_tokens(sents)
    assert v.words == ["b", "a", "c", "d"] and v.counts.tolist() == [3, 2, 1, 1] and v.counts.dtype == np.int64
    assert Vocabulary.from_tokens([t for s in sents for t in s]).words == v.words  # flat tokens too
    assert Vocabulary.from_tokens(sents, min_count=2).words == ["b", "a"]
    assert Vocabulary.from_tokens(sents, max_size=3).words == ["b", "a", "c"]
    r = Vocabulary.from_tokens(sents, reserved=("<pad>", "<unk>"), max_size=4)
    assert r.words == ["<pad>", "<unk>", "b", "a"] and r.counts.tolist() == [0, 0, 3, 2]
    assert r.encode(["a", "zz", "b"], unknown="<unk>").tolist() == [3, 1, 2]
    assert len(v) == 4 and "c" in v and v.index("d") == 3 and v.encode(["d", "b"]).tolist() == [3, 0]
    fails(lambda: v.encode(["a", "e"]), contains="'e' is not in the vocabulary (4 words)")
    fails(lambda: Vocabulary.from_tokens([]), contains="tokens must be a non-empty corpus")
    fails(lambda: Vocabulary.from_tokens(sents, min_count=0), contains="min_count must be a positive int")


def test_unknown_word_suggests_neighbours():
    v = Vocabulary.from_tokens("the cat sat on the mat with another cat".split())
    try: v.index("cats"); raise AssertionError("no KeyError")
    except KeyError as e: assert "'cats'" in str(e) and "nearest entries: cat" in str(e)


def test_most_similar_and_analogy_against_brute_force():
    rng = np.random.default_rng(3)
    words = [f"w{i}" for i in range(40)]
    wv = WordVectors(words, rng.standard_normal((40, 6)).astype(np.float32))
    E = np.asarray(wv.vectors, dtype=np.float64)
    cos = lambda i, q: E[i] @ q / np.linalg.norm(E[i]) / np.linalg.norm(q)
    best = sorted((j for j in range(40) if j != 5), key=lambda j: -cos(j, E[5]))[:4]
    assert [w for w, _ in wv.most_similar("w5", topn=4)] == [words[j] for j in best]
    n = lambda i: E[i] / np.linalg.norm(E[i])
    q = n(2) - n(1) + n(3)
    best = max((j for j in range(40) if j not in (1, 2, 3)), key=lambda j: cos(j, q))
    (w, s), = wv.analogy("w1", "w2", "w3")
    assert w == words[best] and np.isclose(s, cos(best, q))
    best10 = max((j for j in range(10) if j not in (1, 2, 3)), key=lambda j: cos(j, q))
    assert wv.analogy("w1", "w2", "w3", restrict=10)[0][0] == words[best10]
    assert np.isclose(wv.similarity("w0", "w7"), cos(0, E[7]))
    np.testing.assert_allclose(np.linalg.norm(wv.normalized().vectors, axis=1), 1, atol=1e-12)
    fails(lambda: wv["w40"], contains="'w40' is not in the word vectors (40 words); nearest entries: w4")
    fails(lambda: WordVectors(["a"], np.zeros((2, 3))), contains="vectors must be one row per word (1 rows)")


def test_glove(glove):
    assert len(glove) == 400000 and glove.vectors.shape == (400000, 50) and glove.vectors.dtype == np.float32
    assert round(glove.similarity("father", "mother"), 4) == 0.8909
    assert glove.analogy("man", "woman", "king")[0][0] == "queen"
    assert glove.words[:3] == ["the", ",", "."]
    small = load_glove(1000)
    assert len(small) == 1000 and np.array_equal(small["of"], glove["of"])
    fails(lambda: glove["fatherr"], contains="nearest entries: father")
    fails(lambda: load_glove(0), contains="max_words must be an int in [1, 400000]")


# --- Spearman and the evaluation --------------------------------------------------------------------------------

def test_spearman_against_scipy():
    rng = np.random.default_rng(0)
    for n in (2, 5, 40, 300):
        x, y = rng.integers(0, 6, n).astype(float), rng.standard_normal(n)  # ties in x
        if len(set(x)) > 1:
            assert np.isclose(spearman(x, y), scipy.stats.spearmanr(x, y).statistic, atol=1e-12)
    np.testing.assert_allclose(_ranks([3, 1, 3, 2, 3]), scipy.stats.rankdata([3, 1, 3, 2, 3]))
    fails(lambda: spearman([1, 2, 3], [1, 2]), contains="y must be as many values as x (3)")


def test_evaluation_data():
    q = load_analogies()
    assert len(q) == 19544 and len({s for s, *_ in q}) == 14 and q[0] == ("capital-common-countries", "athens", "greece", "baghdad", "iraq")
    assert len(load_similarity("wordsim353")) == 353 and len(load_similarity("simlex999")) == 999
    allowed = ["athens", "greece", "baghdad", "iraq", "the"]
    few = load_analogies(100, allowed)
    assert few[0] == q[0] and all(set(w) <= set(allowed) for _, *w in few)
    assert len(few) == sum(set(w) <= set(allowed) for _, *w in q) >= 2  # athens-greece-baghdad-iraq, its mirror, ...
    assert load_analogies(4, allowed) == few and load_analogies(3, allowed) == []
    fails(lambda: load_analogies(max_vocab=1000), contains="vocab must be a vocabulary")
    fails(lambda: load_similarity("men"), contains="load_similarity: name must be one of 'wordsim353', 'simlex999', got 'men'")


def test_evaluation_against_gensim(glove, tmp_path):
    "The vectorised analogy counts and the similarity scores agree with gensim's KeyedVectors evaluation."
    gensim_models = pytest.importorskip("gensim.models")
    r = 30000
    kv = gensim_models.KeyedVectors(50)
    kv.add_vectors(glove.words[:r], np.asarray(glove.vectors[:r]))
    questions = load_analogies()
    rng = np.random.default_rng(0)
    sample = [questions[i] for i in sorted(rng.choice(len(questions), 600, replace=False))]
    lines, last = [], None
    for s, *w in sample:
        if s != last: lines.append(f": {s}"); last = s
        lines.append(" ".join(w))
    (tmp_path / "q.txt").write_text("\n".join(lines) + "\n")
    _, sections = kv.evaluate_word_analogies(str(tmp_path / "q.txt"), restrict_vocab=r)
    theirs = {s["section"]: (len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections if s["section"] != "Total accuracy"}
    ours = {s: v for s, v in _analogy_counts(glove, sample, r).items() if v[1]}
    assert ours == theirs
    scores = evaluate_vectors(glove, restrict=r)
    for name, file in (("wordsim353", "wordsim353.tsv"), ("simlex999", "simlex999.txt")):
        _, rho, oov = kv.evaluate_word_pairs(str(_gensim_data(file)), restrict_vocab=r)
        assert np.isclose(scores[name], rho.statistic, atol=1e-9)
    assert scores["analogy_covered"] == 14877 and scores["analogy_questions"] == 19544
    assert scores["analogy_correct"] == sum(c for c, _ in scores["sections"].values())
    assert 0.45 < scores["analogy"] < 0.55  # 0.497 measured (7393 correct)
    fails(lambda: evaluate_vectors(glove, restrict=0), contains="restrict must be a positive int")


# --- corpora ----------------------------------------------------------------------------------------------------

def test_tokenize():
    assert tokenize("Don't STOP: it's 2001, they're here.") == ["do", "n't", "stop", "it", "'s", "they", "'re", "here"]
    assert tokenize("café’s naïve x2y") == ["café", "'s", "naïve", "x", "y"]
    assert tokenize("") == []


def test_wiki_prose():
    text = ("{{Infobox|a={{nested|b}}}}'''Paris''' is the [[capital city|capital]] of [[France]].<ref name=x>cite</ref>\n"
            "{| class=wikitable\n|-\n| cell\n|}\n[[File:Paris.jpg|thumb|A [[view]]]] See [http://example.org the site].<!-- hidden -->")
    assert tokenize(_wiki_prose(text)) == ["paris", "is", "the", "capital", "of", "france", "see", "the", "site"]


def test_corpora():
    lee = load_corpus("lee_background")
    assert len(lee) == 300 and sum(map(len, lee)) == 60302 and len({t for s in lee for t in s}) == 6996
    assert all(t == t.lower() for s in lee for t in s)
    assert len(load_corpus("lee")) == 50
    wiki = load_corpus("wiki")
    n = sum(map(len, wiki))
    assert 400_000 < n < 500_000 and len(wiki) > 5000
    assert not any("{{" in t or "]]" in t or "http" == t for s in wiki[:500] for t in s)
    assert set(CORPORA) == {"lee", "lee_background", "wiki"}
    fails(lambda: load_corpus("brown"), contains="load_corpus: name must be one of 'lee', 'lee_background', 'wiki', got 'brown'")


def test_polarity():
    sents, labels = load_polarity()
    assert len(sents) == 200 and labels.dtype == np.int64 and labels.tolist() == [0] * 100 + [1] * 100
    assert sents[0] == ["simplistic", "silly", "and", "tedious"]
