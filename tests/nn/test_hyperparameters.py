"Samplers, search-space validation, random search and coarse-to-fine search of dlnotes.nn.hyperparameters."
import math

import numpy as np
import pytest

from dlnotes.backend import seed, get_rng
from dlnotes.nn.hyperparameters import (sample_log_uniform, sample_beta, sample_params, random_search,
                                        narrow_space, coarse_to_fine)


def _toy(learning_rate, units):
    "Peak 1.0 at learning_rate = 3e-3, units = 40."
    return 1.0 - (math.log10(learning_rate) - math.log10(3e-3)) ** 2 - ((units - 40) / 40) ** 2


TOY_SPACE = {"learning_rate": ("log", 1e-6, 1.0), "units": ("int", 4, 512)}


@pytest.mark.parametrize("low,high", [(1e-5, 1e-1), (1e-3, 10.0), (2.0, 2000.0)])
def test_log_uniform_range_and_equal_decades(low, high):
    a = sample_log_uniform(low, high, 60_000, rng=123)
    assert a.shape == (60_000,)
    assert low <= a.min() and a.max() <= high
    decades = np.arange(math.log10(low), math.log10(high) + 1e-9)
    frac = np.histogram(np.log10(a), decades)[0] / len(a)
    np.testing.assert_allclose(frac, np.full(len(frac), 1 / len(frac)), atol=0.01)


def test_log_uniform_median_is_geometric_mean():
    a = sample_log_uniform(1e-4, 1.0, 40_000, rng=5)
    assert abs(math.log10(np.median(a)) + 2) < 0.05  # median 10^-2, where a uniform draw has its median near 0.5


def test_beta_range_and_window_decades():
    b = sample_beta(0.9, 0.9999, 60_000, rng=7)
    assert 0.9 <= b.min() and b.max() <= 0.9999
    window = 1 / (1 - b)
    frac = np.histogram(np.log10(window), [1, 2, 3, 4])[0] / len(b)
    np.testing.assert_allclose(frac, [1 / 3] * 3, atol=0.01)
    assert sample_beta(0.0, 0.9, rng=1) >= 0.0


def test_samplers_use_library_generator_by_default():
    seed(11); a = sample_log_uniform(1e-3, 1.0, 5)
    seed(11); b = sample_log_uniform(1e-3, 1.0, 5)
    np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(3)
    c = sample_beta(0.5, 0.99, 4, rng=g)
    assert c.shape == (4,)
    seed(11); get_rng().uniform(size=1)  # the generator advances as usual


@pytest.mark.parametrize("low,high,msg", [(0.0, 1.0, "low must be a positive number, got 0.0"),
                                          (-1e-3, 1.0, "low must be a positive number, got -0.001"),
                                          (1e-1, 1e-2, "high must be a number > 0.1, got 0.01"),
                                          (1e-3, 1e-3, "high must be a number > 0.001, got 0.001"),
                                          (float("nan"), 1.0, "low must be a positive number, got nan"),
                                          (1e-3, float("inf"), "high must be a number > 0.001, got inf"),
                                          ("0.1", 1.0, "low must be a positive number, got '0.1'")])
def test_log_uniform_bad_range(low, high, msg):
    with pytest.raises(ValueError) as e:
        sample_log_uniform(low, high)
    assert str(e.value) == msg


@pytest.mark.parametrize("low,high,msg", [(0.9, 1.0, "high must be a number in (0.9, 1), got 1.0"),
                                          (-0.1, 0.9, "low must be a number in [0, 1), got -0.1"),
                                          (0.99, 0.9, "high must be a number in (0.99, 1), got 0.9"),
                                          (0.5, 0.5, "high must be a number in (0.5, 1), got 0.5"),
                                          (1.0, 1.0, "low must be a number in [0, 1), got 1.0")])
def test_beta_bad_range(low, high, msg):
    with pytest.raises(ValueError) as e:
        sample_beta(low, high)
    assert str(e.value) == msg


@pytest.mark.parametrize("space,msg", [
    ({"lr": ("log", 0, 1e-1)}, "space['lr']: low must be a positive number, got 0"),
    ({"lr": ("log", -1e-4, 1e-1)}, "space['lr']: low must be a positive number, got -0.0001"),
    ({"lr": ("exp", 1e-4, 1e-1)}, "space['lr']: kind must be one of 'log', 'beta', 'uniform', 'int', 'choice', got 'exp'"),
    ({"lr": 1e-3}, "space['lr'] must be a (kind, ...) tuple, got 0.001"),
    ({"lr": ()}, "space['lr'] must be a (kind, ...) tuple, got ()"),
    ({"lr": ("log", 1e-4)}, "space['lr'] must be ('log', low, high), got ('log', 0.0001)"),
    ({"n": ("int", 1, 2.5)}, "space['n']: high must be a positive int, got 2.5"),
    ({"n": ("int", 1.0, 2)}, "space['n']: low must be an int, got 1.0"),
    ({"n": ("int", 5, 2)}, "space['n']: high must be an int >= 5, got 2"),
    ({"d": ("uniform", 1.0, 0.0)}, "space['d']: high must be a number > 1.0, got 0.0"),
    ({"c": ("choice", [])}, "space['c'] must be ('choice', [v1, v2, ...]) with at least one value, got ('choice', [])"),
    ({"c": ("choice", 32)}, "space['c'] must be ('choice', [v1, v2, ...]) with at least one value, got ('choice', 32)"),
    ({"b": ("beta", 0.9, 1.5)}, "space['b']: high must be a number in (0.9, 1), got 1.5"),
    ({}, "space must be a non-empty dict name -> spec, got {}"),
    ([("lr", ("log", 1e-4, 1e-1))], "space must be a non-empty dict name -> spec, got [('lr', ('log', 0.0001, 0.1))]"),
])
def test_bad_specs(space, msg):
    with pytest.raises(ValueError) as e:
        sample_params(space, rng=0)
    assert str(e.value) == msg
    with pytest.raises(ValueError):  # random_search validates before calling train_fn
        random_search(lambda **p: pytest.fail("train_fn must not be called"), space, 3)


@pytest.mark.parametrize("rng", ["0", -1, 1.5, True])
def test_bad_rng(rng):
    with pytest.raises(ValueError) as e:
        sample_log_uniform(1e-3, 1.0, rng=rng)
    assert str(e.value) == f"rng must be None, a non-negative int seed or a numpy Generator, got {rng!r}"
    with pytest.raises(ValueError, match="rng must be None"):
        sample_params(TOY_SPACE, rng=rng)


def test_int_rng_is_get_rng_of_that_seed():
    np.testing.assert_array_equal(sample_log_uniform(1e-3, 1.0, 4, rng=5), 10.0 ** get_rng(5).uniform(-3, 0, 4))
    assert sample_params(TOY_SPACE, rng=np.int64(2)) == sample_params(TOY_SPACE, rng=2)


def test_random_search_bad_seed():
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        random_search(_toy, TOY_SPACE, n_trials=2, seed=-1)


def test_sample_params_kinds_and_types():
    space = {"lr": ("log", 1e-4, 1e-1), "b": ("beta", 0.8, 0.99), "d": ("uniform", 0.1, 0.4),
             "n": ("int", 3, 5), "act": ("choice", ["relu", "tanh"])}
    draws = [sample_params(space, rng=s) for s in range(400)]
    assert all(isinstance(d["lr"], float) and isinstance(d["n"], int) for d in draws)
    assert {d["n"] for d in draws} == {3, 4, 5}  # both ends of an int range are reachable
    assert {d["act"] for d in draws} == {"relu", "tanh"}
    for k in ("lr", "b", "d"):
        lo, hi = space[k][1:]
        assert all(lo <= d[k] <= hi for d in draws)


def test_random_search_sorted_and_deterministic():
    calls = []
    def f(**p):
        calls.append(p)
        return _toy(**p)
    r1 = random_search(f, TOY_SPACE, n_trials=25, seed=4)
    assert len(r1) == 25 == len(calls)
    scores = [s for _, s in r1]
    assert scores == sorted(scores, reverse=True)
    assert r1 == random_search(_toy, TOY_SPACE, n_trials=25, seed=4)
    assert r1 != random_search(_toy, TOY_SPACE, n_trials=25, seed=5)
    r_min = random_search(_toy, TOY_SPACE, n_trials=25, seed=4, maximize=False)
    assert [s for _, s in r_min] == sorted(scores)


def test_random_search_independent_of_train_fn_draws():
    "train_fn may use the library's generator (weight init) without changing which configurations are drawn."
    def noisy(**p):
        seed(0); get_rng().uniform(size=100)
        return _toy(**p)
    a = random_search(_toy, TOY_SPACE, n_trials=10, seed=9)
    b = random_search(noisy, TOY_SPACE, n_trials=10, seed=9)
    assert [p for p, _ in a] == [p for p, _ in b]


def test_random_search_nan_last_and_bad_trials():
    scores = iter([0.2, float("nan"), 0.9, 0.5])
    r = random_search(lambda **p: next(scores), TOY_SPACE, n_trials=4, seed=0)
    assert [s for _, s in r][:3] == [0.9, 0.5, 0.2] and math.isnan(r[-1][1])
    for bad in (0, -2, 2.0, True):
        with pytest.raises(ValueError, match=f"n_trials must be a positive int, got {bad!r}"):
            random_search(_toy, TOY_SPACE, n_trials=bad)


def test_coarse_to_fine_ranges_shrink_around_the_best():
    coarse, fine, fine_space = coarse_to_fine(_toy, TOY_SPACE, n_coarse=40, n_fine=25, top_k=4, seed=3)
    assert len(coarse) == 40 and len(fine) == 25
    best = coarse[0][0]
    lo, hi = fine_space["learning_rate"][1:]
    assert 1e-6 <= lo < best["learning_rate"] < hi <= 1.0
    assert math.log10(hi) - math.log10(lo) < 0.6 * 6  # narrower than the six coarse decades
    assert lo < 3e-3 < hi  # the optimum stays inside
    n_lo, n_hi = fine_space["units"][1:]
    assert 4 <= n_lo <= best["units"] <= n_hi <= 512 and n_hi - n_lo < 0.6 * (512 - 4)
    for p, _ in coarse[:4]:
        assert lo <= p["learning_rate"] <= hi and n_lo <= p["units"] <= n_hi
    for p, _ in fine:
        assert lo <= p["learning_rate"] <= hi and n_lo <= p["units"] <= n_hi
    assert np.median([s for _, s in fine]) > np.median([s for _, s in coarse])  # the fine trials cluster near the optimum


def test_narrow_space_log_scale_padding_and_clipping():
    space = {"lr": ("log", 1e-4, 1e-0), "d": ("uniform", 0.0, 0.5)}
    results = [({"lr": 1e-2, "d": 0.0}, 1.0), ({"lr": 1e-3, "d": 0.1}, 0.5), ({"lr": 1e-4, "d": 0.5}, 0.1)]
    new = narrow_space(space, results, top_k=2, pad=0.1)
    np.testing.assert_allclose(new["lr"][1:], [10 ** (-3 - 0.4), 10 ** (-2 + 0.4)])  # 10% of 4 decades each side
    np.testing.assert_allclose(new["d"][1:], [0.0, 0.15])  # clipped below at the original 0.0
    new3 = narrow_space(space, results, top_k=3)["lr"]
    assert new3[1] == 1e-4 and abs(new3[2] - 10 ** -1.6) < 1e-12  # clipped to the original low end exactly
    with pytest.raises(ValueError, match=r"top_k must be an int in \[1, 3\] \(at most the number of results\), got 0"):
        narrow_space(space, results, top_k=0)
    with pytest.raises(ValueError, match=r"top_k must be an int in \[1, 3\]"):
        narrow_space(space, results, top_k=4)
    for bad in (0.7, 0, 0.5, True, float("nan")):
        with pytest.raises(ValueError, match=r"pad must be a number in \(0, 0.5\), got"):
            narrow_space(space, results, pad=bad)


def test_narrow_space_single_int_value_stays_valid():
    space = {"n": ("int", 10, 20), "c": ("choice", ["a", "b", "c"])}
    new = narrow_space(space, [({"n": 20, "c": "c"}, 1.0)], top_k=1, pad=0.05)
    assert new["n"][1] <= 20 <= new["n"][2] <= 20 and new["n"][1] >= 10
    assert new["c"] == ("choice", ["c"])
    sample_params(new, rng=0)  # the narrowed space is itself valid
