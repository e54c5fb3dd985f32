"Shape IoU and k-means anchors, the grid encoding against a loop reference, the YOLO loss against a loop reference and central differences in float64, decoding, detection with NMS, the saved detector, and bad inputs for dlnotes.vision.yolo."
import math
from pathlib import Path

import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.gradcheck import grad_check
from dlnotes.nn.models import load_model
from dlnotes.nn.optimizers import Adam
from dlnotes.vision.yolo import (shape_iou, mean_best_iou, box_shapes, kmeans_anchors, encode_targets, YoloLoss, YoloCache,
                                 decode_predictions, Detections, yolo_model, train_yolo, detect)

ROOT = Path(__file__).resolve().parents[2]
TOL = 1e-7


def _random_boxes(rng, n, size=64, lo=4, hi=30):
    "n random boxes (n, 4) inside a size x size image."
    w, h = rng.uniform(lo, hi, n), rng.uniform(lo, hi, n)
    x1, y1 = rng.uniform(0, size - w), rng.uniform(0, size - h)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def _scene_set(rng, m, K=3, size=64, max_k=4):
    boxes = [_random_boxes(rng, int(rng.integers(0, max_k + 1)), size) for _ in range(m)]
    return boxes, [rng.integers(0, K, len(b)) for b in boxes]


# ---------------------------------------------------------------- shape IoU and anchors

def test_shape_iou_against_a_loop_and_its_properties():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.5, 10, (7, 2)), rng.uniform(0.5, 10, (5, 2))
    I = shape_iou(a, b)
    for i in range(7):
        for j in range(5):
            inter = min(a[i, 0], b[j, 0]) * min(a[i, 1], b[j, 1])
            assert math.isclose(I[i, j], inter / (a[i].prod() + b[j].prod() - inter), rel_tol=1e-12)
    np.testing.assert_allclose(shape_iou(b, a), I.T)
    assert np.all((I > 0) & (I <= 1))
    np.testing.assert_allclose(np.diag(shape_iou(a, a)), 1)
    np.testing.assert_allclose(shape_iou([[2, 2]], [[1, 4]]), [[1 / 3]])


def test_box_shapes_and_mean_best_iou():
    np.testing.assert_array_equal(box_shapes([np.array([[1, 2, 4, 8.]]), np.zeros((0, 4))]), [[3, 6]])
    wh = np.array([[2, 2], [1, 2.]])
    assert math.isclose(mean_best_iou(wh, [[2, 2]]), (1 + 0.5) / 2)
    assert mean_best_iou(wh, wh) == 1.0


def test_kmeans_anchors_finds_clusters_and_is_a_fixed_point():
    rng = np.random.default_rng(1)
    small, large = rng.normal([4, 6], 0.2, (50, 2)), rng.normal([20, 12], 0.5, (50, 2))
    wh = np.concatenate([small, large])
    A = kmeans_anchors(wh, 2, seed=0)
    np.testing.assert_allclose(A, [small.mean(0), large.mean(0)], rtol=1e-10)
    np.testing.assert_array_equal(kmeans_anchors(wh, 2, seed=0), A)  # seeded
    wh3 = rng.uniform(4, 30, (300, 2))
    A3 = kmeans_anchors(wh3, 4, seed=2)
    assert np.all(np.diff(A3.prod(axis=1)) > 0)  # sorted by area
    nearest = shape_iou(wh3, A3).argmax(axis=1)  # each anchor is the mean of the shapes nearest to it
    np.testing.assert_allclose(A3, [wh3[nearest == j].mean(0) for j in range(4)], rtol=1e-6)
    random_pick = wh3[np.random.default_rng(3).choice(300, 4, replace=False)]
    assert mean_best_iou(wh3, A3) > mean_best_iou(wh3, random_pick)


# ---------------------------------------------------------------- encoding

def _encode_loop(boxes, labels, S, anchors, K, size):
    "The target by a loop written independently: a dict (i, row, col, anchor) -> vector, later objects replacing earlier ones."
    cell, out = size / S, {}
    for i, (b, l) in enumerate(zip(boxes, labels)):
        for (x1, y1, x2, y2), c in zip(b, l):
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
            col, row = int(cx // cell), int(cy // cell)
            ious = [min(w, aw) * min(h, ah) / (w * h + aw * ah - min(w, aw) * min(h, ah)) for aw, ah in anchors]
            a = int(np.argmax(ious))
            v = np.zeros(5 + K); v[:5] = 1, cx / cell - col, cy / cell - row, h / cell, w / cell; v[5 + c] = 1
            out[i, row, col, a] = v
    return out


@pytest.mark.parametrize("S,B,K", [(4, 1, 2), (8, 3, 4), (2, 2, 3), (16, 2, 1)])
def test_encode_targets_against_a_loop(S, B, K):
    rng = np.random.default_rng(S + B + K)
    boxes, labels = _scene_set(rng, 20, K)
    anchors = rng.uniform(5, 25, (B, 2))
    Y = to_numpy(encode_targets(boxes, labels, S, anchors, K, 64))
    assert Y.shape == (20, S, S, B, 5 + K)
    ref = _encode_loop(boxes, labels, S, anchors, K, 64)
    assert int(Y[..., 0].sum()) == len(ref)
    for idx, v in ref.items(): np.testing.assert_allclose(Y[idx], v, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.argwhere(Y[..., 0] == 1), sorted(ref))


def test_encode_targets_collisions_and_empty_images():
    A = [[16, 16]]
    Y = to_numpy(encode_targets([np.array([[0, 0, 16, 16], [2, 2, 18, 18.]]), np.zeros((0, 4))], [np.array([0, 1]), np.array([], int)], 4, A, 2, 64))
    assert Y[..., 0].sum() == 1 and Y[0, 0, 0, 0, 6] == 1  # the second object replaced the first
    assert not Y[1].any()


# ---------------------------------------------------------------- the loss

def _loss_loop(T, Y, anchors, cell, lc, ln, w=None):
    "J by explicit loops over images, cells and anchors, with math's functions."
    m, S, _, C = T.shape
    B = len(anchors); K = C // B - 5
    sig = lambda t: 1 / (1 + math.exp(-t))
    total = 0.0
    for i in range(m):
        J_i = 0.0
        for r in range(S):
            for q in range(S):
                for a in range(B):
                    t, y = T[i, r, q, a * (5 + K):(a + 1) * (5 + K)], Y[i, r, q, a]
                    if y[0] == 1:
                        J_i += lc * ((sig(t[1]) - y[1]) ** 2 + (sig(t[2]) - y[2]) ** 2
                                     + (t[3] - math.log(y[3] * cell / anchors[a][1])) ** 2 + (t[4] - math.log(y[4] * cell / anchors[a][0])) ** 2)
                        J_i += -math.log(sig(t[0]))
                        z = t[5:]
                        J_i += -(z[int(np.argmax(y[5:]))] - math.log(sum(math.exp(v) for v in z)))
                    else:
                        J_i += -ln * math.log(1 - sig(t[0]))
        total += J_i * (1 if w is None else w[i])
    return total / m


@pytest.mark.parametrize("S,B,K,lc,ln", [(4, 2, 3, 5.0, 0.5), (2, 1, 2, 1.0, 1.0), (8, 3, 4, 5.0, 0.1)])
def test_yolo_loss_against_a_loop_and_gradcheck(S, B, K, lc, ln):
    rng = np.random.default_rng(10 * S + B)
    boxes, labels = _scene_set(rng, 3, K)
    boxes[0] = _random_boxes(rng, 3)  # at least one object
    labels[0] = rng.integers(0, K, 3)
    anchors = rng.uniform(5, 25, (B, 2))
    Y = to_numpy(encode_targets(boxes, labels, S, anchors, K, 64)).astype(np.float64)
    loss = YoloLoss(anchors, 64 / S, lambda_coord=lc, lambda_noobj=ln)
    seed(S + B + K)
    Z = randn(3, S, S, B * (5 + K), dtype=np.float64)
    for w in (None, np.array([0.5, 2.0, 1.0])):
        J = float(loss(Z, Y, w))
        assert math.isclose(J, _loss_loop(to_numpy(Z), Y, anchors, 64 / S, lc, ln, w), rel_tol=1e-10)
        d = grad_check(lambda: loss(Z, Y, w), Z, loss.backward())
        assert d["all"] < TOL, d


def test_yolo_loss_is_stable_for_large_logits_and_accepts_flat_targets():
    anchors = [[16., 16.]]
    Y = to_numpy(encode_targets([np.array([[0, 0, 16, 16.]])], [np.array([1])], 4, anchors, 2, 64)).astype(np.float64)
    loss = YoloLoss(anchors, 16)
    Z = np.full((1, 4, 4, 7), -800.0)
    J = float(loss(Z, Y))
    assert np.isfinite(J) and np.all(np.isfinite(loss.backward()))
    assert math.isclose(float(loss(Z, Y.reshape(1, 4, 4, 7))), J)
    assert isinstance(loss.cache, YoloCache)


def test_yolo_loss_trains_a_model():
    rng = np.random.default_rng(4)
    seed(4)
    X = rng.uniform(0, 1, (16, 16, 16, 1)).astype(np.float32)
    boxes = [_random_boxes(rng, int(rng.integers(0, 3)), size=16, lo=2, hi=8) for _ in range(16)]
    labels = [rng.integers(0, 2, len(b)) for b in boxes]
    anchors = [[4., 4.], [6., 3.]]
    model = yolo_model(4, 2, 2, image_size=16, filters=(4, 8, 8))
    Y = encode_targets(boxes, labels, 4, anchors, 2, 16)
    h = model.fit(X, Y, epochs=15, batch_size=8, optimizer=Adam(learning_rate=0.01), loss=YoloLoss(anchors, 4), verbose=0)
    assert h.history["loss"][-1] < 0.8 * h.history["loss"][0]


# ---------------------------------------------------------------- decoding and detection

def _perfect(Y, anchors, cell):
    logit = lambda p: np.log(p) - np.log1p(-p)
    obj = Y[..., :1]
    log_a = np.log(np.asarray(anchors, dtype=np.float64)[:, ::-1] / cell)
    T = np.concatenate([40 * obj - 20, logit(np.clip(Y[..., 1:3], 1e-9, 1 - 1e-9)),
                        obj * (np.log(np.where(obj > 0, Y[..., 3:5], 1)) - log_a), 20 * Y[..., 5:]], axis=-1)
    return T.reshape(*Y.shape[:3], -1)


@pytest.mark.parametrize("S,B", [(4, 1), (8, 3)])
def test_decode_undoes_encode(S, B):
    rng = np.random.default_rng(S * B)
    boxes, labels = _scene_set(rng, 10, 3)
    anchors = rng.uniform(5, 25, (B, 2))
    Y = to_numpy(encode_targets(boxes, labels, S, anchors, 3, 64)).astype(np.float64)
    det = decode_predictions(_perfect(Y, anchors, 64 / S), anchors, 64, score_threshold=0.5)
    assert isinstance(det, Detections)
    ref = _encode_loop(boxes, labels, S, anchors, 3, 64)
    for i in range(10):
        kept = [k for k in ref if k[0] == i]  # the objects the encoding kept
        assert len(det.boxes[i]) == len(kept)
        true = {tuple(np.round(b, 4)): c for b, c in zip(boxes[i], labels[i])}
        for b, c in zip(det.boxes[i], det.labels[i]): assert true[tuple(np.round(b, 4))] == c
        assert np.all(det.scores[i] > 0.99)


def test_decode_hand_case_and_threshold():
    out = np.zeros((1, 2, 2, 7))
    out[0, 1, 0] = [np.log(3), 0, 0, np.log(2), 0, 0, np.log(3)]
    det = decode_predictions(out, [[8, 16]], 32, score_threshold=0.3)
    np.testing.assert_allclose(det.boxes[0], [[4, 8, 12, 32]])
    np.testing.assert_allclose(det.scores[0], [0.5625])
    assert len(decode_predictions(out, [[8, 16]], 32, 0.0).boxes[0]) == 4
    assert len(decode_predictions(out, [[8, 16]], 32, 0.6).boxes[0]) == 0


class _Fixed:
    "A stand-in model whose predict returns fixed outputs."
    def __init__(self, out): self.out = out
    def predict(self, x, batch_size=256): return self.out


def test_detect_applies_nms_per_class():
    anchors = np.array([[16., 16.], [17., 17.]])  # two near-identical anchors: both predict the same box
    Y = to_numpy(encode_targets([np.array([[8, 8, 24, 24.]])], [np.array([1])], 4, anchors[:1], 2, 64)).astype(np.float64)
    Y2 = np.concatenate([Y, Y], axis=3)  # the same object in both anchors
    out = _perfect(Y2, anchors, 16)
    images = np.zeros((1, 64, 64, 1))
    raw = detect(_Fixed(out), images, anchors, score_threshold=0.5, iou_threshold=None)
    kept = detect(_Fixed(out), images, anchors, score_threshold=0.5, iou_threshold=0.5)
    assert len(raw.boxes[0]) == 2 and len(kept.boxes[0]) == 1
    out_other = out.copy(); out_other[0, 1, 1, 7 + 5:7 + 7] = [20, 0]  # the second anchor says class 0: NMS keeps both
    assert len(detect(_Fixed(out_other), images, anchors, score_threshold=0.5).boxes[0]) == 2


def test_saved_detector_loads():
    path = ROOT / "weights" / "yolo_digits.npz"
    assert path.stat().st_size < 1_000_000
    model = load_model(path)
    out = model.predict(np.zeros((2, 64, 64, 1), dtype=np.float32))
    assert out.shape == (2, 8, 8, 27) and np.all(np.isfinite(to_numpy(out)))


def test_train_yolo_and_save_round_trip(tmp_path):
    from dlnotes.vision.scenes import make_scenes
    scenes = make_scenes(40, size=64, split="train", seed=5)
    anchors = kmeans_anchors(box_shapes(scenes.boxes), 2, seed=0)
    model, history = train_yolo(scenes, anchors, 8, epochs=1, batch_size=20, filters=(4, 4, 4, 4), seed=3)
    assert len(history.history["loss"]) == 1
    model.save(tmp_path / "m.npz", include_optimizer=False)
    again = load_model(tmp_path / "m.npz")
    x = scenes.images[:3]
    np.testing.assert_allclose(to_numpy(again.predict(x)), to_numpy(model.predict(x)), rtol=1e-6)


# ---------------------------------------------------------------- bad input

def test_bad_input():
    b, l, A = [np.array([[4., 4., 20., 20.]])], [np.array([1])], np.array([[16., 16.]])
    fails(lambda: encode_targets(b, l, 5, A, 3, 64), contains="grid must be a divisor of image_size=64")
    fails(lambda: encode_targets(b, [np.array([3])], 4, A, 3, 64), contains="labels[0] must be class indices in [0, 3), got [3]")
    fails(lambda: encode_targets(b, [np.array([0.5])], 4, A, 3, 64), contains="labels[0] must be class indices in [0, 3)")
    fails(lambda: encode_targets(b, [np.array([0, 1])], 4, A, 3, 64), contains="labels[0] must be one label per box (1), got 2 labels")
    fails(lambda: encode_targets(b, l, 4, np.ones(2), 3, 64), contains="anchors must be a (B, 2) array of positive (width, height) pairs")
    fails(lambda: encode_targets(b, l, 4, np.zeros((0, 2)), 3, 64), contains="anchors must be a (B, 2) array")
    fails(lambda: encode_targets(b, l, 4, [[16, np.nan]], 3, 64), contains="anchors must be a (B, 2) array")
    fails(lambda: encode_targets([np.array([[4., 4., 4., 20.]])], l, 4, A, 3, 64), contains="boxes[0] must be corners (x1, y1, x2, y2) with x2 > x1")
    fails(lambda: encode_targets(b, l, 4, A, 0, 64), contains="n_classes must be a positive int, got 0")
    fails(lambda: decode_predictions(np.zeros((1, 4, 4, 5)), A, 64), contains="out must have shape (m, S, S, B (5 + K)) with B = 1")
    fails(lambda: decode_predictions(np.zeros((1, 3, 3, 7)), A, 64), contains="decode_predictions: grid must be a divisor of image_size=64")
    fails(lambda: decode_predictions(np.zeros((1, 4, 4, 7)), A, 64, score_threshold=2), contains="score_threshold must be a number in [0, 1], got 2")
    fails(lambda: YoloLoss(A, 16, lambda_noobj=-1), contains="YoloLoss: lambda_noobj must be a non-negative number, got -1")
    fails(lambda: YoloLoss(A, 16)(np.zeros((1, 4, 4, 7)), np.zeros((1, 4, 4, 2, 7))), contains="yolo: y_true has shape (1, 4, 4, 2, 7)")
    fails(lambda: kmeans_anchors(np.ones((3, 3)), 2), contains="kmeans_anchors: wh must be an (N, 2) array")
    fails(lambda: kmeans_anchors(np.ones((3, 2)), 0), contains="kmeans_anchors: k must be an int in [1, 3], got 0")
    fails(lambda: yolo_model(8, 3, 4, 64, filters=(8, 8)), contains="yolo_model: filters must be 4 entries")
    fails(lambda: yolo_model(8, 0, 4, 64), contains="yolo_model: n_anchors must be a positive int, got 0")


def test_the_training_script_saves_a_model_the_notebook_can_load(tmp_path):
    "scripts/train_yolo.py, on a few scenes for one epoch: it writes a file that load_model reads back."
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_yolo", ROOT / "scripts" / "train_yolo.py")
    script = importlib.util.module_from_spec(spec); spec.loader.exec_module(script)
    script.main(["--scenes", "64", "--epochs", "1", "--out", str(tmp_path / "yolo.npz")])
    model = load_model(tmp_path / "yolo.npz")
    assert model.predict(np.zeros((2, 64, 64, 1), dtype=np.float32)).shape == (2, 8, 8, 27)
