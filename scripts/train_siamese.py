"""Train the Siamese encoders of nbs/34a_siamese.ipynb, one per triplet mining, and save them to weights/siamese_*.npz.

The data and the model are the notebook's: the training glyphs `make_glyphs("train")` (10 photos of each identity),
`make_encoder()` after `seed(0)` for every strategy (the same initial weights), `TripletLoss(alpha=0.2, mining)` and Adam
at 0.001, on the same batches for every strategy (`identity_batches(train, 16, 4, seed=1)`: 16 identities x 4 photos).
After every epoch of `--steps` batches it records the mean training loss, the fraction of mined triplets with a
non-zero loss and the verification AUC on 2000 pairs of the dev identities (`sample_pairs(make_glyphs("dev"), 2000,
seed=0)`, identities never seen in training). Each encoder is saved with the weights of its epoch with the best dev AUC
(`train_encoder(..., keep_best=True)`; the dev split is for such choices, the test identities stay untouched), written
with `save(..., include_optimizer=False)` (the notebooks only encode with them); the per-epoch records and the chosen
epoch go to weights/siamese_history.json.

    python scripts/train_siamese.py [--epochs 30] [--steps 100] [--mining random hard semihard] [--out-dir weights] [--threads N]
"""
import argparse, json, time
from pathlib import Path

from dlnotes.backend import set_num_threads
from dlnotes.vision.identities import make_glyphs, sample_pairs
from dlnotes.vision.siamese import MINING, train_encoder

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=100, help="batches per epoch")
    ap.add_argument("--mining", nargs="+", default=list(MINING), choices=MINING)
    ap.add_argument("--alpha", type=float, default=0.2, help="the margin α of the triplet loss")
    ap.add_argument("--out-dir", default=str(ROOT / "weights"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    train, dev = make_glyphs("train"), make_glyphs("dev")
    dev_pairs = sample_pairs(dev, 2000, seed=0)
    out = Path(args.out_dir); out.mkdir(parents=True, exist_ok=True)
    record = {"config": {"epochs": args.epochs, "steps_per_epoch": args.steps, "alpha": args.alpha, "batch": "16 identities x 4 photos",
                         "learning_rate": 1e-3, "train_identities": len(train.names), "dev_identities": len(dev.names), "dev_pairs": 2000}}
    for mining in args.mining:
        t0 = time.perf_counter()
        encoder, history = train_encoder(train, mining, epochs=args.epochs, steps_per_epoch=args.steps, alpha=args.alpha,
                                         dev_pairs=dev_pairs, keep_best=True, verbose=True)
        encoder.save(out / f"siamese_{mining}.npz", include_optimizer=False)
        record[mining] = {k: [round(v, 6) for v in vs] if isinstance(vs, list) else vs for k, vs in history.items()}
        best = history["best_epoch"]
        print(f"{mining}: {time.perf_counter() - t0:.0f} s; dev AUC {history['dev_auc'][-1]:.4f} after the last epoch, "
              f"{history['dev_auc'][best - 1]:.4f} after epoch {best}, whose weights are saved in {out / f'siamese_{mining}.npz'}", flush=True)
    path = out / "siamese_history.json"
    if path.exists() and set(args.mining) != set(MINING):  # a partial rerun keeps the other strategies' records
        old = json.loads(path.read_text())
        record = {**{k: v for k, v in old.items() if k in MINING}, **record}
    path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
