"""Train skip-gram with the hierarchical softmax of nbs/42b_hsoftmax.ipynb on the Wikipedia sample, and gensim's Word2Vec with the same algorithm beside it.

The corpus and settings are those of the chapter: `load_corpus("wiki")`, the words seen at least 10 times (the others
dropped from the sentences), every (context, target) pair at distance 1..5 within a paragraph, d = 50, 5 epochs,
SGD with the learning rate decaying linearly from 0.025 to 0.0001, batches of 1024 pairs, seed 0. gensim's
`Word2Vec(sg=1, hs=1, negative=0, sample=0, shrink_windows=False, workers=1, seed=0)` with the same window, size,
epochs, min_count and learning rates is the same algorithm (a Huffman tree, one SGD step per pair). Writes
weights/hsoftmax_wiki.npz (our words and vectors, float16) and weights/hsoftmax_wiki.json (configuration, losses,
times, and both models' scores from `evaluate_vectors`).

    python scripts/train_hsoftmax.py [--epochs 5] [--threads N] [--no-gensim]
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from dlnotes.backend import set_num_threads, to_numpy
from dlnotes.seq.embeddings import Vocabulary, WordVectors, evaluate_vectors, load_corpus
from dlnotes.seq.hsoftmax import huffman_tree, skipgram_pairs, train_hs_skipgram

ROOT = Path(__file__).resolve().parents[1]


def _scores(wv):
    "evaluate_vectors without the per-section details, as plain floats and ints."
    return {k: v for k, v in evaluate_vectors(wv).items() if k != "sections"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--min-count", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--out", default=str(ROOT / "weights" / "hsoftmax_wiki"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    ap.add_argument("--no-gensim", action="store_true")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    sentences = load_corpus("wiki")
    vocab = Vocabulary.from_tokens(sentences, min_count=args.min_count)
    encoded = [vocab.encode([w for w in s if w in vocab]) for s in sentences]
    n_words = sum(map(len, encoded))
    tree = huffman_tree(vocab.counts)
    c, t = skipgram_pairs(encoded, args.window)
    start = time.perf_counter()
    E, Theta, losses = train_hs_skipgram(c, t, tree, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size, seed=0)
    seconds = time.perf_counter() - start
    E = to_numpy(E)
    out = {"config": {"corpus": "wiki", "min_count": args.min_count, "window": args.window, "dim": args.dim, "epochs": args.epochs,
                      "batch_size": args.batch_size, "learning_rate": [0.025, 0.0001], "seed": 0, "V": len(vocab),
                      "tokens": n_words, "pairs": int(len(c))},
           "ours": {"losses": losses, "seconds": seconds, "words_per_s": n_words * args.epochs / seconds,
                    "pairs_per_s": len(c) * args.epochs / seconds, "scores": _scores(WordVectors(vocab.words, E))}}
    print(f"ours: losses {[round(l, 3) for l in losses]}, {seconds:.0f} s, {out['ours']['words_per_s']:.0f} words/s; "
          f"{out['ours']['scores']}", flush=True)
    if not args.no_gensim:
        from gensim.models import Word2Vec
        start = time.perf_counter()
        model = Word2Vec([[w for w in s if w in vocab] for s in sentences], vector_size=args.dim, window=args.window,
                         min_count=args.min_count, sg=1, hs=1, negative=0, sample=0, shrink_windows=False, alpha=0.025,
                         min_alpha=0.0001, epochs=args.epochs, seed=0, workers=1)
        g_seconds = time.perf_counter() - start
        g_wv = WordVectors(model.wv.index_to_key, model.wv.vectors)
        out["gensim"] = {"seconds": g_seconds, "words_per_s": n_words * args.epochs / g_seconds, "V": len(g_wv),
                         "scores": _scores(g_wv)}
        print(f"gensim: {g_seconds:.0f} s, {out['gensim']['words_per_s']:.0f} words/s; {out['gensim']['scores']}", flush=True)
    np.savez_compressed(args.out + ".npz", words=np.array(vocab.words), E=E.astype(np.float16))
    Path(args.out + ".json").write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}.npz and .json")


if __name__ == "__main__":
    main()
