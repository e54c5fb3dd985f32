"The variances of the initializer objects and the functional initializations of chapter 1, for dlnotes.nn.initializers."
import math

import numpy as np
import pytest

from dlnotes.backend import seed, to_numpy, xp
from dlnotes.nn.initializers import get_initializer, RandomNormal, INITIALIZERS
from dlnotes.nn.layers import Dense


# ---------------------------------------------------------------- initializers for layers

@pytest.mark.parametrize("name", ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform"])
@pytest.mark.parametrize("fans", [(200, 600), (800, 100)])
def test_initializer_variance(name, fans):
    seed(12)
    fan_in, fan_out = fans
    var = 2 / fan_in if name.startswith("he") else 2 / (fan_in + fan_out)
    W = to_numpy(get_initializer(name)((fan_in, fan_out), fan_in, fan_out))
    assert W.shape == (fan_in, fan_out) and W.dtype == np.float32
    assert abs(W.var() / var - 1) < 0.03, (name, W.var(), var)
    if name.endswith("uniform"):
        a = math.sqrt(3 * var)
        assert np.abs(W).max() <= a and np.abs(W).max() > 0.99 * a


def test_initializer_objects_and_errors():
    seed(13)
    W = to_numpy(RandomNormal(stddev=0.2)((400, 300), 400, 300, dtype=np.float64))
    assert W.dtype == np.float64 and abs(W.std() - 0.2) < 0.003
    assert abs(to_numpy(get_initializer("random_normal")((500, 400), 500, 400)).std() - 0.05) < 0.001
    layer = Dense(3, kernel_initializer=RandomNormal(stddev=0.0, mean=0.0), bias_initializer="ones")
    layer(xp.ones((2, 4), dtype=np.float32))
    np.testing.assert_array_equal(to_numpy(layer.params["W"]), np.zeros((4, 3)))
    np.testing.assert_array_equal(to_numpy(layer.params["b"]), np.ones(3))
    custom = lambda shape, fan_in, fan_out, dtype=None: xp.full(shape, 0.5, dtype=dtype or np.float32)
    assert get_initializer(custom) is custom
    assert set(INITIALIZERS) == {"zeros", "ones", "random_normal", "he_normal", "he_uniform", "glorot_normal", "glorot_uniform"}
    with pytest.raises(ValueError, match="unknown initializer 'lecun'; valid names: zeros, ones, random_normal"): get_initializer("lecun")
    with pytest.raises(TypeError, match="initializer must be a name or a callable, got float"): get_initializer(0.1)
    with pytest.raises(ValueError, match="RandomNormal: stddev must be a non-negative number, got -1.0"): RandomNormal(stddev=-1.0)


# ---------------------------------------------------------------- chapter 1's initializations

from dlnotes.nn.initializers import (initialize_parameters_zeros, initialize_parameters_random, initialize_parameters_he,
                                     initialize_parameters_xavier, INITIALIZATIONS, train_with_initialization)


@pytest.mark.parametrize("dims", [[5, 3, 1], [20, 10, 4, 1]])
def test_functional_initializations_shapes_and_spreads(dims):
    seed(14)
    for name, init in INITIALIZATIONS.items():
        P = init(dims, dtype=np.float64)
        assert list(P) == [f"{k}{l}" for l in range(1, len(dims)) for k in ("W", "b")]
        for l in range(1, len(dims)):
            assert P[f"W{l}"].shape == (dims[l], dims[l - 1]) and P[f"b{l}"].shape == (dims[l], 1)
            assert float(np.abs(to_numpy(P[f"b{l}"])).max()) == 0.0
    wide = [2000, 500]
    assert abs(float(to_numpy(initialize_parameters_he(wide)["W1"]).std()) / math.sqrt(2 / 2000) - 1) < 0.02
    assert abs(float(to_numpy(initialize_parameters_xavier(wide)["W1"]).std()) / math.sqrt(2 / 2500) - 1) < 0.02
    assert abs(float(to_numpy(initialize_parameters_random(wide, scale=4)["W1"]).std()) / 4 - 1) < 0.02
    assert float(np.abs(to_numpy(initialize_parameters_zeros(wide)["W1"])).max()) == 0.0


def test_train_with_initialization_bad_input():
    X, Y = np.zeros((2, 6)), np.zeros((1, 6))
    with pytest.raises(ValueError, match="initialization must be one of 'zeros', 'random', 'he', 'xavier' or a callable, got 'ones'"):
        train_with_initialization(X, Y, [2, 3, 1], "ones")
    for n in (-1, 0):  # zero iterations train nothing: a mistake, refused like a negative count
        with pytest.raises(ValueError, match=f"num_iterations must be a positive int, got {n}"):
            train_with_initialization(X, Y, [2, 3, 1], "zeros", num_iterations=n)
    with pytest.raises(ValueError, match="scale must be a positive number, got 0"):
        initialize_parameters_random([2, 3], scale=0)
    P, costs = train_with_initialization(X, Y, [2, 3, 1], "zeros", num_iterations=1)
    assert len(costs) == 1 and float(np.abs(to_numpy(P["W1"])).max()) == 0.0


# ---------------------------------------------------------------- the data checks (dlnotes.data.check_data, as in the layer API)

def _circle_data(m=12, s=0):
    rng = np.random.default_rng(s)
    X = rng.standard_normal((2, m))
    return X, (X[:1] ** 2 + X[1:] ** 2 < 1).astype(np.int64)


@pytest.mark.parametrize("bad, said", [(np.nan, "1 NaN and 0 infinite"), (np.inf, "0 NaN and 1 infinite")])
def test_train_with_initialization_refuses_nan_in_X(bad, said):
    X, Y = _circle_data()
    X[1, 3] = bad
    with pytest.raises(ValueError, match=f"X contains {said} values \\(of 24\\)"):
        train_with_initialization(X, Y, [2, 3, 1], num_iterations=200)


def test_train_with_initialization_refuses_empty_X_and_rows():
    X, Y = _circle_data()
    with pytest.raises(ValueError, match=r"X is empty: it holds no examples \(shape \(2, 0\)\)"):
        train_with_initialization(X[:, :0], Y[:, :0], [2, 3, 1], num_iterations=5)
    with pytest.raises(ValueError, match=r"X has shape \(12, 2\) but layers_dims\[0\] is 2: .* try X.T"):
        train_with_initialization(X.T, Y, [2, 3, 1], num_iterations=5)
    with pytest.raises(ValueError, match=r"Y must have shape \(1, 12\) \(one label per column of X\), got \(1, 5\)"):
        train_with_initialization(X, Y[:, :5], [2, 3, 1], num_iterations=5)


def test_train_with_initialization_takes_lists_and_checks_the_learning_rate():
    X, Y = _circle_data()
    seed(3); P, costs = train_with_initialization(X, Y, [2, 3, 1], learning_rate=0.1, num_iterations=150)
    seed(3); P_l, costs_l = train_with_initialization(X.tolist(), Y.tolist(), [2, 3, 1], learning_rate=0.1, num_iterations=150)
    assert costs_l == costs
    for k in P: np.testing.assert_array_equal(to_numpy(P_l[k]), to_numpy(P[k]))
    for lr in ("0.1", None, -1):
        with pytest.raises(ValueError, match="learning_rate must be a positive number"):
            train_with_initialization(X, Y, [2, 3, 1], learning_rate=lr, num_iterations=5)
