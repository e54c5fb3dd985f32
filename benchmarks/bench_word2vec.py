"""Speed of dlnotes.seq.word2vec's skip-gram with negative sampling against gensim's Word2Vec, and of the Embedding
layer's backward at V = 100,000.

1. Words per second, one thread each: ours (train_skipgram, negative sampling, batches of 1024 pairs) and gensim's
   Word2Vec (sg=1, negative=5, workers=1) on the same corpus (load_corpus("wiki"), min_count 10, window 5, d = 50,
   sample 1e-3), one epoch each, alternately, `--repeats` times; the medians and ours/gensim (wanted: at least 0.25).
   Words are the corpus's words in the vocabulary, the same count for both; each time covers all of a training
   (subsampling, windows, negatives, updates; gensim's vocabulary is built once, outside the timing).
2. The backward of an Embedding(100000, 50) layer on batches of 512, 8192 and 32768 indices of Zipf-like frequencies
   (repeated indices, as in text): the library's Embedding.backward (dlnotes.seq.embeddings.accumulate_rows, a sparse one-hot product),
   np.add.at into a zero table, and (smallest batch only: O takes V n floats) the dense product O @ dY with the one-hot
   matrix O (V, n) written out. Each returns the whole (V, d) gradient table, so all pay for writing 20 MB.

Nothing is asserted: the figures depend on the machine and on what else runs on it.

    python benchmarks/bench_word2vec.py [--repeats 3] [--threads N] [--no-gensim]
"""
import argparse, time

import numpy as np

from dlnotes.seq.embeddings import Embedding, Vocabulary, load_corpus
from dlnotes.seq.word2vec import encode_sentences, train_skipgram
from common import use_threads, interleaved_medians

V_EMB, D_EMB = 100_000, 50


def sgns_speed(repeats, with_gensim):
    "{name: words/s} for one epoch of each, and the corpus size."
    tokens = load_corpus("wiki")
    vocab = Vocabulary.from_tokens(tokens, min_count=10)
    corpus = encode_sentences(tokens, vocab)
    n_words = sum(len(s) for s in corpus)
    fns = {"ours": lambda: train_skipgram(corpus, vocab.counts, "negative", d=50, window=5, k=5, sample=1e-3, epochs=1)}
    if with_gensim:
        from gensim.models import Word2Vec
        model = Word2Vec(vector_size=50, window=5, min_count=10, sg=1, hs=0, negative=5, sample=1e-3, seed=0, workers=1)
        model.build_vocab(tokens)
        fns["gensim"] = lambda: model.train(tokens, total_examples=model.corpus_count, epochs=1)
    t = interleaved_medians(fns, repeats, warmup=1)
    return {k: n_words / v for k, v in t.items()}, n_words, len(vocab)


def embedding_backward(repeats, shape=(32, 16), with_dense=True):
    "{method: median seconds} of dE for one batch of indices of shape `shape` (the dense product only if with_dense)."
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, V_EMB + 1); p /= p.sum()
    x = rng.choice(V_EMB, size=shape, p=p).astype(np.int64)
    dY = rng.standard_normal((*shape, D_EMB)).astype(np.float32)
    layer = Embedding(V_EMB, D_EMB)
    layer(x)
    def add_at():
        dE = np.zeros((V_EMB, D_EMB), np.float32); np.add.at(dE, x.reshape(-1), dY.reshape(-1, D_EMB)); return dE
    def dense():
        O = np.zeros((V_EMB, x.size), np.float32); O[x.reshape(-1), np.arange(x.size)] = 1; return O @ dY.reshape(-1, D_EMB)
    ref = add_at(); layer.backward(dY)
    assert np.allclose(layer.grads["embeddings"], ref, atol=1e-4)
    fns = {"Embedding.backward": lambda: layer.backward(dY), "np.add.at": add_at}
    if with_dense:
        assert np.allclose(dense(), ref, atol=1e-4)
        fns["dense one-hot product"] = dense
    return interleaved_medians(fns, repeats), x.size, len(np.unique(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-gensim", action="store_true")
    args = ap.parse_args()
    n, how = use_threads(args.threads)
    print(f"BLAS threads: {n} ({how})")
    with_gensim = not args.no_gensim
    try:
        import gensim  # noqa: F401
    except ImportError:
        with_gensim = False
    speed, n_words, V = sgns_speed(args.repeats, with_gensim)
    print(f"\nskip-gram, negative sampling, one epoch of {n_words} words (V = {V}), median of {args.repeats}:")
    for k, v in speed.items(): print(f"  {k:7} {v:10,.0f} words/s")
    if "gensim" in speed:
        print(f"  ours / gensim = {speed['ours'] / speed['gensim']:.2f} (wanted: at least 0.25)")
    for shape in ((32, 16), (128, 64), (512, 64)):  # the dense (V, n) one-hot matrix only for the smallest: 0.2 GB
        t, n_pos, n_unique = embedding_backward(max(args.repeats, 5), shape, with_dense=shape == (32, 16))
        print(f"\nEmbedding backward, V = {V_EMB}, d = {D_EMB}, batch {shape}: {n_pos} positions ({n_unique} distinct words), "
              f"median of {max(args.repeats, 5)}:")
        for k, v in t.items(): print(f"  {k:22} {1e3 * v:9.2f} ms   ({v / t['Embedding.backward']:.1f} x the layer's)")


if __name__ == "__main__":
    main()
