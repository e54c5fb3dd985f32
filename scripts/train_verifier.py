"""Train the binary verifier of nbs/34b_verification.ipynb and save it as weights/siamese_binary.npz.

The verifier is `binary_verifier` on a new `make_encoder` (the architecture of the triplet encoders), fitted with Adam
on the binary cross-entropy of fresh pairs of the training glyphs (`train_verifier`). The notebook shows a short run of
the same call and loads the file this script writes. The default run (30 epochs of 100 batches of 64 pairs) took 480 s
on one thread of a busy two-core machine.

Usage: DLNOTES_NUM_THREADS=1 .venv/bin/python scripts/train_verifier.py [--epochs 30] [--steps 100] [--out weights/siamese_binary.npz]
"""
import argparse, json, time
from pathlib import Path

from dlnotes.vision.identities import make_glyphs
from dlnotes.vision.verification import evaluate_verifier, train_verifier, verifier_parts

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps", type=int, default=100, help="batches of pairs per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "weights" / "siamese_binary.npz"))
    a = p.parse_args(argv)
    train, dev = make_glyphs("train"), make_glyphs("dev")
    start = time.perf_counter()
    model, history = train_verifier(train, epochs=a.epochs, steps_per_epoch=a.steps, batch_size=a.batch_size,
                                    learning_rate=a.learning_rate, seed=a.seed, verbose=2)
    seconds = time.perf_counter() - start
    encoder, distance = verifier_parts(model)
    ev = evaluate_verifier(encoder, dev, dev, distance)  # dev only: the test identities stay for the notebook
    model.save(a.out, include_optimizer=False)
    print(json.dumps({"seconds": round(seconds, 1), "loss": [round(l, 4) for l in history.history["loss"]],
                      "dev_auc": round(ev.auc, 4), "dev_accuracy": round(ev.accuracy, 4), "out": a.out}))


if __name__ == "__main__":
    main()
