"Tests for dlnotes.nn.regularization: argument checks, L2 and dropout gradients, dropout's expectation, the named caches."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, rand, to_numpy
from dlnotes.gradcheck import grad_check
from dlnotes.nn.deep import L_model_forward, L_model_backward, compute_cost, LinearActivationCache
from dlnotes.nn.initializers import initialize_parameters_he, train_with_initialization
from dlnotes.nn.regularization import (compute_cost_with_regularization, backward_propagation_with_regularization,
                                       dropout_forward, dropout_backward, forward_propagation_with_dropout,
                                       backward_propagation_with_dropout, regularized_model, DropoutCache,
                                       DropoutLayerCache)

ARCHITECTURES = [[3, 5, 1], [4, 6, 5, 3, 1]]


def _network(layers_dims, s=0, m=12, dtype=np.float64):
    "Random float64 network (He weights, small random biases), inputs X (n_0, m) and labels Y (1, m)."
    seed(s)
    P = initialize_parameters_he(layers_dims, dtype=dtype)
    P = {k: v if k[0] == "W" else 0.1 * randn(*v.shape, dtype=dtype) for k, v in P.items()}
    X = randn(layers_dims[0], m, dtype=dtype)
    Y = (rand(1, m) > 0.5).astype(dtype)
    return P, X, Y


@pytest.mark.parametrize("lambd", [-0.1, -1, float("nan"), float("inf"), "1", None, True])
def test_bad_lambd(lambd):
    P, X, Y = _network([3, 4, 1])
    AL, caches = L_model_forward(X, P)
    with pytest.raises(ValueError, match="lambd must be a non-negative number, got"):
        compute_cost_with_regularization(AL, Y, P, lambd)
    with pytest.raises(ValueError, match="lambd must be a non-negative number, got"):
        backward_propagation_with_regularization(AL, Y, caches, P, lambd)
    with pytest.raises(ValueError, match="lambd must be a non-negative number, got"):
        regularized_model(X, Y, [3, 4, 1], num_iterations=1, lambd=lambd)


@pytest.mark.parametrize("keep_prob", [0, 0.0, -0.3, 1.0001, 2, "0.5", None, True])
def test_bad_keep_prob(keep_prob):
    P, X, Y = _network([3, 4, 1])
    with pytest.raises(ValueError, match=r"keep_prob must be a number in \(0, 1\]"):
        dropout_forward(X, keep_prob)
    with pytest.raises(ValueError, match=r"keep_prob must be a number in \(0, 1\]"):
        forward_propagation_with_dropout(X, P, keep_prob)
    with pytest.raises(ValueError, match=r"keep_prob must be a number in \(0, 1\]"):
        regularized_model(X, Y, [3, 4, 1], num_iterations=1, keep_prob=keep_prob)


def test_backward_keep_prob_must_match_forward():
    P, X, Y = _network([3, 4, 1])
    AL, caches = forward_propagation_with_dropout(X, P, 0.7)
    with pytest.raises(ValueError, match=r"keep_prob must be 0.7 \(the keep_prob of the forward pass\), got 0.5"):
        backward_propagation_with_dropout(AL, Y, caches, 0.5)


def test_l2_cost_with_lambd_zero_is_plain_cost():
    for dims in ARCHITECTURES:
        P, X, Y = _network(dims)
        AL, _ = L_model_forward(X, P)
        assert compute_cost_with_regularization(AL, Y, P, 0) == compute_cost(AL, Y)
        assert compute_cost_with_regularization(AL, Y, P, 0.5) > compute_cost(AL, Y)


def test_l2_cost_penalty_value():
    P, X, Y = _network([3, 4, 2, 1])
    AL, _ = L_model_forward(X, P)
    m, lambd = X.shape[1], 0.3
    frob = sum(float((to_numpy(P[f"W{l}"]) ** 2).sum()) for l in (1, 2, 3))
    got = compute_cost_with_regularization(AL, Y, P, lambd) - compute_cost(AL, Y)
    assert got == pytest.approx(lambd / (2 * m) * frob, rel=1e-12)


@pytest.mark.parametrize("dims", ARCHITECTURES)
@pytest.mark.parametrize("lambd", [0.0, 0.7])
def test_l2_gradient_check(dims, lambd):
    P, X, Y = _network(dims, s=1)
    AL, caches = L_model_forward(X, P)
    grads = backward_propagation_with_regularization(AL, Y, caches, P, lambd)
    d = grad_check(lambda: compute_cost_with_regularization(L_model_forward(X, P)[0], Y, P, lambd), P, grads, tol=1e-7)
    assert d["all"] < 1e-7


def test_l2_gradient_adds_weight_decay_only():
    P, X, Y = _network([3, 5, 1])
    AL, caches = L_model_forward(X, P)
    g0 = L_model_backward(AL, Y, caches)
    g = backward_propagation_with_regularization(AL, Y, caches, P, 0.9)
    m = X.shape[1]
    for l in (1, 2):
        np.testing.assert_allclose(to_numpy(g[f"dW{l}"]), to_numpy(g0[f"dW{l}"] + 0.9 / m * P[f"W{l}"]), rtol=1e-12)
        np.testing.assert_array_equal(to_numpy(g[f"db{l}"]), to_numpy(g0[f"db{l}"]))


@pytest.mark.parametrize("dims,keep_prob", [([3, 5, 1], 0.7), ([4, 6, 5, 3, 1], 0.5)])
def test_dropout_gradient_check_with_fixed_mask(dims, keep_prob):
    P, X, Y = _network(dims, s=2)

    def forward():
        seed(11)  # the masks are the forward pass's only draws: reseeding fixes them
        return forward_propagation_with_dropout(X, P, keep_prob)

    AL, caches = forward()
    assert any(to_numpy(c.dropout_cache.D).mean() < 1 for c in caches[:-1])  # some unit really was dropped
    grads = backward_propagation_with_dropout(AL, Y, caches, keep_prob)
    d = grad_check(lambda: compute_cost(forward()[0], Y), P, grads, tol=1e-7)
    assert d["all"] < 1e-7


def test_dropout_gradient_check_fails_without_fixed_mask():
    P, X, Y = _network([4, 6, 5, 3, 1], s=2)
    seed(11)
    AL, caches = forward_propagation_with_dropout(X, P, 0.5)
    grads = backward_propagation_with_dropout(AL, Y, caches, 0.5)
    with pytest.raises(AssertionError, match="gradient check failed"):
        grad_check(lambda: compute_cost(forward_propagation_with_dropout(X, P, 0.5)[0], Y), P, grads, tol=1e-7)


@pytest.mark.parametrize("dims", ARCHITECTURES)
def test_keep_prob_one_equals_plain_model(dims):
    P, X, Y = _network(dims, s=3, dtype=np.float32)
    AL, caches = L_model_forward(X, P)
    seed(0); state = to_numpy(rand(3))
    seed(0)
    AL1, caches1 = forward_propagation_with_dropout(X, P, keep_prob=1)
    np.testing.assert_array_equal(to_numpy(rand(3)), state)  # keep_prob = 1 draws nothing
    np.testing.assert_array_equal(to_numpy(AL1), to_numpy(AL))
    g, g1 = L_model_backward(AL, Y, caches), backward_propagation_with_dropout(AL1, Y, caches1, keep_prob=1)
    for l in range(1, len(dims)):
        np.testing.assert_array_equal(to_numpy(g1[f"dW{l}"]), to_numpy(g[f"dW{l}"]))
        np.testing.assert_array_equal(to_numpy(g1[f"db{l}"]), to_numpy(g[f"db{l}"]))


def test_dropout_same_seed_same_mask():
    P, X, Y = _network([4, 6, 5, 1])
    seed(4); AL_a, caches_a = forward_propagation_with_dropout(X, P, 0.6)
    seed(4); AL_b, caches_b = forward_propagation_with_dropout(X, P, 0.6)
    seed(5); AL_c, _ = forward_propagation_with_dropout(X, P, 0.6)
    np.testing.assert_array_equal(to_numpy(AL_a), to_numpy(AL_b))
    for c_a, c_b in zip(caches_a[:-1], caches_b[:-1]):
        np.testing.assert_array_equal(to_numpy(c_a.dropout_cache.D), to_numpy(c_b.dropout_cache.D))
    assert (to_numpy(AL_a) != to_numpy(AL_c)).any()


@pytest.mark.parametrize("keep_prob", [0.3, 0.5, 0.9])
def test_dropout_preserves_expected_value(keep_prob):
    seed(123)
    N = 1_000_000
    A = 0.5 + rand(1000, 1000, dtype=np.float64)  # fixed positive activations
    A_tilde, cache = dropout_forward(A, keep_prob)
    assert cache.keep_prob == keep_prob
    D, A_np, A_tilde = to_numpy(cache.D), to_numpy(A), to_numpy(A_tilde)
    # each entry is A / p (kept) or 0 (dropped)
    np.testing.assert_allclose(A_tilde[D], A_np[D] / keep_prob, rtol=1e-15)
    assert (A_tilde[~D] == 0).all()
    # the mean of A_tilde / A over N independent entries: 1 within 5 standard deviations sqrt((1-p)/(pN))
    sd = np.sqrt((1 - keep_prob) / (keep_prob * N))
    assert abs((A_tilde / A_np).mean() - 1) < 5 * sd
    # and the mean activation itself is preserved
    assert abs(A_tilde.mean() / A_np.mean() - 1) < 5 * sd * 1.2
    # the fraction of kept units is keep_prob within 5 standard deviations
    assert abs(D.mean() - keep_prob) < 5 * np.sqrt(keep_prob * (1 - keep_prob) / N)


def test_dropout_backward_uses_the_mask():
    seed(7)
    A = rand(6, 9, dtype=np.float64) + 0.1
    A_tilde, cache = dropout_forward(A, 0.4)
    dA_tilde = randn(6, 9, dtype=np.float64)
    dA = to_numpy(dropout_backward(dA_tilde, cache))
    D = to_numpy(cache.D)
    np.testing.assert_allclose(dA, to_numpy(dA_tilde) * D / 0.4, rtol=1e-15)
    assert (dA[~D] == 0).all()
    with pytest.raises(ValueError, match=r"mask's shape \(6, 9\)"):
        dropout_backward(dA_tilde.T, cache)


def test_regularized_model_runs_and_records_costs():
    P, X, Y = _network([4, 6, 1], m=40, dtype=np.float32)
    seed(0)
    params, costs = regularized_model(X, Y, [4, 6, 1], learning_rate=0.1, num_iterations=500, lambd=0.2, keep_prob=0.8)
    assert len(costs) == 5 and all(np.isfinite(costs))
    assert sorted(params) == ["W1", "W2", "b1", "b2"] and params["W1"].dtype == np.float32
    # without dropout the cost goes down
    seed(0)
    _, costs_plain = regularized_model(X, Y, [4, 6, 1], learning_rate=0.1, num_iterations=500)
    assert costs_plain[-1] < costs_plain[0]


def test_dropout_caches_are_named():
    P, X, Y = _network([4, 6, 5, 1])
    _, cache = dropout_forward(X, 0.6)
    assert isinstance(cache, DropoutCache) and cache._fields == ("D", "keep_prob") and cache.keep_prob == 0.6
    assert dropout_forward(X, 1)[1] == DropoutCache(None, 1.0)
    seed(1)
    _, caches = forward_propagation_with_dropout(X, P, 0.6)
    assert all(isinstance(c, DropoutLayerCache) and isinstance(c.linear_activation_cache, LinearActivationCache) for c in caches)
    assert caches[-1].dropout_cache.D is None  # no dropout on the output
    Z1 = to_numpy(caches[0].linear_activation_cache.activation_cache)
    np.testing.assert_allclose(to_numpy(caches[1].linear_activation_cache.linear_cache.A_prev),
                               np.maximum(Z1, 0) * to_numpy(caches[0].dropout_cache.D) / 0.6, rtol=1e-15)


def test_dropout_backward_accepts_a_plain_tuple():
    seed(8)
    A = rand(3, 5, dtype=np.float64)
    _, cache = dropout_forward(A, 0.5)
    dA = randn(3, 5, dtype=np.float64)
    np.testing.assert_array_equal(to_numpy(dropout_backward(dA, tuple(cache))), to_numpy(dropout_backward(dA, cache)))


def test_regularized_model_without_regularizers_is_the_plain_model():
    "lambd = 0, keep_prob = 1: the same training loop as train_with_initialization('he'), to the bit."
    _, X, Y = _network([4, 6, 1], m=30, dtype=np.float32)
    seed(0); P1, c1 = regularized_model(X, Y, [4, 6, 3, 1], learning_rate=0.1, num_iterations=250)
    seed(0); P2, c2 = train_with_initialization(X, Y, [4, 6, 3, 1], "he", learning_rate=0.1, num_iterations=250)
    assert c1 == c2 and len(c1) == 3
    for k in P2: np.testing.assert_array_equal(to_numpy(P1[k]), to_numpy(P2[k]))


def test_regularized_model_prints_every_1000_iterations(capsys):
    _, X, Y = _network([3, 4, 1], m=20, dtype=np.float32)
    seed(0)
    regularized_model(X, Y, [3, 4, 1], learning_rate=0.1, num_iterations=2001, lambd=0.1, keep_prob=0.9, print_cost=True)
    lines = capsys.readouterr().out.splitlines()
    assert [l.split(":")[0] for l in lines] == [f"Cost after iteration {i}" for i in (0, 1000, 2000)]


def test_bad_num_iterations():
    _, X, Y = _network([3, 4, 1])
    for bad in (-1, 0, 2.5, True):
        with pytest.raises(ValueError, match="num_iterations must be a positive int"):
            regularized_model(X, Y, [3, 4, 1], num_iterations=bad)


# ---- the data checks (dlnotes.data.check_data, as in the layer API) -------------------------------------------

@pytest.mark.parametrize("bad, said", [(np.nan, "1 NaN and 0 infinite"), (np.inf, "0 NaN and 1 infinite")])
def test_regularized_model_refuses_nan_in_X(bad, said):
    _, X, Y = _network([3, 4, 1])
    X = to_numpy(X).copy(); X[2, 0] = bad
    for kw in ({}, {"lambd": 0.1}, {"keep_prob": 0.8}):
        with pytest.raises(ValueError, match=rf"X contains {said} values \(of 36\)"):
            regularized_model(X, Y, [3, 4, 1], num_iterations=200, **kw)


def test_regularized_model_refuses_empty_X_and_no_iterations():
    _, X, Y = _network([3, 4, 1])
    with pytest.raises(ValueError, match=r"X is empty: it holds no examples \(shape \(3, 0\)\)"):
        regularized_model(X[:, :0], Y[:, :0], [3, 4, 1], num_iterations=5)
    with pytest.raises(ValueError, match="num_iterations must be a positive int, got 0"):
        regularized_model(X, Y, [3, 4, 1], num_iterations=0)


def test_regularized_model_blames_X_given_examples_in_rows():
    _, X, Y = _network([3, 4, 1])
    with pytest.raises(ValueError, match=r"X has shape \(12, 3\) but layers_dims\[0\] is 3: X must be \(n_x, m\) = \(3, m\) with one example per column \(examples on the wrong axis\? try X.T\)"):
        regularized_model(X.T, Y, [3, 4, 1], num_iterations=5, lambd=0.1)
    with pytest.raises(ValueError, match=r"Y must have shape \(1, 12\) \(one label per column of X\), got \(1, 3\)"):
        regularized_model(X, Y[:, :3], [3, 4, 1], num_iterations=5)


def test_regularized_model_takes_lists_and_checks_the_learning_rate():
    _, X, Y = _network([3, 4, 1], dtype=np.float64)
    seed(5); P, costs = regularized_model(X, Y, [3, 4, 1], learning_rate=0.1, num_iterations=150, lambd=0.1, keep_prob=0.8)
    seed(5); P_l, costs_l = regularized_model(to_numpy(X).tolist(), to_numpy(Y).tolist(), [3, 4, 1], learning_rate=0.1,
                                              num_iterations=150, lambd=0.1, keep_prob=0.8)
    assert costs_l == costs
    for k in P: np.testing.assert_array_equal(to_numpy(P_l[k]), to_numpy(P[k]))
    for lr in ("0.3", None, 0):
        with pytest.raises(ValueError, match="learning_rate must be a positive number"):
            regularized_model(X, Y, [3, 4, 1], learning_rate=lr, num_iterations=5)
