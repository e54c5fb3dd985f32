"Gaps, dominant problem, knobs, bad inputs of diagnose, and error_analysis on random and tagged errors."
import numpy as np
import pytest

from dlnotes.strategy.diagnosis import diagnose, Diagnosis, KNOBS, PROBLEMS, error_analysis, ErrorAnalysis


def test_gaps_add_up_and_dominant_is_largest():
    rng = np.random.default_rng(0)
    for _ in range(500):
        e = np.sort(rng.random(5) * 0.5)  # human <= train <= train-dev <= dev <= test
        rng.shuffle(e[1:])                 # ...or not: any order of the other four
        h, tr, td, dv, ts = (float(v) for v in e)
        d = diagnose(h, tr, dv, train_dev_error=td, test_error=ts)
        assert isinstance(d, Diagnosis) and list(d.gaps) == list(PROBLEMS)
        assert sum(d.gaps.values()) == pytest.approx(ts - h)
        assert d.gaps["variance"] == pytest.approx(td - tr) and d.gaps["data mismatch"] == pytest.approx(dv - td)
        top = max(d.gaps.values())
        if top > 0:
            assert d.gaps[d.dominant] == pytest.approx(top) and d.knobs == KNOBS[d.dominant]
        else:
            assert d.dominant is None and d.knobs == []
        assert d.beyond_human == (tr < h)


def test_without_train_dev_variance_is_dev_minus_train():
    d = diagnose(0.02, 0.05, 0.12)
    assert set(d.gaps) == {"avoidable bias", "variance"}
    assert d.gaps["variance"] == pytest.approx(0.07) and d.dominant == "variance"
    assert "get more training data" in d.knobs and "regularize (L2, dropout, data augmentation)" in d.knobs


@pytest.mark.parametrize("errors,dominant,knob", [
    ((0.01, 0.15, 0.16), "avoidable bias", "train a bigger model (more units, more layers)"),
    ((0.01, 0.02, 0.15, 0.03), "data mismatch", "make the training data more like the target data (data synthesis)"),
    ((0.01, 0.02, 0.03, 0.025, 0.09), "overfitting to dev", "get a bigger dev set"),
])
def test_knobs_follow_orthogonalization(errors, dominant, knob):
    d = diagnose(*errors)
    assert d.dominant == dominant and knob in d.knobs and d["knobs"] is d.knobs


@pytest.mark.parametrize("arg", ["human_error", "train_error", "dev_error", "train_dev_error", "test_error"])
@pytest.mark.parametrize("bad", [-0.1, 1.01, 5, float("nan"), float("inf"), True, "0.1"])
def test_errors_outside_unit_interval(arg, bad):
    kw = dict(human_error=0.01, train_error=0.05, dev_error=0.08, train_dev_error=0.06, test_error=0.09)
    kw[arg] = bad
    with pytest.raises(ValueError, match=rf"{arg} must be a number in \[0, 1\] \(an error rate: a fraction, not a percentage\), got {bad!r}"):
        diagnose(**kw)


def test_edges_of_unit_interval_are_accepted():
    d = diagnose(0, 0, 1, train_dev_error=0, test_error=1)
    assert d.dominant == "data mismatch" and d.gaps["data mismatch"] == 1.0


def test_str_reports_percentages():
    s = str(diagnose(0.01, 0.08, 0.10))
    assert "train 8.0%" in s and "avoidable bias +7.0%" in s and "dominant problem: avoidable bias" in s
    assert "below the human-level proxy" in str(diagnose(0.05, 0.01, 0.02))


# ---------------------------------------------------------------- error analysis

def test_confusion_pairs_count_every_error_once():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 5, 300)
    p = np.where(rng.random(300) < 0.7, t, rng.integers(0, 5, 300))
    ea = error_analysis(t, p)
    assert isinstance(ea, ErrorAnalysis) and ea.n == 300 and ea.n_errors == int((t != p).sum())
    assert sum(r["count"] for r in ea.rows) == ea.n_errors
    assert sum(r["share"] for r in ea.rows) == pytest.approx(1.0)
    assert sum(r["ceiling"] for r in ea.rows) == pytest.approx(ea.error_rate)
    for r in ea.rows:
        a, b = r["category"]
        assert a != b and r["count"] == int(((t == a) & (p == b)).sum())
        assert r["ceiling"] == pytest.approx(r["share"] * ea.error_rate)
        np.testing.assert_array_equal(t[ea.indices[r["category"]]], a)
    counts = [r["count"] for r in ea.rows]
    assert counts == sorted(counts, reverse=True)


def test_tags_single_multiple_and_untagged():
    t = np.array([0, 1, 2, 3, 4, 5])
    p = np.array([1, 1, 0, 0, 0, 5])
    tags = ["blurry", "blurry", {"dark", "blurry"}, None, ("dark", "dark"), "dark"]
    ea = error_analysis(t, p, categories=tags)
    rows = {r["category"]: r for r in ea.rows}
    assert ea.n_errors == 4
    assert rows["blurry"]["count"] == 2 and rows["dark"]["count"] == 2 and rows["(untagged)"]["count"] == 1
    assert rows["blurry"]["ceiling"] == pytest.approx(2 / 6)
    np.testing.assert_array_equal(ea.indices["dark"], [2, 4])


def test_no_errors():
    ea = error_analysis([3, 1, 2], [3, 1, 2])
    assert ea.rows == [] and ea.n_errors == 0 and ea.error_rate == 0
    assert "0 errors in 3 examples" in str(ea)


def test_error_analysis_bad_inputs():
    with pytest.raises(ValueError, match="y_true and y_pred must have the same length, got 3 and 2"):
        error_analysis([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="categories must have one entry per example: got 2 for 3 examples"):
        error_analysis([0, 1, 2], [0, 1, 1], categories=["a", "b"])
    with pytest.raises(ValueError, match=r"must be 1-D, \(1, m\) or \(m, 1\) \(one label per example\), got shape \(2, 2\)"):
        error_analysis([[0, 1], [1, 0]], [[0, 1], [1, 0]])
    r = error_analysis([[0, 1]], [[1, 1]])  # (1, m): one row of labels, as chapter 1's predict returns them
    assert (r.n, r.n_errors) == (2, 1)
    with pytest.raises(ValueError, match="empty"):
        error_analysis([], [])
    with pytest.raises(TypeError, match="y_true must be an array of labels, got None"):  # the label checks of the metrics
        error_analysis(None, [0])
    with pytest.raises(ValueError, match=r"y_pred contains 1 NaN and 0 infinite values \(of 2\)"):
        error_analysis([0, 1], [0.0, np.nan])
