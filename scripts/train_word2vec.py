"""Train the embeddings of nbs/42a_word2vec.ipynb on the Wikipedia sample and save what the notebook reads.

Same corpus and settings for every method: load_corpus("wiki"), min_count=10, window 5, d = 50, seed 0.
- gensim's Word2Vec (sg=1, negative=5, sample=1e-3, 5 epochs, workers=1), when gensim is installed;
- ours, skip-gram with negative sampling (k = 5, sample = 1e-3, 5 epochs, batches of 1024 pairs);
- the neural language model (4 previous words, 64 hidden units, AdaGrad, 5 epochs; --nlm-epochs);
- skip-gram with the full softmax (AdaGrad, 1 epoch, --softmax-epochs: its step costs ∝ V, 3 B V d per batch).
Each is measured with evaluate_vectors (wordsim353, simlex999, analogies within the corpus vocabulary). Writes
weights/word2vec_results.json (scores, words/s, nearest words) after every method, and weights/word2vec_sgns.npz
(our negative-sampling vectors in float16 and their words). Takes about 5-15 minutes on one or two cores.

    python scripts/train_word2vec.py [--only gensim,negative,nlm,softmax]
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from dlnotes.seq.embeddings import Vocabulary, WordVectors, evaluate_vectors, load_corpus
from dlnotes.seq.word2vec import encode_sentences, train_nlm, train_skipgram

OUT = Path(__file__).resolve().parent.parent / "weights"
SETTINGS = dict(min_count=10, window=5, d=50, k=5, sample=1e-3, epochs=5, seed=0)
PROBES = ("king", "france", "war", "music", "three")


def scores(words, E):
    "evaluate_vectors' figures (sections dropped) and the nearest words of a few probes."
    wv = WordVectors(words, np.asarray(E, dtype=np.float32))
    r = {k: v for k, v in evaluate_vectors(wv).items() if k != "sections"}
    r["nearest"] = {w: [x for x, _ in wv.most_similar(w, topn=5)] for w in PROBES if w in wv}
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="gensim,negative,nlm,softmax")
    ap.add_argument("--nlm-epochs", type=int, default=5)
    ap.add_argument("--softmax-epochs", type=int, default=1)
    args = ap.parse_args()
    tokens = load_corpus("wiki")
    vocab = Vocabulary.from_tokens(tokens, min_count=SETTINGS["min_count"])
    corpus = encode_sentences(tokens, vocab)
    n_words = sum(len(s) for s in corpus)
    path = OUT / "word2vec_results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["settings"] = dict(SETTINGS, corpus="wiki", V=len(vocab), words=n_words)
    S = SETTINGS
    for what in args.only.split(","):
        t0 = time.perf_counter()
        if what == "gensim":
            from gensim.models import Word2Vec
            m = Word2Vec(vector_size=S["d"], window=S["window"], min_count=S["min_count"], sg=1, hs=0, negative=S["k"],
                         sample=S["sample"], seed=S["seed"], workers=1)
            m.build_vocab(tokens)
            t1 = time.perf_counter()
            m.train(tokens, total_examples=m.corpus_count, epochs=S["epochs"])
            secs = time.perf_counter() - t1
            r = scores(m.wv.index_to_key, m.wv.vectors)
            r.update(seconds=secs, epochs=S["epochs"], words_per_second=n_words * S["epochs"] / secs, V=len(m.wv))
        elif what in ("negative", "softmax"):
            epochs = S["epochs"] if what == "negative" else args.softmax_epochs
            E, _, info = train_skipgram(corpus, vocab.counts, what, d=S["d"], window=S["window"], k=S["k"],
                                        sample=S["sample"], epochs=epochs, seed=S["seed"])
            r = scores(vocab.words, E)
            r.update(seconds=info["seconds"], epochs=epochs, words_per_second=info["words_per_second"], loss=info["loss"])
            if what == "negative":
                np.savez_compressed(OUT / "word2vec_sgns.npz", E=E.astype(np.float16), words=np.array(vocab.words))
        elif what == "nlm":
            params, info = train_nlm(corpus, len(vocab), d=S["d"], epochs=args.nlm_epochs, seed=S["seed"])
            r = scores(vocab.words, params["E"])
            r.update(seconds=info["seconds"], epochs=args.nlm_epochs, windows=info["windows"], loss=info["loss"],
                     words_per_second=info["windows"] / info["seconds"])
        else:
            raise SystemExit(f"unknown method {what!r}")
        results[what] = r
        path.write_text(json.dumps(results, indent=1))
        print(f"{what}: wordsim353 {r['wordsim353']:.3f} ({r['wordsim353_pairs']} pairs), simlex999 {r['simlex999']:.3f}, "
              f"analogies {r['analogy']:.3%} of {r['analogy_covered']}, {r['words_per_second']:,.0f} words/s, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
