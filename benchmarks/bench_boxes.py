"""Speed of dlnotes.vision.boxes (iou_matrix, non_max_suppression) against plain Python loops and supervision.

Two measurements on seeded random boxes (float64, corner format), in one process:

(a) IoU matrix: iou_matrix of N boxes against M boxes (default 10 000 x 1 000, ten million pairs), against a plain
    Python double loop over pairs (bare float arithmetic, no argument checks) timed on the first --loop-rows rows and
    scaled to the whole matrix, and against supervision's box_iou_batch;
(b) NMS: non_max_suppression of N boxes (max_boxes=N, one class), laid out as a detector's output: clusters of
    jittered copies around N / 20 objects with distinct random scores, against a plain Python loop (each candidate,
    by decreasing score, kept unless a kept box overlaps it by more than the threshold) and against supervision's
    box_non_max_suppression (which builds the full N x N IoU matrix: about 8 GB at N = 10 000).

supervision is used only when it imports (it is not a dependency of dlnotes; run the script with an interpreter that
has it, with PYTHONPATH pointing at this checkout). Before any timing, the results are compared: the same IoU matrix
(up to supervision's float32 output) and the same kept boxes, for ours, the loop and supervision. The fast
implementations run alternately (median of --repeats rounds), the loops once. Nothing is asserted: the figures
depend on the machine and on what else runs on it.

    python benchmarks/bench_boxes.py [--n 10000] [--m 1000] [--loop-rows 100] [--repeats 5] [--threads N] [--no-supervision]
"""
import argparse, os, time

import numpy as np

from dlnotes.backend import get_rng
from dlnotes.vision.boxes import iou_matrix, non_max_suppression
from common import use_threads, interleaved_medians


def random_boxes(n, size=1000.0, max_side=60.0, seed=0):
    "n boxes spread over a size x size image, sides in [5, max_side]."
    rng = get_rng(seed)
    xy, wh = rng.uniform(0, size - max_side, (n, 2)), rng.uniform(5, max_side, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def detections(n, per_object=20, seed=1):
    "n boxes as a detector reports them: per_object jittered copies around n / per_object objects; distinct scores."
    rng = get_rng(seed)
    objects = random_boxes(-(-n // per_object), size=2000.0, max_side=100.0, seed=seed + 1)
    boxes = np.repeat(objects, per_object, axis=0)[:n]
    sides = np.repeat(objects[:, 2:] - objects[:, :2], 2, axis=1)
    boxes = boxes + rng.normal(0, 0.08, (n, 4)) * np.repeat(sides, per_object, axis=0)[:n]
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2])
    return boxes, rng.permutation(n) / n


def plain_iou(a, b):
    "IoU of two boxes given as 4 Python floats each."
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = w * h if w > 0 and h > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def iou_loop(boxes1, boxes2):
    "The IoU matrix, one pair at a time."
    b1, b2 = boxes1.tolist(), boxes2.tolist()
    return [[plain_iou(a, b) for b in b2] for a in b1]


def nms_loop(boxes, scores, iou_threshold):
    "Greedy NMS, one pair at a time; the indices kept, by decreasing score."
    b = boxes.tolist()
    keep = []
    for i in sorted(range(len(b)), key=lambda i: -scores[i]):
        if all(plain_iou(b[i], b[k]) <= iou_threshold for k in keep): keep.append(i)
    return keep


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="boxes (rows of the IoU matrix; boxes for NMS)")
    ap.add_argument("--m", type=int, default=1_000, help="columns of the IoU matrix")
    ap.add_argument("--loop-rows", type=int, default=100, help="rows of the IoU matrix the Python loop computes")
    ap.add_argument("--iou-threshold", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: DLNOTES_NUM_THREADS, else the BLAS library's own count)")
    ap.add_argument("--no-supervision", action="store_true")
    args = ap.parse_args()
    threads, how = use_threads(args.threads)
    sv = None
    if not args.no_supervision:
        try:
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # its note that OpenCV is absent
                import supervision
                from supervision.detection.utils import iou_and_nms as sv
            sv_version = supervision.__version__
        except ImportError:
            sv = None
    print(f"threads: {threads} (BLAS; {how}); cpu_count {os.cpu_count()}; numpy {np.__version__}; "
          f"supervision {sv_version if sv else 'not installed' if not args.no_supervision else 'skipped (--no-supervision)'}")

    # (a) the IoU matrix
    boxes1, boxes2 = random_boxes(args.n, seed=2), random_boxes(args.m, seed=3)
    ours = iou_matrix(boxes1, boxes2)
    rows = min(args.loop_rows, args.n)
    t0 = time.perf_counter(); ref = iou_loop(boxes1[:rows], boxes2); t_loop = (time.perf_counter() - t0) * args.n / rows
    np.testing.assert_allclose(ours[:rows], ref, rtol=0, atol=1e-12)
    fns = {"ours": lambda: iou_matrix(boxes1, boxes2)}
    if sv:
        np.testing.assert_allclose(sv.box_iou_batch(boxes1, boxes2), ours, rtol=0, atol=1e-6)
        fns["supervision"] = lambda: sv.box_iou_batch(boxes1, boxes2)
    t = interleaved_medians(fns, args.repeats, warmup=1)
    print(f"\n(a) IoU matrix {args.n} x {args.m} ({args.n * args.m / 1e6:.0f} M pairs, {(ours > 0).mean():.2%} overlapping); "
          f"results checked equal (loop on {rows} rows{', supervision to float32' if sv else ''})")
    print(f"{'':22s} {'ms':>10s} {'ns/pair':>8s} {'loop/this':>10s}")
    for name, sec in [("python loop (scaled)", t_loop)] + list(t.items()):
        print(f"{name:22s} {sec * 1e3:10.1f} {sec / (args.n * args.m) * 1e9:8.2f} {t_loop / sec:10.0f}")
    if sv: print(f"ours / supervision: {t['ours'] / t['supervision']:.2f}")

    # (b) NMS
    boxes, scores = detections(args.n)
    thr = args.iou_threshold
    keep = non_max_suppression(boxes, scores, thr, max_boxes=args.n).tolist()
    t0 = time.perf_counter(); keep_loop = nms_loop(boxes, scores, thr); t_loop = time.perf_counter() - t0
    assert keep == keep_loop, "non_max_suppression and the loop keep different boxes"
    fns = {"ours": lambda: non_max_suppression(boxes, scores, thr, max_boxes=args.n)}
    if sv:
        mask = sv.box_non_max_suppression(np.c_[boxes, scores], iou_threshold=thr)
        assert sorted(keep) == np.flatnonzero(mask).tolist(), "supervision keeps different boxes"
        fns["supervision"] = lambda: sv.box_non_max_suppression(np.c_[boxes, scores], iou_threshold=thr)
    t = interleaved_medians(fns, args.repeats, warmup=1)
    print(f"\n(b) NMS of {args.n} boxes around {-(-args.n // 20)} objects, iou_threshold {thr}: {len(keep)} kept; "
          f"same boxes kept by all (checked)")
    print(f"{'':22s} {'ms':>10s} {'loop/this':>10s}")
    for name, sec in [("python loop", t_loop)] + list(t.items()):
        print(f"{name:22s} {sec * 1e3:10.1f} {t_loop / sec:10.0f}")
    if sv: print(f"ours / supervision: {t['ours'] / t['supervision']:.2f}")


if __name__ == "__main__":
    main()
