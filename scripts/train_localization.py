"""Train the localization CNN of nbs/33b_localization.ipynb and save it to weights/localization.npz.

The data and the model are the notebook's: `localization_scenes(5000, 2000, "train", seed=100)` (32 x 32 scenes of the
digits 0-3, one digit in 5000 of them, zero or one in 2000), `localization_model(4)` after `seed(0)`, the
`LocalizationLoss(box_weight=5)`, Adam at 0.002 decaying by 0.9 per epoch, mini-batches of 32. After every few epochs
it prints the mean IoU, the class accuracy and the presence accuracy on the notebook's test scenes
(`localization_scenes(400, 200, "test", seed=102)`), and at the end the training time. The file is written with
`save(..., include_optimizer=False)`: the notebook only predicts with it.

    python scripts/train_localization.py [--epochs 30] [--box-weight 5] [--out weights/localization.npz] [--threads N]
"""
import argparse, time
from pathlib import Path

from dlnotes.backend import seed, set_num_threads, to_device
from dlnotes.nn.optimization import ExponentialDecay
from dlnotes.nn.optimizers import Adam
from dlnotes.vision.localization import LocalizationLoss, localization_metrics, localization_model, localization_scenes

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=5000, help="training scenes with a digit (and 2/5 as many without)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--box-weight", type=float, default=5.0, help="λ of LocalizationLoss (the notebook's: 5)")
    ap.add_argument("--out", default=str(ROOT / "weights" / "localization.npz"))
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS or BLAS's own)")
    args = ap.parse_args(argv)
    if args.threads: set_num_threads(args.threads)
    X, Y, _, _ = localization_scenes(args.scenes, args.scenes * 2 // 5, "train", seed=100)
    X_test, Y_test, _, _ = localization_scenes(400, 200, "dev", seed=101)  # watched during training: dev scenes, never the test split
    X, X_test = to_device(X), to_device(X_test)
    seed(0)
    model = localization_model(4)
    lr = ExponentialDecay(2e-3, 0.9, decay_steps=-(-len(X) // 32))
    model.compile(optimizer=Adam(learning_rate=lr), loss=LocalizationLoss(box_weight=args.box_weight))
    seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        h = model.fit(X, Y, epochs=epoch, initial_epoch=epoch - 1, batch_size=32, verbose=0)
        seconds += time.perf_counter() - t0
        if epoch % 5 == 0 or epoch == args.epochs:
            m = localization_metrics(model.predict(X_test), Y_test, 32)
            print(f"epoch {epoch:3d}  loss {h.history['loss'][-1]:.4f}  dev: mean IoU {m['mean_iou']:.3f}  "
                  f"accuracy {m['accuracy']:.3f}  presence {m['presence_accuracy']:.3f}  ({seconds:.0f} s)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out, include_optimizer=False)
    print(f"training time {seconds:.0f} s on {len(X)} scenes, {args.epochs} epochs; saved {args.out}")


if __name__ == "__main__":
    main()
