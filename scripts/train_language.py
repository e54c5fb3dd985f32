"""Train the character-level language models of nbs/41d_language.ipynb; save them to weights/language_*.npz and the figures to weights/language_results.json.

The data and the models are the notebook's: the census first names of the `names` package, `split_names(load_names())`
(4131 train, 516 dev, 516 test), `language_model(cell, 64)` for cell in simple_rnn, gru, lstm, trained by
`train_language_model` (Adam at 0.005, global gradient norm clipped to 1, batches of 32 names, backprop through the whole
name) for 20 epochs, once per seed. Each run keeps the weights of its epoch with the lowest dev perplexity; the test
perplexity is measured on those. The first seed's model of each cell is saved (`save(..., include_optimizer=False)`) as
weights/language_<cell>.npz, and its GRU also after 0, 1 and 3 epochs (weights/language_gru_epoch<k>.npz) for the samples
at several points of training. A GRU is also trained with truncated BPTT windows of 1 and 3 steps. The results file holds
every learning curve, the perplexities, the bigram baseline, and samples with their statistics at temperatures 0.5, 1 and 1.5.

    python scripts/train_language.py [--epochs 20] [--units 64] [--seeds 0 1] [--out-dir weights] [--threads N]
"""
import argparse, json, time
from pathlib import Path

from dlnotes.backend import seed, set_num_threads
from dlnotes.nn.models import load_model
from dlnotes.seq.language import (CELLS, BigramModel, CharVocab, language_model, load_names, name_stats, perplexity,
                                  sample_names, split_names, train_language_model)

ROOT = Path(__file__).resolve().parents[1]
TEMPERATURES, SNAPSHOTS, N_SAMPLES = (0.5, 1.0, 1.5), (1, 3), 500


def run(cell, units, s, data, epochs, window=None, snapshot_dir=None):
    "Train one model from seed s; returns (model with its best dev weights, record of the run)."
    train, dev, test, vocab = data
    seed(s)
    model = language_model(cell, units, len(vocab))
    if snapshot_dir is not None: model.save(snapshot_dir / f"language_{cell}_epoch0.npz", include_optimizer=False)
    best, dev_curve = {"pp": float("inf"), "epoch": 0, "weights": None}, []

    def keep_best(epoch, m):
        "Measure the dev perplexity, keep the best weights, save the snapshots."
        dev_curve.append(perplexity(m, dev, vocab))
        if dev_curve[-1] < best["pp"]: best.update(pp=dev_curve[-1], epoch=epoch, weights=m.get_weights())
        if snapshot_dir is not None and epoch in SNAPSHOTS:
            m.save(snapshot_dir / f"language_{cell}_epoch{epoch}.npz", include_optimizer=False)

    t0 = time.perf_counter()
    h = train_language_model(model, train, vocab, epochs=epochs, window=window, on_epoch=keep_best)
    seconds = time.perf_counter() - t0
    model.set_weights(best["weights"])
    rec = {"cell": cell, "units": units, "seed": s, "window": window, "params": model.count_params(), "seconds": round(seconds, 1),
           "loss": h["loss"], "dev_perplexity": dev_curve, "best_epoch": best["epoch"],
           "train_perplexity": perplexity(model, train, vocab), "dev_perplexity_best": perplexity(model, dev, vocab),
           "test_perplexity": perplexity(model, test, vocab)}
    print(f"{cell:10s} seed {s} window {window}: best epoch {rec['best_epoch']:2d}, perplexity train {rec['train_perplexity']:.3f} "
          f"dev {rec['dev_perplexity_best']:.3f} test {rec['test_perplexity']:.3f} ({seconds:.0f} s, {rec['params']} parameters)", flush=True)
    return model, rec


def samples(model, vocab, train, names):
    "Samples and their statistics at each temperature."
    out = {}
    for T in TEMPERATURES:
        s = sample_names(model, vocab, N_SAMPLES, temperature=T, seed=1)
        out[str(T)] = {"stats": name_stats(s, train, names), "first": s[:15]}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--windows", type=int, nargs="*", default=[1, 3], help="truncated-BPTT windows tried with the GRU")
    ap.add_argument("--out-dir", default=str(ROOT / "weights"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    out = Path(args.out_dir); out.mkdir(parents=True, exist_ok=True)
    names = load_names()
    train, dev, test = split_names(names)
    vocab = CharVocab.from_words(names)
    data = (train, dev, test, vocab)
    bigram = BigramModel(train, vocab)
    results = {"config": {"epochs": args.epochs, "units": args.units, "seeds": args.seeds, "batch_size": 32, "learning_rate": 0.005,
                          "global_clipnorm": 1.0, "sizes": [len(train), len(dev), len(test)]},
               "bigram": {"dev_perplexity": perplexity(bigram, dev, vocab), "test_perplexity": perplexity(bigram, test, vocab),
                          "samples": samples(bigram, vocab, train, names)},
               "runs": [], "samples": {}, "snapshots": {}}
    t_all = time.perf_counter()
    for cell in CELLS:
        for i, s in enumerate(args.seeds):
            model, rec = run(cell, args.units, s, data, args.epochs, snapshot_dir=out if (cell == "gru" and i == 0) else None)
            results["runs"].append(rec)
            if i == 0:
                model.save(out / f"language_{cell}.npz", include_optimizer=False)
                results["samples"][cell] = samples(model, vocab, train, names)
    for k in args.windows:
        results["runs"].append(run("gru", args.units, args.seeds[0], data, args.epochs, window=k)[1])
    for epoch in (0, *SNAPSHOTS):
        s = sample_names(load_model(out / f"language_gru_epoch{epoch}.npz"), vocab, N_SAMPLES, seed=1)
        results["snapshots"][str(epoch)] = {"stats": name_stats(s, train, names), "first": s[:15]}
    results["seconds"] = round(time.perf_counter() - t_all, 1)
    (out / "language_results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"total {results['seconds']:.0f} s; saved {out}/language_*.npz and language_results.json")


if __name__ == "__main__":
    main()
