"""Train GloVe (nbs/42c_glove.ipynb) on the Wikipedia sample and save the vectors and scores.

The corpus and settings are the chapter's: `load_corpus("wiki")`, the words seen at least 10 times (the others dropped),
co-occurrence counts weighted by 1/distance in a window of 5, d = 50; then `train_glove` with AdaGrad (α = 0.05,
batches of 1024 nonzero entries, seed 0) for 25 epochs, with GloVe's x_max = 100 and α = 3/4, and for comparison
with x_max = 10 and with the notes' f (1 for every nonzero count, x_max → 0). Writes weights/glove_wiki.npz (the
words and e + θ of the main run, float16) and weights/glove_wiki.json (configuration, losses, times, and the scores
of e, θ and e + θ from `evaluate_vectors`, and of e + θ for the two other weightings).

    python scripts/train_glove.py [--epochs 25] [--threads N] [--no-variants]
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from dlnotes.backend import set_num_threads, to_numpy
from dlnotes.seq.embeddings import Vocabulary, WordVectors, evaluate_vectors, load_corpus
from dlnotes.seq.glove import cooccurrence, glove_vectors, train_glove

ROOT = Path(__file__).resolve().parents[1]
NOTES_F = 1e-9  # x_max below every count: f = 1 for every nonzero X_ij


def _scores(words, vectors):
    "evaluate_vectors without the per-section details."
    return {k: v for k, v in evaluate_vectors(WordVectors(words, to_numpy(vectors))).items() if k != "sections"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--min-count", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "weights" / "glove_wiki"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    ap.add_argument("--no-variants", action="store_true", help="skip the runs with x_max = 10 and the notes' f")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    sentences = load_corpus("wiki")
    vocab = Vocabulary.from_tokens(sentences, min_count=args.min_count)
    encoded = [vocab.encode([w for w in s if w in vocab]) for s in sentences]
    start = time.perf_counter()
    X = cooccurrence(encoded, len(vocab), args.window)
    count_seconds = time.perf_counter() - start
    start = time.perf_counter()
    params, losses = train_glove(X, dim=args.dim, epochs=args.epochs, x_max=100.0, seed=0)
    seconds = time.perf_counter() - start
    out = {"config": {"corpus": "wiki", "min_count": args.min_count, "window": args.window, "dim": args.dim, "epochs": args.epochs,
                      "learning_rate": 0.05, "batch_size": 1024, "x_max": 100.0, "alpha": 0.75, "seed": 0, "V": len(vocab),
                      "tokens": sum(map(len, encoded)), "nnz": int(X.x.size)},
           "count_seconds": count_seconds, "losses": losses, "seconds": seconds,
           "scores": {"e": _scores(vocab.words, params["e"]), "theta": _scores(vocab.words, params["theta"]),
                      "e + theta": _scores(vocab.words, glove_vectors(params))}}
    print(f"x_max=100: J {[round(l) for l in losses[::5]]}, {seconds:.0f} s; {out['scores']['e + theta']}", flush=True)
    if not args.no_variants:
        out["variants"] = {}
        for name, x_max in (("x_max = 10", 10.0), ("notes' f (x_max -> 0)", NOTES_F)):
            p, l = train_glove(X, dim=args.dim, epochs=args.epochs, x_max=x_max, seed=0)
            out["variants"][name] = {"x_max": x_max, "losses": l, "scores": _scores(vocab.words, glove_vectors(p))}
            print(f"{name}: {out['variants'][name]['scores']}", flush=True)
    np.savez_compressed(args.out + ".npz", words=np.array(vocab.words), W=to_numpy(glove_vectors(params)).astype(np.float16))
    Path(args.out + ".json").write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}.npz and .json")


if __name__ == "__main__":
    main()
