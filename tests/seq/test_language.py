"The census names, the character vocabulary, padded batches, the sequence cross-entropy (float64 gradient checks, a loop reference), perplexity, sampling with a temperature and the recurrent language models, for dlnotes.seq.language."
import json, math
from pathlib import Path
import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

import names as names_package
from dlnotes.backend import seed, to_numpy, to_device
from dlnotes.gradcheck import as_float64, grad_check
from dlnotes.nn.models import load_model
from dlnotes.nn.optimizers import Adam
from dlnotes.seq.language import (EOW, BigramModel, CharVocab, SequenceCrossentropy, language_model, load_names, name_batch,
                                  name_stats, perplexity, sample, sample_names, softmax_temperature, split_names, tbptt_batch,
                                  train_language_model)
from dlnotes.seq.language import _final_states


class FixedModel:
    "A stand-in model: predict returns the same logits z (V,) at every step, or logits computed by a function of X."
    def __init__(self, z=None, fn=None): self.z, self.fn = None if z is None else np.asarray(z, dtype=np.float64), fn
    def predict(self, X, batch_size=None):
        X = to_numpy(X)
        return self.fn(X) if self.fn is not None else np.broadcast_to(self.z, (*X.shape[:2], len(self.z))).copy()


@pytest.fixture(scope="module")
def census():
    words = load_names()
    return words, CharVocab.from_words(words), split_names(words)


# ---------------------------------------------------------------- data, vocabulary, batches

def test_names_are_the_census_lists(census):
    words, vocab, _ = census
    folder, expected = Path(names_package.__file__).parent, set()
    for f in ("dist.female.first", "dist.male.first"):  # an independent parse: the first field of each non-blank line
        with open(folder / f) as fh: expected |= {ln.split(None, 1)[0].lower() for ln in fh if ln.split()}
    assert words == sorted(expected) and len(words) == 5163
    assert all(w.isalpha() and w.islower() for w in words) and max(map(len, words)) == 11
    assert len(vocab) == 27 and vocab.itos[0] == EOW and "".join(vocab.itos[1:]) == "abcdefghijklmnopqrstuvwxyz"


def test_split_is_a_deterministic_partition(census):
    words, _, (train, dev, test) = census
    assert (len(train), len(dev), len(test)) == (4131, 516, 516)
    assert set(train) | set(dev) | set(test) == set(words) and len(set(train) | set(dev) | set(test)) == len(words)
    assert not (set(train) & set(dev)) and not (set(train) & set(test)) and not (set(dev) & set(test))
    assert split_names(words) == (train, dev, test)
    assert split_names(words, seed=1)[1] != dev
    fails(lambda: split_names(["a", "a"]), contains="distinct")
    fails(lambda: split_names(words, dev_fraction=0.6, test_fraction=0.5), contains="test_fraction")


def test_vocab_round_trip_and_errors():
    v = CharVocab("cab")
    assert v.itos == [EOW, "a", "b", "c"] and len(v) == 4 and v.end == 0
    assert v.encode("cab").tolist() == [3, 1, 2] and v.decode([3, 1, 2, 0]) == "cab\n" and v.decode(v.encode("")) == ""
    fails(lambda: v.encode("bad"), contains="'d'")
    fails(lambda: v.encode(3), contains="str")
    fails(lambda: v.decode([4]), contains="[0, 4)")
    fails(lambda: CharVocab(["ab"]), contains="one-character")


def test_name_batch_by_hand():
    v = CharVocab("abno")
    X, y = name_batch(["ann", "bo"], v)
    X = to_numpy(X)
    assert X.shape == (2, 4, 5) and y.tolist() == [[1, 3, 3, 0], [2, 4, 0, -1]]
    assert X[0].argmax(-1).tolist()[1:] == [1, 3, 3] and X[1].argmax(-1).tolist()[1:3] == [2, 4]
    assert X[:, 0].sum() == 0 and X[1, 3].sum() == 0  # x<1> = 0, and nothing after the end
    assert X.sum() == 5
    assert name_batch(["ab"], v, T=6)[1].tolist() == [[1, 2, 0, -1, -1, -1]]
    fails(lambda: name_batch(["ann"], v, T=3), contains="T must be an int >= 4")


# ---------------------------------------------------------------- the loss

def _loop_loss(Z, y, w=None):
    "-(1/N) Σ over steps with a target of w_i log softmax(z)[y], with plain loops."
    total, N = 0.0, 0
    for i in range(Z.shape[0]):
        for t in range(Z.shape[1]):
            if y[i, t] < 0: continue
            z = Z[i, t]
            total -= (1.0 if w is None else w[i]) * (z[y[i, t]] - math.log(sum(math.exp(v) for v in z)))
            N += 1
    return total / N


@pytest.mark.parametrize("weighted", [False, True])
def test_sequence_crossentropy_loop_reference_and_gradient(weighted):
    rng = np.random.default_rng(3)
    Z = rng.standard_normal((4, 5, 6))
    y = rng.integers(0, 6, (4, 5)); y[0, 3:] = -1; y[2, 1:] = -1
    w = rng.uniform(0.5, 2, 4) if weighted else None
    loss = SequenceCrossentropy()
    J = float(loss(Z, y, w))
    assert abs(J - _loop_loss(Z, y, w)) < 1e-12
    dZ = loss.backward()
    assert np.all(dZ[0, 3:] == 0) and np.all(dZ[2, 1:] == 0)  # padded steps get no gradient
    grad_check(lambda: loss(Z, y, w), Z, dZ, tol=1e-7)


def test_sequence_crossentropy_one_hot_targets_and_errors():
    rng = np.random.default_rng(4)
    Z, y = rng.standard_normal((3, 4, 5)), rng.integers(-1, 5, (3, 4))
    Y = np.zeros((3, 4, 5)); i, t = np.nonzero(y >= 0); Y[i, t, y[i, t]] = 1
    a, b = SequenceCrossentropy(), SequenceCrossentropy()
    assert abs(float(a(Z, y)) - float(b(Z, Y))) < 1e-12 and np.allclose(a.backward(), b.backward())
    fails(lambda: a(Z, y[:, :3]), contains="targets of shape (3, 3, 5), y_pred has shape (3, 4, 5)")
    fails(lambda: a(Z, y[:2]), contains="shape (3, T)")
    fails(lambda: a(Z, y - 1), contains="[-1, 5)")
    fails(lambda: a(Z[0], y[0]), contains="(m, T, V)")
    fails(lambda: SequenceCrossentropy().backward(), contains="before forward")


def test_sequence_crossentropy_equals_each_word_alone():
    "A padded batch gives the same loss as the words one by one, weighted by their characters."
    v = CharVocab("abc")
    words = ["abcab", "a", "cc"]
    rng = np.random.default_rng(5)
    W = rng.standard_normal((4, 4))
    model = FixedModel(fn=lambda X: X @ W + 0.1)
    X, y = name_batch(words, v)
    J = float(SequenceCrossentropy()(model.predict(X), y))
    parts = [(float(SequenceCrossentropy()(model.predict(Xi), yi)), len(w) + 1) for w in words for Xi, yi in [name_batch([w], v)]]
    assert abs(J - sum(j * n for j, n in parts) / sum(n for _, n in parts)) < 1e-12


# ---------------------------------------------------------------- perplexity

def test_perplexity_uniform_and_by_hand():
    v = CharVocab("ab")
    assert abs(perplexity(FixedModel(np.zeros(3)), ["ab", "b", "aab"], v) - 3) < 1e-12
    # p = (1/2, 1/4, 1/4) for (end, a, b) at every step; "ab" predicts a, b, end: PP = exp(-(log 1/4 + log 1/4 + log 1/2)/3)
    z = np.log([0.5, 0.25, 0.25])
    assert abs(perplexity(FixedModel(z), ["ab"], v) - (1 / (0.25 * 0.25 * 0.5)) ** (1 / 3)) < 1e-12
    assert abs(perplexity(FixedModel(z), ["ab", ""], v) - (1 / (0.25 * 0.25 * 0.5 * 0.5)) ** (1 / 4)) < 1e-12
    fails(lambda: perplexity(FixedModel(z), [], v), contains="non-empty")
    fails(lambda: perplexity(FixedModel(np.zeros(4)), ["ab"], v), contains="expected logits of shape (1, 3, 3)")


def test_bigram_model_against_counts(census):
    _, vocab, (train, dev, _) = census
    bg = BigramModel(train, vocab, alpha=0.5)
    counts = {}
    for w in train:
        for a, b in zip(EOW + w, w + EOW): counts[a, b] = counts.get((a, b), 0) + 1
    row = lambda a: sum(counts.get((a, c), 0) for c in vocab.itos) + 0.5 * len(vocab)
    log_p = lambda a, b: math.log((counts.get((a, b), 0) + 0.5) / row(a))
    nll = [-log_p(a, b) for w in dev for a, b in zip(EOW + w, w + EOW)]
    assert abs(perplexity(bg, dev, vocab) - math.exp(sum(nll) / len(nll))) < 1e-4
    assert 9 < perplexity(bg, dev, vocab) < 12
    fails(lambda: BigramModel(train, vocab, alpha=0), contains="alpha")


# ---------------------------------------------------------------- temperature and sampling

def test_softmax_temperature_by_hand():
    z = np.log([1.0, 2.0])
    assert np.allclose(softmax_temperature(z), [1 / 3, 2 / 3])
    assert np.allclose(softmax_temperature(z, 0.5), [1 / 5, 4 / 5])  # p ∝ (1, 2)^2
    assert np.allclose(softmax_temperature(z, 2.0), np.array([1, 2 ** 0.5]) / (1 + 2 ** 0.5))
    assert np.allclose(softmax_temperature(np.array([[1000.0, 0.0]]), 1e-3), [[1, 0]])  # stable, near argmax
    for T in (0, -1, float("inf")): fails(lambda: softmax_temperature(z, T), contains="temperature must be a positive number")


def test_sampling_deterministic_and_extreme_models():
    v = CharVocab("ab")
    uniform = FixedModel(np.zeros(3))
    s = sample_names(uniform, v, 50, seed=7)
    assert s == sample_names(uniform, v, 50, seed=7) and s != sample_names(uniform, v, 50, seed=8)
    assert sample(uniform, v, seed=7) == sample_names(uniform, v, 1, seed=7)[0]
    assert sample_names(FixedModel([50.0, 0, 0]), v, 3) == ["", "", ""]  # the end token at once
    assert sample_names(FixedModel([0, 0, 50.0]), v, 2, max_len=6) == ["bbbbbb"] * 2  # never ends: cut at max_len
    fails(lambda: sample(uniform, v, temperature=0), contains="temperature must be a positive number, got 0")
    fails(lambda: sample_names(uniform, v, temperature=-0.5), contains="temperature")
    fails(lambda: sample_names(uniform, v, n=0), contains="n must be")


def test_sampled_lengths_follow_the_model():
    "Under a uniform model over (end, a, b) a name has k letters with probability (2/3)^k (1/3)."
    v = CharVocab("ab")
    lengths = np.array([len(s) for s in sample_names(FixedModel(np.zeros(3)), v, 3000, max_len=60, seed=1)])
    assert abs(lengths.mean() - 2.0) < 0.15  # the geometric mean (1 - 1/3) / (1/3) = 2, sd 2.45 / sqrt(3000) = 0.045
    assert abs((lengths == 0).mean() - 1 / 3) < 0.03


def test_temperature_changes_the_draws():
    "At a low temperature the likelier letter is drawn more often than its probability, at a high one less."
    v = CharVocab("ab")
    model = FixedModel(np.log([1e-9, 0.25, 0.75]))  # never ends before max_len
    frac_b = lambda T: np.mean([c == "b" for s in sample_names(model, v, 400, T, max_len=5, seed=2) for c in s])
    assert frac_b(0.5) > 0.85 and abs(frac_b(1.0) - 0.75) < 0.04 and frac_b(3.0) < 0.65


def test_name_stats_by_hand():
    stats = name_stats(["ann", "ann", "bob", "nann", "zzq", "an"], train=["ann", "bo", "nan"], known=["ann", "bo", "nan", "bob"])
    assert stats == {"train": 2 / 6, "held_out": 1 / 6, "new": 3 / 6, "plausible_new": 2 / 6, "distinct": 5 / 6}
    fails(lambda: name_stats([], ["a"], ["a"]), contains="non-empty")


# ---------------------------------------------------------------- the recurrent language models

def _model64(cell, units, V, s=0):
    "A language_model built and cast to float64, for gradient checks."
    seed(s)
    model = language_model(cell, units, V)
    for layer in model.layers: as_float64(layer)
    return model


class Recorder:
    "A stand-in optimizer: keeps a float64 copy of every gradient at each step and changes nothing."
    def __init__(self): self.steps = []
    def step(self, model): self.steps.append({n: to_numpy(g).copy() for n, g in model.grads.items()})


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_language_model_shapes_and_causality(cell):
    v = CharVocab("abcd")
    seed(0)
    model = language_model(cell, 8, len(v))
    assert [type(l).__name__ for l in model.layers] == [{"simple_rnn": "SimpleRNN", "gru": "GRU", "lstm": "LSTM"}[cell], "Dense"]
    Xa, _ = name_batch(["abc"], v)
    Xb, _ = name_batch(["abcdddcba"], v)
    Za, Zb = to_numpy(model.predict(Xa)), to_numpy(model.predict(Xb))
    assert Za.shape == (1, 4, 5) and Zb.shape == (1, 10, 5)
    assert np.allclose(Za, Zb[:, :4], atol=1e-6)  # causal: later characters do not change earlier logits
    fails(lambda: language_model("rnn"), contains="cell must be one of")
    fails(lambda: language_model(cell, vocab_size=1), contains="vocab_size")


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_whole_model_gradient_float64(cell):
    "The gradient of the padded-batch loss with respect to every parameter of the model, against central differences."
    v = CharVocab("abc")
    model = _model64(cell, 3, len(v))
    X, y = name_batch(["abca", "b", "cc"], v, dtype=np.float64)
    loss = SequenceCrossentropy()
    def J(): return loss(model.forward(X, training=True), y)
    J(); model.backward(loss.backward(), need_dx=False)
    grads = {n: to_numpy(g).copy() for n, g in model.grads.items()}
    params = {n: model.params[n] for n in grads}
    grad_check(J, params, grads, tol=1e-6)


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_tbptt_carries_the_state_and_cuts_the_gradient(cell):
    v = CharVocab("abc")
    model = _model64(cell, 4, len(v), s=1)
    X, y = name_batch(["abcabca", "bcab", "ca"], v, dtype=np.float64)
    loss = SequenceCrossentropy()
    Y = loss.targets(y, X.shape)
    full = float(loss(model.forward(X), y)) * float(Y.sum())
    rec = Recorder()
    total, n = tbptt_batch(model, X, Y, loss, rec, window=3)
    assert n == 8 + 5 + 3 and abs(total - full) < 1e-10  # the carried state gives the windows the whole past
    assert len(rec.steps) == 3  # one update per window of 3 steps: 8 steps -> windows 0-2, 3-5, 6-7
    # the gradient of the second window: its loss as a function of the parameters, with the carried state a constant
    rnn, dense = model.layers
    rnn.forward(X[:, :3])  # the state after window 1 (the parameters did not change: Recorder)
    h3 = [to_numpy(h).copy() for h in _final_states(rnn)]
    def J2(): return loss(dense.forward(rnn(X[:, 3:6], initial_state=[to_device(h) for h in h3])), Y[:, 3:6])
    params = {n: model.params[n] for n in rec.steps[1]}
    grad_check(J2, params, rec.steps[1], tol=1e-6)


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_train_whole_window_matches_fit(cell):
    "With the whole name in one window, train_language_model computes what fit computes."
    v = CharVocab.from_words(load_names())
    words = load_names()[::20]
    seed(0); a = language_model(cell, 12, len(v))
    seed(0); b = language_model(cell, 12, len(v))
    b.compile(optimizer=Adam(0.005, global_clipnorm=1.0), loss=SequenceCrossentropy(), metrics=[])
    seed(3); train_language_model(a, words, v, epochs=2)
    seed(3); b.fit(*name_batch(words, v), epochs=2, batch_size=32, verbose=0)
    for n in a.params: assert np.allclose(to_numpy(a.params[n]), to_numpy(b.params[n]), atol=1e-6), n
    fails(lambda: train_language_model(a, words, v, window=0), contains="window must be")


def test_training_beats_the_bigram_and_survives_save(census, tmp_path):
    words, vocab, (train, dev, _) = census
    seed(0)
    model = language_model("gru", 32, len(vocab))
    before = perplexity(model, dev, vocab)
    h = train_language_model(model, train, vocab, epochs=2, dev=dev)
    assert abs(before - 27) < 3 and h["dev_perplexity"][1] < h["dev_perplexity"][0] < before
    assert h["dev_perplexity"][1] < perplexity(BigramModel(train, vocab), dev, vocab)
    assert h["loss"][1] < h["loss"][0]
    model.save(tmp_path / "lm.npz", include_optimizer=False)
    loaded = load_model(tmp_path / "lm.npz")
    assert abs(perplexity(loaded, dev, vocab) - h["dev_perplexity"][1]) < 1e-9
    assert sample_names(loaded, vocab, 20, seed=4) == sample_names(model, vocab, 20, seed=4)


def test_saved_models_and_results():
    "The files scripts/train_language.py wrote: loadable, small, and agreeing with the figures it recorded."
    folder = Path(__file__).resolve().parents[2] / "weights"
    results = json.loads((folder / "language_results.json").read_text())
    words = load_names()
    vocab, (train, dev, test) = CharVocab.from_words(words), split_names(words)
    for cell in ("simple_rnn", "gru", "lstm"):
        path = folder / f"language_{cell}.npz"
        assert path.stat().st_size < 1_000_000
        rec = next(r for r in results["runs"] if r["cell"] == cell and r["seed"] == results["config"]["seeds"][0] and r["window"] is None)
        assert abs(perplexity(load_model(path), test, vocab) - rec["test_perplexity"]) < 1e-3
        assert rec["test_perplexity"] < results["bigram"]["test_perplexity"]
