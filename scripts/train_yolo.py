"""Train the digit-scene detector of nbs/33c_yolo.ipynb and save it to weights/yolo_digits.npz.

The notebook shows a short run of the same code (`train_yolo`) and then loads the file this script writes.
Usage (from the repository root):

    DLNOTES_NUM_THREADS=2 python scripts/train_yolo.py [--scenes 6000] [--epochs 20] [--out weights/yolo_digits.npz]
"""
import argparse, time
from pathlib import Path

from dlnotes.vision.scenes import make_scenes
from dlnotes.vision.boxes import mean_average_precision
from dlnotes.vision.yolo import box_shapes, kmeans_anchors, train_yolo, detect

ROOT = Path(__file__).resolve().parents[1]
GRID, N_ANCHORS, FILTERS, SIZE = 8, 3, (16, 32, 64, 64), 64  # the notebook uses the same values


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=6000, help="training scenes (split='train', seed 0)")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=1, help="seeds the initial weights and the batches")
    p.add_argument("--out", default=str(ROOT / "weights" / "yolo_digits.npz"))
    args = p.parse_args(argv)
    scenes = make_scenes(args.scenes, size=SIZE, split="train", seed=0)
    anchors = kmeans_anchors(box_shapes(scenes.boxes), N_ANCHORS, seed=0)
    print("anchors (w, h) in pixels:", anchors.round(2).tolist())
    t0 = time.perf_counter()
    model, _ = train_yolo(scenes, anchors, GRID, epochs=args.epochs, batch_size=32, learning_rate=args.learning_rate,
                          seed=args.seed, filters=FILTERS, verbose=2)
    print(f"training time: {time.perf_counter() - t0:.0f} s ({args.scenes} scenes, {args.epochs} epochs)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out, include_optimizer=False)
    dev = make_scenes(500, size=SIZE, split="dev", seed=1)
    det = detect(model, dev.images, anchors, score_threshold=0.05)
    res = mean_average_precision(*det, dev.boxes, dev.labels, len(dev.class_names))
    print(f"dev mAP@0.5: {res.map:.3f}; saved {args.out}")


if __name__ == "__main__":
    main()
