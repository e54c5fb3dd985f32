"""Repeated stratified cross-validation of the sentiment models of nbs/42d_sentiment.ipynb; saves weights/sentiment_cv.json.

For every setting of dlnotes.seq.sentiment.SETTINGS (the average of the GloVe embeddings then a softmax; an LSTM with 16
units on frozen GloVe vectors; the same with the vectors fine-tuned), `cross_validate` trains a fresh model on each of
k - 1 folds and tests it on the one left out, for several seeds of the folds; the majority baseline is measured on the
same folds. Nothing is tuned on the test folds. The JSON holds the configuration and every fold's accuracy.

    python scripts/train_sentiment.py [--k 10] [--seeds 0 1 2] [--out weights/sentiment_cv.json] [--threads N]
"""
import argparse, json, time
from pathlib import Path

import numpy as np

from dlnotes.backend import set_num_threads
from dlnotes.seq.sentiment import SETTINGS, cross_validate, majority_accuracy, polarity_arrays, sentiment_model, stratified_folds

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--units", type=int, default=16)
    ap.add_argument("--out", default=str(ROOT / "weights" / "sentiment_cv.json"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    X, y, words, E = polarity_arrays()
    t0, results = time.perf_counter(), {"majority": {}}
    for s in args.seeds: results["majority"][str(s)] = majority_accuracy(y, stratified_folds(y, args.k, s))
    for name, (kind, trainable, epochs, lr) in SETTINGS.items():
        results[name] = {}
        for s in args.seeds:
            t = time.perf_counter()
            accs = cross_validate(lambda: sentiment_model(E, kind, args.units, trainable), X, y, k=args.k, seed=s,
                                  epochs=epochs, learning_rate=lr)
            results[name][str(s)] = accs
            print(f"{name:>17}, seed {s}: mean {np.mean(accs):.3f} ± {np.std(accs):.3f} ({time.perf_counter() - t:.0f} s)", flush=True)
    out = {"config": {"k": args.k, "seeds": args.seeds, "units": args.units, "settings": SETTINGS, "n": int(len(y)),
                      "vocabulary": len(words)}, "accuracy": results, "seconds": time.perf_counter() - t0}
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
