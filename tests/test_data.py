"Downloader, split, generators and loaders of dlnotes.data."
import os
from pathlib import Path

import numpy as np
import pytest

from dlnotes.backend import seed, get_default_dtype
from dlnotes.data import (load_breast_cancer_data, load_digits_data, load_digit_images, make_flower, make_moons,
                          make_circles, train_test_split, download, sha256sum)

# ---------------------------------------------------------------- download

@pytest.fixture
def source(tmp_path):
    src = tmp_path / "src" / "data.bin"
    src.parent.mkdir()
    src.write_bytes(bytes(range(256)) * 10)
    return src


def test_download_then_cached_without_the_source(source, tmp_path):
    cache, good = tmp_path / "cache", sha256sum(source)
    p = download(source.as_uri(), good, cache_dir=cache)
    assert p == cache / "data.bin" and p.read_bytes() == source.read_bytes()
    assert sorted(os.listdir(cache)) == ["data.bin"]  # no temporary file left behind
    source.unlink()                                   # the URL can no longer be read...
    assert download(source.as_uri(), good, cache_dir=cache) == p  # ...and is not needed


def test_corrupted_cache_is_reported_and_kept(source, tmp_path):
    cache, good = tmp_path / "cache", sha256sum(source)
    p = download(source.as_uri(), good, cache_dir=cache)
    p.write_bytes(b"tampered")
    with pytest.raises(ValueError) as e:
        download(source.as_uri(), good, cache_dir=cache)
    msg = str(e.value)
    assert str(p) in msg and good in msg and sha256sum(p) in msg and "delete it" in msg
    assert p.read_bytes() == b"tampered"


def test_wrong_hash_on_download_leaves_nothing(source, tmp_path):
    cache, wrong = tmp_path / "cache", "f" * 64
    with pytest.raises(ValueError) as e:
        download(source.as_uri(), wrong, cache_dir=cache)
    msg = str(e.value)
    assert wrong in msg and sha256sum(source) in msg and source.as_uri() in msg
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "a" * 63, None, 123])
def test_bad_sha_string(source, tmp_path, bad):
    with pytest.raises(ValueError, match="64-character hex string"):
        download(source.as_uri(), bad, cache_dir=tmp_path / "cache")


def test_cache_dir_from_environment_and_filename(source, tmp_path, monkeypatch):
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path / "envcache"))
    p = download(source.as_uri(), sha256sum(source).upper(), filename="other.bin")
    assert p == tmp_path / "envcache" / "other.bin"
    with pytest.raises(ValueError, match="plain file name"):
        download(source.as_uri(), sha256sum(source), filename="../escape.bin")


def test_missing_source_raises_and_leaves_nothing(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(OSError):
        download((tmp_path / "nope.bin").as_uri(), "0" * 64, cache_dir=cache)
    assert list(cache.iterdir()) == []


def test_sha256sum_known_value(tmp_path):
    p = tmp_path / "abc.txt"
    p.write_bytes(b"abc")  # the FIPS 180-2 test vector
    assert sha256sum(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

# ---------------------------------------------------------------- split

def test_split_bad_inputs():
    X, y = np.arange(20).reshape(10, 2), np.r_[np.zeros(5, int), np.ones(5, int)]
    with pytest.raises(ValueError, match="X 10 and y 9"):
        train_test_split(X, y[:9])
    for bad in (0.0, 1.0, -0.2, 1.5, True):
        with pytest.raises(ValueError, match="test_size"):
            train_test_split(X, y, test_size=bad)
    for bad in (0, 10, 11):
        with pytest.raises(ValueError, match=r"test_size as a count must be in \[1, 9\]"):
            train_test_split(X, y, test_size=bad)
    with pytest.raises(ValueError, match="too few examples"):
        train_test_split(X[:1], y[:1])
    with pytest.raises(ValueError, match="too few examples to stratify"):
        train_test_split(X, np.r_[np.zeros(9, int), 1])


def test_split_stratified_partition_and_seed():
    m = 300
    y = np.r_[np.zeros(200, int), np.ones(70, int), 2 * np.ones(30, int)]
    X = np.arange(m)[:, None] * np.ones((1, 3))
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=5)
    assert len(X_te) == 60 and len(X_tr) == 240
    assert np.bincount(y_te).tolist() == [40, 14, 6]
    assert np.bincount(y_tr).tolist() == [160, 56, 24]
    rows = np.r_[X_tr[:, 0], X_te[:, 0]].astype(int)
    assert sorted(rows) == list(range(m))                     # each example exactly once
    np.testing.assert_array_equal(y[X_te[:, 0].astype(int)], y_te)  # rows keep their labels
    np.testing.assert_array_equal(train_test_split(X, y, test_size=0.2, seed=5)[1], X_te)
    assert not np.array_equal(train_test_split(X, y, test_size=0.2, seed=6)[1], X_te)
    assert len(set(y_te[:20].tolist())) > 1                   # the test part is shuffled, not grouped by class


def test_split_fraction_rounds_up_and_unstratified():
    X, y = np.arange(11), np.r_[np.zeros(6, int), np.ones(5, int)]
    assert len(train_test_split(X, y, test_size=0.25, stratify=False)[1]) == 3  # ceil(2.75)
    X_tr, X_te, _, _ = train_test_split(X, y, test_size=0.25)
    assert len(X_te) == 3 and len(X_tr) == 8


def test_split_seed_none_uses_library_generator():
    X, y = np.arange(40), np.arange(40) % 2
    seed(3); a = train_test_split(X, y, seed=None)[1]
    seed(3); b = train_test_split(X, y, seed=None)[1]
    np.testing.assert_array_equal(a, b)

# ---------------------------------------------------------------- generators

GENERATORS = [make_flower, make_moons, make_circles]


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("m", [2, 7, 400])
def test_generator_shapes_labels(make, m):
    X, y = make(m=m, seed=0)
    assert X.shape == (m, 2) and y.shape == (m,)
    assert isinstance(X, np.ndarray) and X.dtype == get_default_dtype() and y.dtype == np.int64
    assert np.bincount(y, minlength=2).tolist() == [m // 2, m - m // 2]
    assert np.isfinite(X).all()


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_reproducible(make):
    np.testing.assert_array_equal(make(seed=11)[0], make(seed=11)[0])
    assert not np.array_equal(make(seed=11)[0], make(seed=12)[0])
    # a private seed does not depend on (or move) the library's generator
    seed(0); a = make(seed=11)[0]; after_a = make(m=5)[0]
    seed(0); make(m=3); make(m=3)
    np.testing.assert_array_equal(make(seed=11)[0], a)
    seed(0); make(seed=11); np.testing.assert_array_equal(make(m=5)[0], after_a)


@pytest.mark.parametrize("make", GENERATORS)
def test_generator_bad_args(make):
    with pytest.raises(ValueError, match="m must be an int >= 2"):
        make(m=0)
    with pytest.raises(ValueError, match="m must be an int >= 2"):
        make(m=3.5)
    with pytest.raises(ValueError, match="noise must be a non-negative number"):
        make(noise=-1)


def test_generator_specific_args():
    with pytest.raises(ValueError, match="petals must be an even int >= 2"):
        make_flower(petals=5)
    with pytest.raises(ValueError, match=r"factor must be a number in \(0, 1\)"):
        make_circles(factor=0)
    X, y = make_moons(m=500, noise=0.0, seed=1, dtype=np.float64)
    t0 = X[y == 0]
    np.testing.assert_allclose(np.linalg.norm(t0, axis=1), 1.0, atol=1e-12)
    assert (t0[:, 1] >= -1e-12).all()
    t1 = X[y == 1] - [1.0, 0.5]
    np.testing.assert_allclose(np.linalg.norm(t1, axis=1), 1.0, atol=1e-12)
    assert (t1[:, 1] <= 1e-12).all()
    for P in (2, 4, 8):
        X, y = make_flower(m=300, noise=0.0, petals=P, seed=2, dtype=np.float64)
        theta = np.arctan2(X[:, 1], X[:, 0]) % (2 * np.pi)
        np.testing.assert_array_equal(np.floor(theta * P / (2 * np.pi)).astype(int) % 2, y)


def test_generator_class_layout_matches_sklearn():
    from sklearn.datasets import make_moons as sk_moons, make_circles as sk_circles
    for mine, theirs in [(make_moons(m=2000, noise=0.0, seed=0), sk_moons(2000, noise=0.0)),
                         (make_circles(m=2000, noise=0.0, factor=0.5, seed=0), sk_circles(2000, noise=0.0, factor=0.5))]:
        for c in (0, 1):
            a, b = mine[0][mine[1] == c], theirs[0][theirs[1] == c]
            assert len(a) == len(b)
            np.testing.assert_allclose(a.mean(0), b.mean(0), atol=0.05)

# ---------------------------------------------------------------- loaders

def test_breast_cancer():
    X, y, names = load_breast_cancer_data()
    assert X.shape == (569, 30) and y.shape == (569,) and len(names) == 30
    assert X.dtype == get_default_dtype() and y.dtype == np.int64
    assert int(y.sum()) == 212 and set(np.unique(y)) == {0, 1}  # 1 = malignant
    assert names[0] == "mean radius"
    from sklearn.datasets import load_breast_cancer
    np.testing.assert_array_equal(y, 1 - load_breast_cancer().target)
    assert load_breast_cancer_data(dtype=np.float64)[0].dtype == np.float64


def test_digits():
    X, y = load_digits_data()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0.0 and X.max() == 1.0 and X.dtype == get_default_dtype()
    assert sorted(np.unique(y).tolist()) == list(range(10))
    images, labels = load_digit_images(dtype=np.float64)
    assert images.shape == (1797, 8, 8) and images.dtype == np.float64
    assert 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(labels, y)
    np.testing.assert_allclose(images.reshape(-1, 64), X, atol=1e-7)
    # pixel values are multiples of 1/16
    np.testing.assert_allclose(images * 16, np.round(images * 16), atol=1e-12)
