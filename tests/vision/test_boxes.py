"""dlnotes.vision.boxes: IoU, non-max suppression and mean average precision.

IoU: the course's 1/7, hand cases, the closed form (s - d)/(s + d) of a shifted square, and hypothesis properties
(symmetric, in [0, 1], 1 for identical boxes, 0 for disjoint or touching ones, invariant under translation and
scaling); iou_matrix equals iou pair by pair. NMS equals a plain loop (stable ties, classes, thresholds) on random
boxes, and never keeps two same-class boxes that overlap by more than the threshold. mAP: hand cases with answers
worked out by hand, and equality with a loop version of the VOC devkit's procedure on random cases whose true boxes
do not overlap (where its matching rule and ours coincide). supervision's box_iou_batch and box_non_max_suppression
agree with ours when that package is installed. Every bad input raises an error that names the argument.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dlnotes.backend import get_rng
from dlnotes.vision.boxes import (AP_METHODS, MAPResult, Matches, average_precision, center_to_corners, corners_to_center,
                                  iou, iou_matrix, match_detections, mean_average_precision, non_max_suppression)


def fails(fn, contains, exc=ValueError):
    "Assert that fn() raises `exc` with `contains` in its message."
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


def random_boxes(n, size=100.0, max_side=30.0, seed=0, integer=False):
    rng = get_rng(seed)
    xy, wh = rng.uniform(0, size - max_side, (n, 2)), rng.uniform(0, max_side, (n, 2))
    b = np.concatenate([xy, xy + wh], axis=1)
    return np.round(b) if integer else b


def plain_iou(a, b):
    "IoU with nothing but Python arithmetic (a reference)."
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = w * h if w > 0 and h > 0 else 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---------------------------------------------------------------- IoU by hand
def test_the_course_check_and_hand_cases():
    assert iou((2, 1, 4, 3), (1, 2, 3, 4)) == 1 / 7
    assert iou((0, 0, 4, 4), (1, 1, 3, 3)) == 4 / 16
    assert iou((0, 0, 10, 10), (3, 0, 13, 10)) == 70 / 130
    assert iou((0, 0, 2, 1), (1, 0, 3, 1)) == 1 / 3  # half of each
    assert iou((0, 0, 1, 1), (1, 0, 2, 1)) == 0 and iou((0, 0, 1, 1), (1, 1, 2, 2)) == 0  # touching
    assert iou((3, 3, 3, 3), (3, 3, 3, 3)) == 0  # zero area, empty union
    assert iou((0, 0, 4, 4), (2, 2, 2, 2)) == 0  # a point inside a box
    assert isinstance(iou((0, 0, 1, 1), (0, 0, 1, 1)), float)


def test_shifted_square_closed_form():
    s = 30.0
    d = np.linspace(0, 40, 81)
    curve = iou_matrix(np.array([[0, 0, s, s]]), np.stack([d, 0 * d, d + s, 0 * d + s], 1))[0]
    np.testing.assert_allclose(curve, np.clip((s - d) / (s + d), 0, None), rtol=0, atol=1e-12)
    # both axes: (s-d)^2 / (2 s^2 - (s-d)^2)
    q = s - d[d < s]
    diag = iou_matrix(np.array([[0, 0, s, s]]), np.stack([s - q, s - q, 2 * s - q, 2 * s - q], 1))[0]
    np.testing.assert_allclose(diag, q**2 / (2 * s**2 - q**2), rtol=0, atol=1e-12)


def test_iou_matrix_equals_iou_pair_by_pair():
    a, b = random_boxes(50, seed=1), random_boxes(37, seed=2, integer=True)
    M = iou_matrix(a, b)
    assert M.shape == (50, 37)
    np.testing.assert_allclose(M, [[plain_iou(x, y) for y in b] for x in a], rtol=0, atol=1e-12)
    np.testing.assert_allclose(M, [[iou(x, y) for y in b] for x in a], rtol=0, atol=1e-12)
    assert iou_matrix(a, np.zeros((0, 4))).shape == (50, 0) and iou_matrix(np.zeros((0, 4)), b).shape == (0, 37)
    assert iou_matrix([[0, 0, 1, 1]], [[0, 0, 1, 1]]).tolist() == [[1.0]]  # lists and ints
    assert iou_matrix(a.astype(np.float32), b.astype(np.float32)).dtype == np.float32


def test_converters_round_trip_and_by_hand():
    assert corners_to_center(np.array([2, 1, 4, 3])).tolist() == [3, 2, 2, 2]
    assert corners_to_center(np.array([[0, 0, 10, 4]])).tolist() == [[5, 2, 4, 10]]  # (b_x, b_y, b_h, b_w)
    assert center_to_corners(np.array([[5, 2, 4, 10]])).tolist() == [[0, 0, 10, 4]]
    b = random_boxes(60, seed=3).reshape(3, 4, 5, 4)
    np.testing.assert_allclose(center_to_corners(corners_to_center(b)), b, rtol=0, atol=1e-12)
    c = corners_to_center(b)
    np.testing.assert_allclose(c[..., 2], b[..., 3] - b[..., 1]); np.testing.assert_allclose(c[..., 3], b[..., 2] - b[..., 0])


# ---------------------------------------------------------------- IoU properties (hypothesis)
coord = st.floats(-1e3, 1e3, allow_nan=False, width=64)
side = st.floats(1e-2, 1e3, allow_nan=False, width=64)

@st.composite
def boxes(draw):
    x, y, w, h = draw(coord), draw(coord), draw(side), draw(side)
    return (x, y, x + w, y + h)


@settings(max_examples=300, deadline=None)
@given(boxes(), boxes())
def test_iou_is_symmetric_and_in_unit_interval(a, b):
    v = iou(a, b)
    assert v == iou(b, a)
    assert 0.0 <= v <= 1.0
    M = iou_matrix(np.array([a, b]), np.array([b, a]))
    assert M[0, 0] == M[1, 1] and math.isclose(M[0, 0], v, rel_tol=1e-12, abs_tol=1e-15)
    assert M[0, 1] == 1.0 and M[1, 0] == 1.0


@settings(max_examples=200, deadline=None)
@given(boxes())
def test_iou_of_a_box_with_itself_is_one(a):
    assert iou(a, a) == 1.0


@settings(max_examples=300, deadline=None)
@given(boxes(), side, side, st.sampled_from(["right", "left", "below", "above"]))
def test_disjoint_or_touching_boxes_have_iou_zero(a, w, h, where):
    x1, y1, x2, y2 = a
    gap = 0.0 if w < 1 else w  # touching when the side is small, disjoint otherwise
    b = {"right": (x2 + gap, y1, x2 + gap + w, y1 + h), "left": (x1 - gap - w, y1, x1 - gap, y1 + h),
         "below": (x1, y2 + gap, x1 + w, y2 + gap + h), "above": (x1, y1 - gap - h, x1 + w, y1 - gap)}[where]
    assert iou(a, b) == 0.0 and iou_matrix(np.array([a]), np.array([b]))[0, 0] == 0.0


@settings(max_examples=200, deadline=None)
@given(boxes(), boxes(), st.integers(-50, 50), st.integers(-50, 50), st.sampled_from([0.25, 0.5, 2.0, 4.0]))
def test_iou_ignores_translation_and_scaling(a, b, dx, dy, k):
    move = lambda r: (k * r[0] + dx, k * r[1] + dy, k * r[2] + dx, k * r[3] + dy)
    assert math.isclose(iou(move(a), move(b)), iou(a, b), rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=200, deadline=None)
@given(boxes(), boxes())
def test_iou_of_nested_boxes_is_ratio_of_areas(a, b):
    inner = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    if inner[2] <= inner[0] or inner[3] <= inner[1]: return
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
    assert math.isclose(iou(a, inner), area(inner) / area(a), rel_tol=1e-9, abs_tol=1e-12)


# ---------------------------------------------------------------- NMS
def nms_loop(boxes, scores, iou_threshold=0.5, max_boxes=10, score_threshold=0.0, classes=None):
    "Greedy NMS, one pair at a time: each candidate in score order (stable) is kept unless a kept box overlaps it."
    order = sorted((i for i in range(len(boxes)) if scores[i] >= score_threshold), key=lambda i: -scores[i])
    keep = []
    for i in order:
        if len(keep) == max_boxes: break
        if all(plain_iou(boxes[i], boxes[k]) <= iou_threshold or (classes is not None and classes[i] != classes[k]) for k in keep):
            keep.append(i)
    return keep


def test_nms_by_hand():
    row = np.array([(0, 0, 10, 10), (3, 0, 13, 10), (6, 0, 16, 10)])
    s = np.array([0.9, 0.8, 0.7])
    assert non_max_suppression(row, s).tolist() == [0, 2]  # B suppressed by A; C only overlapped B
    assert non_max_suppression(row, s, iou_threshold=70 / 130).tolist() == [0, 1, 2]  # > threshold, not >=
    assert non_max_suppression(row, s, iou_threshold=0.2).tolist() == [0]
    assert non_max_suppression(row, s, classes=[0, 1, 0]).tolist() == [0, 1, 2]
    assert non_max_suppression(row, s, classes=[0, 0, 1], iou_threshold=0.2).tolist() == [0, 2]
    assert non_max_suppression(row, s, max_boxes=2, iou_threshold=0.9).tolist() == [0, 1]
    assert non_max_suppression(row, s, score_threshold=0.8).tolist() == [0]  # >= score_threshold stays
    assert non_max_suppression(row, s[::-1].copy()).tolist() == [2, 0]
    assert non_max_suppression(row, [0.5, 0.5, 0.5]).tolist() == [0, 2]
    assert non_max_suppression(row, [0.5, 0.6, 0.6]).tolist() == [1]  # tie between B and C: B first, it removes A and C
    assert non_max_suppression(np.zeros((0, 4)), []).tolist() == []
    assert non_max_suppression(row, s).dtype == np.int64


@pytest.mark.parametrize("trial", range(40))
def test_nms_equals_a_plain_loop(trial):
    rng = get_rng(1000 + trial)
    n = int(rng.integers(1, 200))
    b = random_boxes(n, seed=trial, integer=trial % 2 == 0)
    s = rng.integers(0, 15, n) / 15 if trial % 4 else rng.random(n)  # many ties in three of four trials
    cl = rng.integers(0, 4, n) if trial % 3 else None
    thr = float(rng.choice([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]))
    mb, st_ = int(rng.integers(1, 250)), float(rng.choice([0.0, 0.3]))
    got = non_max_suppression(b, s, thr, mb, st_, cl).tolist()
    assert got == nms_loop(b, s, thr, mb, st_, cl)
    # what NMS promises: decreasing scores, no two kept same-class boxes overlapping by more than thr
    assert all(s[i] >= s[j] for i, j in zip(got, got[1:]))
    M = iou_matrix(b[got], b[got]); np.fill_diagonal(M, 0)
    if cl is not None: M[cl[got][:, None] != cl[got][None, :]] = 0
    assert (M <= thr).all()


def test_nms_threshold_one_keeps_all_and_zero_keeps_disjoint():
    b = random_boxes(100, seed=9)
    assert len(non_max_suppression(b, np.arange(100.0), 1.0, max_boxes=100)) == 100
    kept = non_max_suppression(b, np.arange(100.0), 0.0, max_boxes=100)
    M = iou_matrix(b[kept], b[kept]); np.fill_diagonal(M, 0)
    assert (M == 0).all()


# ---------------------------------------------------------------- AP and mAP by hand
def test_average_precision_by_hand():
    assert math.isclose(average_precision([1, 1 / 2, 2 / 3], [1 / 2, 1 / 2, 1]), 5 / 6, abs_tol=1e-12)
    assert math.isclose(average_precision([1, 1 / 2, 2 / 3], [1 / 2, 1 / 2, 1], "11_point"), 28 / 33, abs_tol=1e-12)
    assert math.isclose(average_precision([0, 1 / 2], [0, 1]), 1 / 2, abs_tol=1e-12)
    assert average_precision([1, 1 / 2], [1, 1]) == 1.0
    # recall 0.3 exactly at a sample point: 11-point uses recalls 0, 0.1, ..., 1 computed as k/10
    assert math.isclose(average_precision([1, 1, 1], [0.1, 0.2, 0.3], "11_point"), 4 / 11, abs_tol=1e-12)
    assert math.isclose(average_precision([1, 1, 1], [0.1, 0.2, 0.3]), 0.3, abs_tol=1e-12)
    # precision 1/2, 1/3 after two FPs... : F T F T over 2 objects -> p 0, 1/2, 1/3, 1/2; r 0, 1/2, 1/2, 1
    # envelope 1/2 everywhere -> AP 1/2; 11-point: 1/2 at all eleven -> 1/2
    assert math.isclose(average_precision([0, 1 / 2, 1 / 3, 1 / 2], [0, 1 / 2, 1 / 2, 1]), 1 / 2, abs_tol=1e-12)
    assert math.isclose(average_precision([0, 1 / 2, 1 / 3, 1 / 2], [0, 1 / 2, 1 / 2, 1], "11_point"), 1 / 2, abs_tol=1e-12)
    assert average_precision([], []) == 0.0 and average_precision([], [], "11_point") == 0.0
    assert AP_METHODS == ("all_points", "11_point")


P_, Q_, R_ = [0, 0, 10, 10], [20, 0, 30, 10], [0, 20, 10, 30]
TRUTH = [np.array([P_, Q_, R_], float)], [np.array([0, 0, 1])]

def one_image(boxes, scores, labels, **kw):
    return mean_average_precision([np.array(boxes, float).reshape(-1, 4)], [np.array(scores, float)], [np.array(labels)],
                                  *TRUTH, n_classes=2, **kw)


def test_map_hand_cases():
    r = one_image([P_, Q_, R_], [0.9, 0.8, 0.7], [0, 0, 1])
    assert isinstance(r, MAPResult) and r.map == 1.0 and r.ap.tolist() == [1.0, 1.0]
    r = one_image([[50, 50, 60, 60], P_, Q_, R_], [0.95, 0.9, 0.8, 0.7], [0, 0, 0, 1])  # FP first
    np.testing.assert_allclose(r.ap, [2 / 3, 1]); assert math.isclose(r.map, 5 / 6)
    r = one_image([P_, [1, 0, 11, 10], Q_, R_], [0.9, 0.85, 0.8, 0.7], [0, 0, 0, 1])  # duplicate in the middle
    np.testing.assert_allclose(r.ap, [5 / 6, 1]); np.testing.assert_allclose(r.precision[0], [1, 1 / 2, 2 / 3])
    r = one_image([P_, R_], [0.9, 0.7], [0, 1])  # Q missed
    np.testing.assert_allclose(r.ap, [1 / 2, 1]); np.testing.assert_allclose(r.recall[0], [1 / 2])
    r = one_image([[0, 0, 10, 4], Q_, R_], [0.9, 0.8, 0.7], [0, 0, 1])  # IoU 0.4 with P: a FP, and P is missed
    assert math.isclose(iou([0, 0, 10, 4], P_), 0.4)
    np.testing.assert_allclose(r.ap, [1 / 4, 1])  # F T over two objects: p 0, 1/2, r 0, 1/2 -> 1/2 * 1/2
    r = one_image([[0, 0, 10, 4], Q_, R_], [0.9, 0.8, 0.7], [0, 0, 1], iou_threshold=0.4)  # at IoU >= 0.4 it counts
    np.testing.assert_allclose(r.ap, [1, 1])
    r = one_image([], [], [])  # nothing predicted
    assert r.map == 0.0 and [len(p) for p in r.precision] == [0, 0]
    r = one_image([P_, Q_, R_], [0.9, 0.8, 0.7], [0, 0, 0])
    np.testing.assert_allclose(r.ap, [1, 0])


def test_map_ranks_all_images_together_and_skips_classes_without_truth():
    r = mean_average_precision([np.array([P_], float), np.array([[50, 50, 60, 60]], float)], [np.array([0.6]), np.array([0.9])],
                               [np.array([0]), np.array([0])], [np.array([P_], float), np.zeros((0, 4))], [np.array([0]), np.zeros(0, int)], 3)
    assert math.isclose(r.map, 1 / 2) and np.isnan(r.ap[1:]).all()
    r = mean_average_precision([np.zeros((0, 4))], [np.zeros(0)], [np.zeros(0, int)], [np.zeros((0, 4))], [np.zeros(0, int)], 2)
    assert math.isnan(r.map)


def test_match_claims_the_best_unclaimed_box():
    U, V, p2 = [0, 0, 10, 10], [4, 0, 14, 10], [1, 0, 11, 10]
    m = match_detections([np.array([U, p2], float)], [np.array([0.9, 0.8])], [np.array([U, V], float)])
    assert isinstance(m, Matches) and m.tp.tolist() == [True, True] and m.n_true == 2 and m.scores.tolist() == [0.9, 0.8]
    # the second prediction's best box (U) is claimed and V is below 0.5: a FP
    m = match_detections([np.array([U, [0, 0, 9, 10]], float)], [np.array([0.9, 0.8])], [np.array([U, [5, 0, 15, 10]], float)])
    assert m.tp.tolist() == [True, False]


def voc_devkit_loop(pred_boxes, pred_scores, pred_labels, true_boxes, true_labels, n_classes, thr=0.5):
    "The VOC devkit's procedure, as loops: per class, rank, match to the best-overlapping true box, all-point AP."
    aps = []
    for c in range(n_classes):
        dets = [(s, i, b) for i in range(len(pred_boxes)) for b, s, l in zip(pred_boxes[i], pred_scores[i], pred_labels[i]) if l == c]
        dets = [dets[k] for k in sorted(range(len(dets)), key=lambda k: -dets[k][0])]
        gts = {i: [b for b, l in zip(true_boxes[i], true_labels[i]) if l == c] for i in range(len(true_boxes))}
        npos = sum(len(g) for g in gts.values())
        if npos == 0: continue
        used = {i: [False] * len(g) for i, g in gts.items()}
        tp, fp = [], []
        for s, i, b in dets:
            ov = [plain_iou(b, g) for g in gts[i]]
            j = max(range(len(ov)), key=lambda k: ov[k]) if ov else None
            hit = j is not None and ov[j] >= thr and not used[i][j]
            if hit: used[i][j] = True
            tp.append(1 if hit else 0); fp.append(0 if hit else 1)
        ctp, cfp = np.cumsum(tp), np.cumsum(fp)
        rec = list(ctp / npos) if dets else []
        prec = list(ctp / (ctp + cfp)) if dets else []
        mrec, mpre = [0.0] + rec + [1.0], [0.0] + prec + [0.0]
        for k in range(len(mpre) - 2, -1, -1): mpre[k] = max(mpre[k], mpre[k + 1])
        aps.append(sum((mrec[k] - mrec[k - 1]) * mpre[k] for k in range(1, len(mrec)) if mrec[k] != mrec[k - 1]))
    return float(np.mean(aps)) if aps else float("nan")


@pytest.mark.parametrize("trial", range(15))
def test_map_equals_the_voc_devkit_loop_when_true_boxes_do_not_overlap(trial):
    rng = get_rng(2000 + trial)
    P, S, L, T, TL = [], [], [], [], []
    for _ in range(int(rng.integers(1, 12))):
        k = int(rng.integers(0, 4))
        t = np.array([[25 * j, 0, 25 * j + float(rng.uniform(8, 20)), float(rng.uniform(8, 20))] for j in range(k)]).reshape(-1, 4)
        tl = rng.integers(0, 3, k)
        p = [b + rng.normal(0, 2, 4) for b in t for _ in range(int(rng.integers(0, 4)))] + [list(random_boxes(1, seed=trial * 50 + k)[0])]
        p = np.array(p, float); p[:, 2:] = np.maximum(p[:, 2:], p[:, :2])
        P.append(p); S.append(np.round(rng.random(len(p)), 2)); L.append(rng.integers(0, 3, len(p))); T.append(t); TL.append(tl)
    r = mean_average_precision(P, S, L, T, TL, 3)
    want = voc_devkit_loop(P, S, L, T, TL, 3)
    assert (math.isnan(r.map) and math.isnan(want)) or math.isclose(r.map, want, abs_tol=1e-12)


# ---------------------------------------------------------------- supervision, when installed
def test_agrees_with_supervision():
    sv = pytest.importorskip("supervision.detection.utils.iou_and_nms")
    a, b = random_boxes(300, seed=11), random_boxes(200, seed=12)
    np.testing.assert_allclose(sv.box_iou_batch(a, b), iou_matrix(a, b), rtol=0, atol=1e-6)  # theirs is float32
    rng = get_rng(13)
    for thr in (0.3, 0.5, 0.7):
        boxes, scores, cl = random_boxes(500, seed=int(thr * 10)), rng.permutation(500) / 500, rng.integers(0, 3, 500)  # distinct scores
        mask = sv.box_non_max_suppression(np.c_[boxes, scores], iou_threshold=thr)
        assert sorted(non_max_suppression(boxes, scores, thr, max_boxes=500).tolist()) == np.flatnonzero(mask).tolist()
        mask = sv.box_non_max_suppression(np.c_[boxes, scores, cl], iou_threshold=thr)
        assert sorted(non_max_suppression(boxes, scores, thr, max_boxes=500, classes=cl).tolist()) == np.flatnonzero(mask).tolist()


# ---------------------------------------------------------------- bad input
def test_bad_boxes():
    fails(lambda: iou((4, 1, 2, 3), (1, 2, 3, 4)), "box1 must be a box (x1, y1, x2, y2) of finite numbers with x2 >= x1 and y2 >= y1, got (4.0, 1.0, 2.0, 3.0)")
    fails(lambda: iou((0, 0, 1, 1), (0, 2, 1, 1)), "box2 must be a box (x1, y1, x2, y2)")
    fails(lambda: iou((0, 0, 1), (0, 0, 1, 1)), "box1 must be 4 numbers (x1, y1, x2, y2), got shape (3,)")
    fails(lambda: iou([[0, 0, 1, 1]], (0, 0, 1, 1)), "box1 must be 4 numbers (x1, y1, x2, y2), got shape (1, 4)")
    fails(lambda: iou((0, 0, np.inf, 1), (0, 0, 1, 1)), "box1 must be a box (x1, y1, x2, y2) of finite numbers")
    fails(lambda: iou(("a", 0, 1, 1), (0, 0, 1, 1)), "box1 must be an array of numbers, got dtype <U", TypeError)
    fails(lambda: iou_matrix(np.zeros((3, 5)), np.zeros((1, 4))), "boxes1 must be an (N, 4) array of boxes (x1, y1, x2, y2), got shape (3, 5)")
    fails(lambda: iou_matrix(np.zeros((1, 4)), np.zeros((2, 2, 4))), "boxes2 must be an (N, 4) array of boxes (x1, y1, x2, y2), got shape (2, 2, 4)")
    fails(lambda: iou_matrix([[0, 0, 1, 1], [2, 0, 1, 1]], np.zeros((1, 4))), "boxes1[1] must be a box (x1, y1, x2, y2) of finite numbers with x2 >= x1 and y2 >= y1, got (2.0, 0.0, 1.0, 1.0)")
    fails(lambda: iou_matrix(np.zeros((1, 4)), [[0, 0, 1, np.nan]]), "boxes2[0] must be a box (x1, y1, x2, y2) of finite numbers")
    fails(lambda: corners_to_center(np.zeros(3)), "boxes must be an array (..., 4) of boxes (x1, y1, x2, y2), got shape (3,)")
    fails(lambda: corners_to_center(np.array([[[0, 0, 1, 1], [0, 0, -1, 1]]])), "boxes (box 1 of the flattened array) must be a box (x1, y1, x2, y2)")
    fails(lambda: center_to_corners([[5, 5, 2, -2]]), "boxes[0] must be a box (b_x, b_y, b_h, b_w) of finite numbers with b_h >= 0 and b_w >= 0, got (5.0, 5.0, 2.0, -2.0)")


def test_bad_nms_arguments():
    b, s = random_boxes(3), np.array([0.9, 0.8, 0.7])
    fails(lambda: non_max_suppression(b[:, :3], s), "boxes must be an (N, 4) array of boxes (x1, y1, x2, y2), got shape (3, 3)")
    fails(lambda: non_max_suppression(b, s[:2]), "scores must be a vector of one score per box (3 values), got shape (2,)")
    fails(lambda: non_max_suppression(b, s[:, None]), "scores must be a vector of one score per box (3 values), got shape (3, 1)")
    fails(lambda: non_max_suppression(b, [0.1, np.nan, 0.2]), "scores must be finite numbers, got [0.1, nan, 0.2]")
    for v in (1.5, -0.1, float("nan"), "0.5"):
        fails(lambda: non_max_suppression(b, s, iou_threshold=v), f"iou_threshold must be a number in [0, 1], got {v!r}")
    fails(lambda: non_max_suppression(b, s, max_boxes=0), "max_boxes must be a positive int, got 0")
    fails(lambda: non_max_suppression(b, s, max_boxes=2.5), "max_boxes must be a positive int, got 2.5")
    fails(lambda: non_max_suppression(b, s, score_threshold=np.inf), "score_threshold must be a finite number, got inf")
    fails(lambda: non_max_suppression(b, s, classes=[0, 1]), "classes must be a vector of one class index per box (3 values), got shape (2,)")
    fails(lambda: non_max_suppression(b, s, classes=[0, -1, 1]), "classes must be class indices in [0, ∞), got [0, -1, 1]")
    fails(lambda: non_max_suppression(b, s, classes=[0, 0.5, 1]), "classes must be class indices in [0, ∞), got [0.0, 0.5, 1.0]")


def test_bad_map_arguments():
    fails(lambda: one_image([P_], [0.9], [2]), "pred_labels[0] must be class indices in [0, 2), got [2]")
    fails(lambda: one_image([P_], [0.9], [-1]), "pred_labels[0] must be class indices in [0, 2), got [-1]")
    fails(lambda: one_image([P_], [0.9, 0.1], [0]), "pred_scores[0] must be a vector of one score per box (1 values), got shape (2,)")
    fails(lambda: one_image([P_], [0.9], [0, 1]), "pred_labels[0] must be a vector of one class index per box (1 values), got shape (2,)")
    fails(lambda: one_image([[5, 0, 1, 1]], [0.9], [0]), "pred_boxes[0][0] must be a box (x1, y1, x2, y2)")
    fails(lambda: one_image([P_], [0.9], [0], iou_threshold=1.01), "iou_threshold must be a number in [0, 1], got 1.01")
    fails(lambda: one_image([P_], [0.9], [0], method="coco"), "method must be one of 'all_points', '11_point', got 'coco'")
    fails(lambda: mean_average_precision([np.zeros((0, 4))] * 2, [np.zeros(0)] * 2, [np.zeros(0)] * 2, *TRUTH, 2),
          "pred_boxes, pred_scores, pred_labels, true_boxes and true_labels must be lists with one entry per image, got 2, 2, 2, 1, 1")
    fails(lambda: mean_average_precision(np.zeros((1, 0, 4)), [np.zeros(0)], [np.zeros(0)], *TRUTH, 2), "got ndarray, 1, 1, 1, 1")
    fails(lambda: mean_average_precision(*TRUTH[:1], [np.ones(3)], [np.zeros(3, int)], TRUTH[0], [np.array([0, 0, 2])], 2),
          "true_labels[0] must be class indices in [0, 2), got [0, 0, 2]")
    fails(lambda: mean_average_precision(TRUTH[0], [np.ones(3)], [np.zeros(3, int)], *TRUTH, 0), "n_classes must be a positive int, got 0")
    fails(lambda: average_precision([1, 0.5], [1, 0.5]), "recall must be non-decreasing (predictions ranked by score), got [1.0, 0.5]")
    fails(lambda: average_precision([1, -0.5], [0.5, 1]), "precision must be numbers in [0, 1], got [1.0, -0.5]")
    fails(lambda: average_precision([[1]], [[1]]), "precision and recall must be 1-D arrays of the same length, got shapes (1, 1) and (1, 1)")
    fails(lambda: average_precision([1], [1], method="voc"), "method must be one of 'all_points', '11_point', got 'voc'")
    fails(lambda: match_detections([np.zeros((0, 4))], [np.zeros(0)], []), "pred_boxes, pred_scores and true_boxes must be lists with one entry per image, got 1, 1, 0")
