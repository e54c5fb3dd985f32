"""dlnotes.vision.scenes: the detection scenes made of real digits.

The three splits partition the 1,797 source images, stratified; each scene draws only from its split's images; the
same seed gives the same scenes; bilinear resizing equals scikit-image's; every box is the tight box of what the digit
paints (checked on the pixels of flat, noise-free scenes and of single-digit patches against a loop); no two boxes of a
scene overlap beyond max_iou (a loop IoU); draw_boxes draws one rectangle and one label per box; bad arguments raise
ValueErrors that name them.
"""
import itertools

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from skimage.transform import resize

from dlnotes.data import load_digit_images
from dlnotes.vision.scenes import (SPLITS, Scenes, bilinear_matrix, resize_bilinear, ink_box, box_fits, source_indices,
                                   make_scenes, draw_boxes, load_coins, _digit_splits, _draw_scene)


def fails(fn, contains, exc=ValueError):
    "Assert that fn() raises `exc` with `contains` in its message."
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


def iou_loop(a, b):
    "IoU of two corner boxes, pixel by pixel on an integer grid (boxes here have integer corners)."
    x1, y1 = int(min(a[0], b[0])), int(min(a[1], b[1]))
    x2, y2 = int(max(a[2], b[2])), int(max(a[3], b[3]))
    inter = union = 0
    for r in range(y1, y2):
        for c in range(x1, x2):
            in_a = a[0] <= c < a[2] and a[1] <= r < a[3]
            in_b = b[0] <= c < b[2] and b[1] <= r < b[3]
            inter += in_a and in_b
            union += in_a or in_b
    return inter / union


# ---------------------------------------------------------------- splits

def test_splits_partition_the_source_images():
    parts = {s: source_indices(s) for s in SPLITS}
    _, y = load_digit_images()
    assert sum(map(len, parts.values())) == len(y) == 1797
    np.testing.assert_array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(len(y)))
    for a, b in itertools.combinations(SPLITS, 2):
        assert len(np.intersect1d(parts[a], parts[b])) == 0, (a, b)
    assert [len(parts[s]) for s in SPLITS] == [1078, 359, 360]
    for d in range(10):  # stratified: every digit is split about 60/20/20
        n = (y == d).sum()
        for s, frac in zip(SPLITS, (0.6, 0.2, 0.2)):
            assert abs((y[parts[s]] == d).sum() - frac * n) <= 2, (d, s)


def test_source_indices_is_a_copy_and_fixed():
    a = source_indices("dev"); a[:] = 0
    assert source_indices("dev")[1] != 0
    np.testing.assert_array_equal(source_indices("test"), _digit_splits()[2]["test"])


def test_scenes_draw_only_from_their_split():
    images, y, parts = _digit_splits()
    rng = np.random.default_rng(0)
    for split in SPLITS:
        pools = [parts[split][y[parts[split]] == c] for c in (0, 1, 2, 3)]
        for _ in range(30):
            _, boxes, labels, sources = _draw_scene(rng, images, pools, 64, 4, (12, 28), (0.7, 1.3), 0.3, "brick", 0.03)
            assert set(sources) <= set(parts[split])
            np.testing.assert_array_equal(y[sources], np.array((0, 1, 2, 3))[labels])


def test_make_scenes_is_draw_scene_on_the_split():
    "make_scenes draws k, then calls _draw_scene with the split's pools: the same generator state gives the same scene."
    images, y, parts = _digit_splits()
    for split, classes in [("test", (0, 1, 2, 3)), ("dev", (7, 4))]:
        rng = np.random.default_rng(5)
        k = int(rng.integers(1, 5))
        pools = [parts[split][y[parts[split]] == c] for c in classes]
        img, boxes, labels, sources = _draw_scene(rng, images, pools, 64, k, (12, 28), (0.7, 1.3), 0.3, "brick", 0.03)
        s = make_scenes(1, split=split, classes=classes, seed=5)
        np.testing.assert_array_equal(s.images[0, :, :, 0], img.astype(np.float32))
        np.testing.assert_array_equal(s.boxes[0], boxes); np.testing.assert_array_equal(s.labels[0], labels)
        assert set(sources) <= set(parts[split])


def test_split_changes_the_digits_not_only_the_seed():
    a, b = make_scenes(20, split="train", seed=4), make_scenes(20, split="dev", seed=4)
    assert np.abs(a.images - b.images).max() > 0.1


# ---------------------------------------------------------------- reproducibility

def test_same_seed_same_scenes():
    a, b = make_scenes(40, seed=7), make_scenes(40, seed=7)
    np.testing.assert_array_equal(a.images, b.images)
    for ba, bb, la, lb in zip(a.boxes, b.boxes, a.labels, b.labels):
        np.testing.assert_array_equal(ba, bb); np.testing.assert_array_equal(la, lb)
    c = make_scenes(40, seed=8)
    assert not all(len(x) == len(z) and np.array_equal(x, z) for x, z in zip(a.boxes, c.boxes))


def test_generator_seed_continues():
    "A numpy Generator as seed is used in place: two calls draw two different sets."
    rng = np.random.default_rng(3)
    a, b = make_scenes(5, seed=rng), make_scenes(5, seed=rng)
    assert np.abs(a.images - b.images).max() > 0.1


# ---------------------------------------------------------------- resize and boxes

@pytest.mark.parametrize("shape", [(8, 8, 12, 28), (8, 8, 28, 9), (8, 8, 8, 8), (3, 5, 17, 2), (6, 6, 3, 4), (1, 4, 5, 4)])
def test_resize_matches_skimage(shape):
    D = np.random.default_rng(sum(shape)).random(shape[:2])
    want = resize(D, shape[2:], order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(resize_bilinear(D, *shape[2:]), want, atol=1e-12)


def test_bilinear_matrix_properties():
    for n_in, n_out in [(8, 12), (8, 28), (5, 3), (1, 6)]:
        R = bilinear_matrix(n_in, n_out)
        assert R.shape == (n_out, n_in) and (R >= 0).all()
        np.testing.assert_allclose(R.sum(axis=1), 1)
        np.testing.assert_allclose(R @ np.ones(n_in), np.ones(n_out))  # constants stay constant
    np.testing.assert_allclose(bilinear_matrix(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])


def test_ink_box_against_loops():
    rng = np.random.default_rng(0)
    for _ in range(200):
        P = (rng.random((rng.integers(1, 12), rng.integers(1, 12))) < 0.1) * rng.random()
        if not P.any(): continue
        cells = [(r, c) for r in range(P.shape[0]) for c in range(P.shape[1]) if P[r, c] != 0]
        want = [min(c for _, c in cells), min(r for r, _ in cells), max(c for _, c in cells) + 1, max(r for r, _ in cells) + 1]
        assert ink_box(P).tolist() == want


def test_box_fits_against_loop_iou():
    rng = np.random.default_rng(1)
    for _ in range(200):
        boxes = []
        for _ in range(rng.integers(0, 4)):
            x1, y1 = rng.integers(0, 8, 2); boxes.append([x1, y1, x1 + rng.integers(1, 6), y1 + rng.integers(1, 6)])
        x1, y1 = rng.integers(0, 8, 2)
        box = [x1, y1, x1 + rng.integers(1, 6), y1 + rng.integers(1, 6)]
        t = float(rng.choice([0.0, 0.1, 0.3, 0.5]))
        assert box_fits(box, np.array(boxes).reshape(-1, 4), t) == all(iou_loop(box, b) <= t for b in boxes)


def test_boxes_are_tight_on_flat_scenes():
    s = make_scenes(100, min_objects=1, max_objects=1, background="flat", noise=0.0, seed=2, size=48)
    for img, b in zip(s.images, s.boxes):
        rows, cols = np.nonzero(img[:, :, 0])
        assert b[0].tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


def test_scene_invariants():
    s = make_scenes(300, seed=11, size=56, classes=(3, 5, 8), min_objects=0, max_objects=5, max_iou=0.2, scale=(10, 24))
    assert isinstance(s, Scenes) and s.class_names == ("3", "5", "8")
    assert s.images.shape == (300, 56, 56, 1) and s.images.dtype == np.float32
    assert s.images.min() >= 0 and s.images.max() <= 1
    counts = [len(b) for b in s.boxes]
    assert min(counts) == 0 and max(counts) == 5
    for b, l in zip(s.boxes, s.labels):
        assert b.shape == (len(l), 4) and b.dtype == np.float32 and l.dtype == np.int64
        assert ((l >= 0) & (l < 3)).all()
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all() and (b[:, 2] <= 56).all() and (b[:, 3] <= 56).all()
        assert (b[:, 2] > b[:, 0]).all() and (b[:, 3] > b[:, 1]).all()
        assert (b[:, 3] - b[:, 1] <= 24).all() and (b[:, 2] - b[:, 0] <= 24).all()
        for i, j in itertools.combinations(range(len(b)), 2):
            assert iou_loop(b[i], b[j]) <= 0.2 + 1e-12


def test_one_object_per_image():
    s = make_scenes(50, min_objects=1, max_objects=1, seed=0)
    assert all(len(b) == 1 for b in s.boxes)


# ---------------------------------------------------------------- drawing and the photograph

def test_draw_boxes_draws_each_box_and_label():
    s = make_scenes(2, seed=0)
    fig, ax = plt.subplots()
    out = draw_boxes(ax, s.images[0], s.boxes[0], s.labels[0], scores=np.full(len(s.boxes[0]), 0.5), class_names=s.class_names)
    assert out is ax and len(ax.patches) == len(s.boxes[0]) == len(ax.texts)
    for p, b in zip(ax.patches, s.boxes[0]):
        assert p.get_xy() == (b[0], b[1]) and p.get_width() == b[2] - b[0] and p.get_height() == b[3] - b[1]
    assert ax.texts[0].get_text() == f"{s.class_names[s.labels[0][0]]} 0.50"
    fig2, ax2 = plt.subplots()
    draw_boxes(ax2, s.images[0, :, :, 0], np.zeros((0, 4)))
    assert len(ax2.patches) == 0
    fails(lambda: draw_boxes(ax2, s.images[:2], s.boxes[0]), "image must be an array (H, W) or (H, W, 1), got an array of shape (2, 64, 64, 1)")
    fails(lambda: draw_boxes(ax2, s.images[0], s.boxes[0], scores=[0.1]), f"scores must be of length {len(s.boxes[0])} (one per box), got length 1")
    plt.close("all")


def test_load_coins():
    c = load_coins()
    assert c.shape == (303, 384) and c.dtype == np.float32 and 0 <= c.min() and c.max() <= 1 and c.std() > 0.1


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, message", [
    (dict(size=20), "size must be an int >= 28 (the largest digit, scale[1]), got 20"),
    (dict(size=30, scale=(12, 32)), "size must be an int >= 32 (the largest digit, scale[1]), got 30"),
    (dict(min_objects=3, max_objects=2), "min_objects must be <= max_objects (2), got 3"),
    (dict(min_objects=-1), "min_objects must be a non-negative int, got -1"),
    (dict(max_objects=0), "max_objects must be a positive int, got 0"),
    (dict(classes=(0, 10)), "classes must be a non-empty tuple of distinct digits in 0..9, got (0, 10)"),
    (dict(classes=()), "classes must be a non-empty tuple of distinct digits in 0..9, got ()"),
    (dict(classes=(2, 2)), "classes must be a non-empty tuple of distinct digits in 0..9, got (2, 2)"),
    (dict(classes="0123"), "classes must be a non-empty tuple of distinct digits in 0..9, got '0123'"),
    (dict(split="val"), "split must be one of 'train', 'dev', 'test', got 'val'"),
    (dict(scale=(1, 10)), "scale must be a pair (lo, hi) of ints with 2 <= lo <= hi, got (1, 10)"),
    (dict(scale=(12.5, 20)), "scale must be a pair (lo, hi) of ints with 2 <= lo <= hi, got (12.5, 20)"),
    (dict(aspect=(1.5, 1.0)), "aspect must be a pair (lo, hi) of numbers with 0.1 <= lo <= hi, got (1.5, 1.0)"),
    (dict(aspect=(0.5, float("inf"))), "aspect must be a pair (lo, hi) of numbers with 0.1 <= lo <= hi, got (0.5, inf)"),
    (dict(scale=12), "scale must be a pair (lo, hi) of ints with 2 <= lo <= hi, got 12"),
    (dict(max_iou=-0.1), "max_iou must be a number in [0, 1], got -0.1"),
    (dict(noise=-1), "noise must be a non-negative number, got -1"),
    (dict(background="wood"), "background must be one of 'brick', 'flat', got 'wood'"),
    (dict(seed=-3), "seed must be a non-negative int, got -3"),
])
def test_bad_arguments(kwargs, message):
    fails(lambda: make_scenes(3, **kwargs), message)


def test_bad_n_and_impossible_scenes():
    fails(lambda: make_scenes(0), "n must be a positive int, got 0")
    fails(lambda: make_scenes(2.0), "n must be a positive int, got 2.0")
    fails(lambda: make_scenes(1, size=28, scale=(28, 28), min_objects=4, max_objects=4, max_iou=0.0),
          "could not place 4 digits of up to 28 pixels with IoU <= 0.0 on a 28x28 canvas")


def test_bad_helper_inputs():
    fails(lambda: ink_box(np.zeros((3, 3))), "patch must be a 2-D array with some non-zero pixel, got an array of shape (3, 3) with 0 non-zero pixels")
    fails(lambda: ink_box(np.ones(4)), "patch must be a 2-D array with some non-zero pixel, got an array of shape (4,)")
    fails(lambda: resize_bilinear(np.ones((2, 2, 2)), 3, 3), "image must be a 2-D array (n_H, n_W), got an array of shape (2, 2, 2)")
    fails(lambda: resize_bilinear(np.ones((2, 2)), 0, 3), "h must be a positive int, got 0")
    fails(lambda: bilinear_matrix(3, -1), "n_out must be a positive int, got -1")
    fails(lambda: source_indices("all"), "split must be one of 'train', 'dev', 'test', got 'all'")
