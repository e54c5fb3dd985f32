"""Train the CNN of nbs/35_visualizing.ipynb and save it to weights/visual_cnn.npz.

The data and the model are the notebook's: scikit-learn's digits upsampled to 24 x 24 (`visual_digit_splits()`, the
80/20 stratified split of seed 0), the training images and four copies shifted by up to two pixels
(`random_shifts(X_train, y_train, copies=4, max_shift=2, seed=0)`), and `train_visual_cnn` (`visual_cnn()` after
`seed(0)`, Adam from 0.002 decaying by 0.8 per epoch, mini-batches of 32). It prints the loss and training accuracy
of every epoch, and the accuracy on the notebook's test split once, at the end (nothing is chosen by it). The file is
written with `save(..., include_optimizer=False)`: the notebook only predicts with it.

    python scripts/train_visual_cnn.py [--epochs 12] [--out weights/visual_cnn.npz] [--threads N]
"""
import argparse, time
from pathlib import Path

from dlnotes.backend import set_num_threads, to_device
from dlnotes.vision.visualizing import random_shifts, train_visual_cnn, visual_digit_splits

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--out", default=str(ROOT / "weights" / "visual_cnn.npz"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    X_train, X_test, y_train, y_test = visual_digit_splits()
    X_aug, y_aug = random_shifts(to_device(X_train), y_train, copies=4, max_shift=2, seed=0)
    t0 = time.perf_counter()
    model, history = train_visual_cnn(X_aug, y_aug, epochs=args.epochs, verbose=0)
    seconds = time.perf_counter() - t0
    for epoch, (loss, acc) in enumerate(zip(history.history["loss"], history.history["accuracy"]), start=1):
        print(f"epoch {epoch:3d}  loss {loss:.4f}  training accuracy {acc:.4f}")
    test_acc = model.evaluate(to_device(X_test), y_test)["accuracy"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out, include_optimizer=False)
    print(f"training time {seconds:.0f} s on {len(X_aug)} images, {args.epochs} epochs; test accuracy {test_acc:.4f}; saved {args.out}")


if __name__ == "__main__":
    main()
