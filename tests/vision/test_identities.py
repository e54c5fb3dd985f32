"""dlnotes.vision.identities: identity-labelled images and the samplers a Siamese network trains on.

Every glyph is in every font and no two glyphs look alike; the splits partition GLYPHS, disjointly and always the same;
make_glyphs is seeded, in range, grouped by identity and draws only its split's glyphs; warp_affine equals
scipy.ndimage's affine_transform with order 1; to_grey equals scikit-image's rgb2gray; load_face_folder reads a
generated folder of PNG and JPEG files and names the folder, person or file of each bad input; pair_indices,
sample_triplets and identity_batches draw what they promise (checked against the labels by loops) and are seeded;
identity_batches feeds fit; nearest_reference equals a loop.
"""
import itertools, os

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from scipy.ndimage import affine_transform
from skimage.color import rgb2gray

from dlnotes.vision.identities import (FONTS, GLYPHS, SPLITS, Identities, has_glyph, render_glyph, glyph_bitmap, glyph_split,
                                       warp_affine, distort_glyph, make_glyphs, load_digit_identities, to_grey, load_face_folder,
                                       nearest_reference, pair_indices, sample_pairs, sample_triplets, identity_batches)


def fails(fn, contains, exc=ValueError):
    "Assert that fn() raises `exc` with `contains` in its message."
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


@pytest.fixture(scope="module")
def test_ids():
    return make_glyphs("test", n_per_identity=5, seed=11)


# ---------------------------------------------------------------- glyphs and fonts

def test_every_glyph_is_in_every_font_and_distinct():
    assert len(GLYPHS) == len(set(GLYPHS)) == 290
    assert len(FONTS) == 16
    missing = [(f, c) for f in FONTS for c in GLYPHS if not has_glyph(f, c)]
    assert missing == []


def test_no_two_glyphs_look_alike():
    "Every pair of GLYPHS is at mean RMS distance >= 0.15 over the fonts, recomputed pair by pair for a sample."
    V = np.array([[glyph_bitmap(c, f, 32).ravel() for f in FONTS] for c in GLYPHS])
    rng = np.random.default_rng(0)
    pairs = [tuple(rng.choice(len(GLYPHS), 2, replace=False)) for _ in range(3000)]
    pairs += [(GLYPHS.index(a), GLYPHS.index(b)) for a, b in ["pρ", "lI", "bɓ", "oO"]]
    for i, j in pairs:
        d = np.mean([np.sqrt(np.mean((V[i, f] - V[j, f]) ** 2)) for f in range(len(FONTS))])
        assert d >= 0.15, (GLYPHS[i], GLYPHS[j], d)


def test_missing_glyphs_are_refused():
    assert not has_glyph("cmr10.ttf", "α") and has_glyph("DejaVuSans.ttf", "α")
    assert not any(has_glyph(f, "中") for f in FONTS)
    fails(lambda: render_glyph("中", "DejaVuSans.ttf"), "char must be a character that DejaVuSans.ttf has")
    fails(lambda: render_glyph("", "DejaVuSans.ttf"), "char must be one character, got ''")
    fails(lambda: render_glyph(" ", "DejaVuSans.ttf"), "char must be a character with ink in DejaVuSans.ttf")
    fails(lambda: has_glyph("nofont.ttf", "a"), "font must be a font file of matplotlib's fonts/ttf folder, got 'nofont.ttf'")


def test_render_and_canonical_bitmap():
    g = render_glyph("l", "DejaVuSans.ttf", px=64)
    assert g.shape[0] > 3 * g.shape[1] and g.min() >= 0 and g.max() <= 1
    assert g[0].max() > 0.05 and g[-1].max() > 0.05 and g[:, 0].max() > 0.05 and g[:, -1].max() > 0.05  # cropped to ink
    for R in (32, 56):
        B = glyph_bitmap("W", "STIXGeneral.ttf", R)
        rows, cols = np.flatnonzero(B.max(axis=1) > 0), np.flatnonzero(B.max(axis=0) > 0)
        assert max(len(rows), len(cols)) == round(0.75 * R)
        assert abs((rows[0] + rows[-1]) / 2 - (R - 1) / 2) <= 1 and abs((cols[0] + cols[-1]) / 2 - (R - 1) / 2) <= 1
        assert not B.flags.writeable


# ---------------------------------------------------------------- splits and make_glyphs

def test_splits_partition_glyphs_disjointly():
    parts = {s: glyph_split(s) for s in SPLITS}
    assert [len(parts[s]) for s in SPLITS] == [174, 58, 58]
    assert sorted("".join(parts.values())) == sorted(GLYPHS)
    for a, b in itertools.combinations(SPLITS, 2): assert not set(parts[a]) & set(parts[b])
    for s in SPLITS: assert list(parts[s]) == sorted(parts[s]) and parts[s] == glyph_split(s)
    fails(lambda: glyph_split("validation"), "split must be one of 'train', 'dev', 'test', got 'validation'")


def test_make_glyphs_shapes_seed_and_identities():
    a = make_glyphs("dev", n_per_identity=3, size=20, seed=4)
    assert isinstance(a, Identities)
    assert a.images.shape == (58 * 3, 20, 20, 1) and a.images.dtype == np.float32 and a.labels.dtype == np.int64
    assert a.names == tuple(glyph_split("dev"))
    np.testing.assert_array_equal(a.labels, np.repeat(np.arange(58), 3))
    assert a.images.min() >= 0 and a.images.max() <= 1
    b = make_glyphs("dev", n_per_identity=3, size=20, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    c = make_glyphs("dev", n_per_identity=3, size=20, seed=5)
    assert np.abs(a.images - c.images).mean() > 0.01
    assert len({img.tobytes() for img in a.images}) == len(a.images)  # every photo differs
    fails(lambda: make_glyphs(n_per_identity=0), "n_per_identity must be a positive int, got 0")
    fails(lambda: make_glyphs(size=7), "size must be an int >= 8, got 7")


def test_photos_resemble_their_glyph():
    "Most photos are closer to the undistorted DejaVu Sans bitmap of their own glyph than to that of the median glyph (chance: half)."
    ids = make_glyphs("test", n_per_identity=4, size=28, seed=0)
    ref = np.array([glyph_bitmap(c, "DejaVuSans.ttf", 56).reshape(28, 2, 28, 2).mean(axis=(1, 3)) for c in ids.names])
    d = ((ids.images[..., 0][:, None] - ref[None]) ** 2).sum(axis=(2, 3))  # (n, K)
    own = d[np.arange(len(d)), ids.labels]
    assert np.mean(own < np.median(d, axis=1)) > 0.75  # about 0.84 measured


def test_distort_glyph_is_in_range_and_seeded():
    G = glyph_bitmap("Ж", "DejaVuSerif.ttf", 56)
    x = distort_glyph(G, np.random.default_rng(1), 28)
    y = distort_glyph(G, np.random.default_rng(1), 28)
    assert x.shape == (28, 28) and x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(x, y)


# ---------------------------------------------------------------- the warp

@pytest.mark.parametrize("theta,scale,shear,t", [(0.0, 1.0, 0.0, (0, 0)), (0.3, 1.1, 0.2, (1.5, -2.0)), (-0.25, 0.8, -0.2, (-3, 0.7))])
def test_warp_affine_equals_scipy(theta, scale, shear, t):
    "Same side in and out: pixel u samples G at c + M^-1 (u - c - t), scipy's affine_transform(matrix=M^-1, offset) with order 1."
    rng = np.random.default_rng(0)
    G = rng.random((20, 20))
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    M = scale * rot @ np.array([[1.0, 0.0], [shear, 1.0]])
    Minv = np.linalg.inv(M)
    c = np.array([9.5, 9.5])
    ref = affine_transform(G, Minv, offset=c - Minv @ (c + np.asarray(t, float)), order=1, mode="constant", cval=0.0)
    ours = warp_affine(G, M, t, 20)
    inner = np.zeros((20, 20), bool); inner[2:-2, 2:-2] = True  # scipy treats the last half pixel at the border differently
    src = (Minv @ (np.stack(np.meshgrid(np.arange(20.0), np.arange(20.0), indexing="ij")).reshape(2, -1) - (c + t)[:, None])).T + c
    well_inside = ((src > 0.01) & (src < 18.99)).all(axis=1).reshape(20, 20)
    np.testing.assert_allclose(ours[well_inside & inner], ref[well_inside & inner], atol=1e-10)
    assert well_inside.sum() > 150


# ---------------------------------------------------------------- digits and face folders

def test_load_digit_identities():
    tr, te = load_digit_identities("train"), load_digit_identities("test")
    assert tr.names == ("0", "1", "2", "3", "4") and te.names == ("5", "6", "7", "8", "9")
    assert tr.images.shape[1:] == (8, 8, 1) and tr.images.dtype == np.float32
    assert len(tr.labels) + len(te.labels) == 1797 and set(tr.labels) == set(te.labels) == set(range(5))
    fails(lambda: load_digit_identities("dev"), "split must be one of 'train', 'test', got 'dev'")


def test_to_grey_equals_skimage():
    rng = np.random.default_rng(3)
    rgb = rng.random((6, 5, 3))
    np.testing.assert_allclose(to_grey(rgb), rgb2gray(rgb), atol=1e-12)
    rgba = np.concatenate([rgb, np.ones((6, 5, 1))], axis=-1)
    np.testing.assert_allclose(to_grey(rgba), rgb2gray(rgb), atol=1e-12)
    np.testing.assert_allclose(to_grey((rgb * 65535).astype(np.uint16)), rgb2gray((rgb * 65535).astype(np.uint16)), atol=1e-12)


def _write(root, people):
    for name, imgs in people.items():
        os.makedirs(root / name, exist_ok=True)
        for fname, img in imgs: plt.imsave(root / name / fname, img, cmap="gray", vmin=0, vmax=1)


def test_load_face_folder(tmp_path):
    rng = np.random.default_rng(0)
    imgs = {p: [(f"{i}.png", rng.random((30, 24))) for i in range(n)] for p, n in [("zoe", 2), ("al", 3)]}
    imgs["bea"] = [("x.JPG", np.full((16, 16), 0.5)), ("y.jpeg", np.full((16, 16), 0.25))]
    _write(tmp_path, imgs)
    (tmp_path / "al" / "notes.txt").write_text("not an image, ignored")
    (tmp_path / ".hidden").mkdir()
    faces = load_face_folder(tmp_path, size=(12, 10))
    assert faces.names == ("al", "bea", "zoe")
    assert faces.labels.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert faces.images.shape == (7, 12, 10, 1) and faces.images.dtype == np.float32
    from skimage.transform import resize
    for k, (_, img) in enumerate(imgs["al"]):  # PNG of a grey image: exact up to 8 bits, resized like skimage
        ref = resize(np.round(img * 255) / 255, (12, 10), order=1, mode="edge", anti_aliasing=False)
        np.testing.assert_allclose(faces.images[k, ..., 0], ref, atol=2 / 255)
    np.testing.assert_allclose(faces.images[3:5, ..., 0].mean(axis=(1, 2)), [0.5, 0.25], atol=0.02)  # JPEG, lossy


def test_load_face_folder_bad_input(tmp_path):
    fails(lambda: load_face_folder(tmp_path / "missing"), f"path must be an existing folder, got '{tmp_path / 'missing'}'")
    (tmp_path / "flat").mkdir(); plt.imsave(tmp_path / "flat" / "a.png", np.zeros((4, 4)))
    fails(lambda: load_face_folder(tmp_path / "flat"), "path must be a folder with one sub-folder per person, got")
    _write(tmp_path / "one", {"ann": [("a.png", np.zeros((4, 4))), ("b.png", np.ones((4, 4)))], "ben": [("a.png", np.zeros((4, 4)))]})
    fails(lambda: load_face_folder(tmp_path / "one"), f"person 'ben' in '{tmp_path / 'one'}' must have at least two images")
    _write(tmp_path / "bad", {"ann": [("a.png", np.zeros((4, 4)))]}); (tmp_path / "bad" / "ann" / "b.jpg").write_bytes(b"\x00garbage")
    fails(lambda: load_face_folder(tmp_path / "bad"), f"image file '{tmp_path / 'bad' / 'ann' / 'b.jpg'}' could not be read as an image")
    fails(lambda: load_face_folder(tmp_path / "one", size=(8,)), "size must be a pair (h, w) of positive ints, got (8,)")


# ---------------------------------------------------------------- samplers

def test_pair_indices_by_loop():
    labels = np.array([3, 3, 3, 7, 7, 9])  # 9 has one image: never in a same pair
    i1, i2, same = pair_indices(labels, 301, seed=2)
    assert same.dtype == np.float32 and same.sum() == 150 and len(same) == 301
    for a, b, s in zip(i1, i2, same):
        assert a != b
        assert (labels[a] == labels[b]) == (s == 1)
        if s == 1: assert labels[a] != 9
    assert {int(labels[a]) for a, s in zip(i1, same) if s == 0} | {int(labels[b]) for b, s in zip(i2, same) if s == 0} == {3, 7, 9}
    np.testing.assert_array_equal(pair_indices(labels, 20, seed=5)[0], pair_indices(labels, 20, seed=5)[0])
    assert not np.array_equal(same[:40], pair_indices(labels, 301, seed=3)[2][:40])  # shuffled, seed-dependent order


def test_sample_pairs_and_triplets_show_the_right_identities(test_ids):
    flat = test_ids.images.reshape(len(test_ids.images), -1)
    def who(X):
        return np.array([test_ids.labels[np.flatnonzero((flat == x.ravel()).all(axis=1))[0]] for x in X])
    x1, x2, same = sample_pairs(test_ids, 40, seed=0)
    np.testing.assert_array_equal(who(x1) == who(x2), same == 1)
    A, P, N = sample_triplets(test_ids, 30, seed=0)
    assert (who(A) == who(P)).all() and (who(A) != who(N)).all()
    assert not (A.reshape(30, -1) == P.reshape(30, -1)).all(axis=1).any()
    A2, _, _ = sample_triplets(test_ids, 30, seed=0)
    np.testing.assert_array_equal(A, A2)
    fails(lambda: sample_triplets(test_ids, 0), "n must be a positive int, got 0")
    fails(lambda: sample_pairs(Identities(test_ids.images[:3], test_ids.labels[:2], test_ids.names), 4),
          "ids must be images and labels of the same length, got 3 images and 2 labels")


def test_identity_batches(test_ids):
    stream = identity_batches(test_ids, n_identities=5, n_per_identity=4, steps=3, seed=1)
    first = list(stream); second = list(stream)
    assert len(first) == len(second) == len(stream) == 3
    assert not np.array_equal(first[0][1], second[0][1]) or not np.array_equal(first[0][0], second[0][0])  # the stream goes on
    flat = test_ids.images.reshape(len(test_ids.images), -1)
    for x, y in first + second:
        assert x.shape == (20, 28, 28, 1) and y.shape == (20,)
        assert len(set(y.tolist())) == 5 and all(len(set(y[4 * p:4 * p + 4].tolist())) == 1 for p in range(5))
        rows = [np.flatnonzero((flat == xi.ravel()).all(axis=1))[0] for xi in x]
        assert len(set(rows)) == 20 and (test_ids.labels[rows] == y).all()  # distinct images, with their own labels
    again = list(identity_batches(test_ids, 5, 4, steps=3, seed=1))
    for (xa, ya), (xb, yb) in zip(first, again): np.testing.assert_array_equal(xa, xb); np.testing.assert_array_equal(ya, yb)
    endless = iter(identity_batches(test_ids, 2, 2))
    assert len([next(endless) for _ in range(50)]) == 50
    fails(lambda: identity_batches(test_ids, n_per_identity=6), "n_per_identity must be at most the number of images of every identity, got 6")
    fails(lambda: identity_batches(test_ids, n_identities=100), "n_identities must be at most the number of identities of ids (58), got 100")
    fails(lambda: identity_batches(test_ids, steps=0), "steps must be a positive int, got 0")
    fails(lambda: identity_batches(test_ids.images), "ids must be an Identities", exc=TypeError)


def test_identity_batches_feed_fit(test_ids):
    from dlnotes.backend import seed
    from dlnotes.nn.layers import Dense
    from dlnotes.nn.models import Sequential
    from dlnotes.vision.cnn import Flatten
    seed(0)
    model = Sequential([Flatten(), Dense(len(test_ids.names), activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    h1 = model.fit(identity_batches(test_ids, 8, 2, seed=0), epochs=2, steps_per_epoch=4, verbose=0)
    h2 = model.fit(identity_batches(test_ids, 8, 2, steps=4, seed=0), epochs=2, verbose=0)  # re-iterable: no steps_per_epoch
    assert len(h1.history["loss"]) == len(h2.history["loss"]) == 2


def test_nearest_reference_equals_a_loop():
    rng = np.random.default_rng(4)
    Q, R = rng.random((25, 3, 4)), rng.random((7, 3, 4))
    idx, d2 = nearest_reference(Q, R)
    for q in range(25):
        dists = [np.sum((Q[q] - R[k]) ** 2) for k in range(7)]
        assert idx[q] == int(np.argmin(dists))
        np.testing.assert_allclose(d2[q], min(dists), atol=1e-12)
    fails(lambda: nearest_reference(Q, R[:, :2]), "references must be of the queries' shape (3, 4), got shape (2, 4)")
