"""dlnotes.seq.rnn: the RNN functional API in the notes' layout (columns are examples).

The cell and the loop are compared with a plain per-example reference written here with NumPy scalars and
vectors; every backward pass (cell, through time, loss and output layer, encoder-decoder) is checked against float64
central differences on shapes where every size differs; padding is checked to leave the states of the real steps
alone; every kind of bad input raises a ValueError that names the argument and the shapes.
"""
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy, get_rng
from dlnotes.gradcheck import grad_check
from dlnotes.seq.rnn import (RNNCellCache, RNNCaches, check_shape, check_parameters, softmax, pad_sequences,
                             one_hot_sequences, rnn_cell_forward, rnn_forward, rnn_cell_backward, rnn_backward,
                             sequence_cross_entropy, output_backward, rnn_parameters, rnn_generate)

N_X, N_A, N_Y, M, T = 3, 5, 4, 2, 7  # all different, so a transposed or swapped axis cannot pass


def fails(fn, contains, exc=ValueError):
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


def _params(n_x=N_X, n_a=N_A, n_y=N_Y, s=0):
    seed(s)
    return {"Wax": randn(n_a, n_x, dtype=np.float64), "Waa": randn(n_a, n_a, dtype=np.float64) * 0.7,
            "ba": randn(n_a, 1, dtype=np.float64), "Wya": randn(n_y, n_a, dtype=np.float64), "by": randn(n_y, 1, dtype=np.float64)}


def _reference_forward(x, a0, p):
    "Example by example, step by step, with 1-D vectors: a<t> = tanh(Waa a + Wax x + ba), y = softmax(Wya a + by)."
    x, a0 = to_numpy(x), to_numpy(a0)
    P = {k: to_numpy(v) for k, v in p.items()}
    n_a, m, T_x = a0.shape[0], x.shape[1], x.shape[2]
    a, y = np.zeros((n_a, m, T_x)), np.zeros((P["Wya"].shape[0], m, T_x))
    for i in range(m):
        h = a0[:, i]
        for t in range(T_x):
            h = np.tanh(P["Waa"] @ h + P["Wax"] @ x[:, i, t] + P["ba"][:, 0])
            z = P["Wya"] @ h + P["by"][:, 0]
            a[:, i, t], y[:, i, t] = h, np.exp(z) / np.exp(z).sum()
    return a, y


# ---------------------------------------------------------------- forward
def test_cell_and_loop_match_the_reference():
    p = _params()
    x, a0 = randn(N_X, M, T, dtype=np.float64), randn(N_A, M, dtype=np.float64)
    a, y_pred, caches = rnn_forward(x, a0, p)
    a_ref, y_ref = _reference_forward(x, a0, p)
    np.testing.assert_allclose(to_numpy(a), a_ref, atol=1e-12)
    np.testing.assert_allclose(to_numpy(y_pred), y_ref, atol=1e-12)
    assert isinstance(caches, RNNCaches) and len(caches.caches) == T and caches.x is x
    a1, y1, c1 = rnn_cell_forward(x[:, :, 0], a0, p)
    np.testing.assert_allclose(to_numpy(a1), a_ref[:, :, 0], atol=1e-12)
    assert isinstance(c1, RNNCellCache) and c1.a_prev is a0 and c1.xt.shape == (N_X, M)


def test_float32_stays_float32_and_softmax_is_stable():
    p = {k: v.astype(np.float32) for k, v in _params().items()}
    a, y, _ = rnn_forward(randn(N_X, M, T), randn(N_A, M), p)
    assert a.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_allclose(to_numpy(y).sum(axis=0), 1, atol=1e-5)
    s = to_numpy(softmax(np.array([[1e4, -1e4, 0.], [1e4, 0., 0.]])))
    assert np.isfinite(s).all()
    np.testing.assert_allclose(s, [[0.5, 0., 0.5], [0.5, 1., 0.5]])
    np.testing.assert_allclose(to_numpy(softmax(np.array([[0., 1.]]), axis=1)), [[1 / (1 + np.e), np.e / (1 + np.e)]])


def test_one_hot_and_padding():
    idx, L = pad_sequences([[2, 0], [1], [0, 1, 2]])
    np.testing.assert_array_equal(idx, [[2, 0, -1], [1, -1, -1], [0, 1, 2]])
    np.testing.assert_array_equal(L, [2, 1, 3])
    x = to_numpy(one_hot_sequences(idx, 4))
    assert x.shape == (4, 3, 3)
    for i in range(3):
        for t in range(3):
            want = np.zeros(4)
            if idx[i, t] >= 0: want[idx[i, t]] = 1
            np.testing.assert_array_equal(x[:, i, t], want)
    assert pad_sequences([])[0].shape == (0, 0)
    assert one_hot_sequences(idx, 4, dtype=np.float64).dtype == np.float64


def test_padding_leaves_the_real_steps_alone():
    p = _params(n_x=4)
    idx, L = pad_sequences([[1, 2, 3, 0], [3], [2, 2]])
    x = one_hot_sequences(idx, 4, dtype=np.float64)
    a, y, _ = rnn_forward(x, np.zeros((N_A, 3)), p)
    for i, T_i in enumerate(L):
        a_i, y_i, _ = rnn_forward(x[:, i:i + 1, :T_i], np.zeros((N_A, 1)), p)
        np.testing.assert_allclose(to_numpy(a[:, i:i + 1, :T_i]), to_numpy(a_i), atol=1e-13)
        np.testing.assert_allclose(to_numpy(y[:, i:i + 1, :T_i]), to_numpy(y_i), atol=1e-13)


def test_rnn_parameters_are_seeded_and_scaled():
    p1, p2 = rnn_parameters(3, 50, 2, seed=4), rnn_parameters(3, 50, 2, seed=4)
    for k in p1: np.testing.assert_array_equal(to_numpy(p1[k]), to_numpy(p2[k]))
    assert not np.array_equal(to_numpy(rnn_parameters(3, 50, 2, seed=5)["Waa"]), to_numpy(p1["Waa"]))
    assert abs(float(to_numpy(p1["Waa"]).std()) - 1 / np.sqrt(50)) < 0.02  # N(0, 1/fan_in)
    assert not to_numpy(p1["ba"]).any() and not to_numpy(p1["by"]).any()


# ---------------------------------------------------------------- backward, by hand and in float64
def test_cell_backward_by_hand():
    p = {"Wax": np.array([[2.]]), "Waa": np.array([[3.]]), "ba": np.zeros((1, 1)), "Wya": np.ones((1, 1)), "by": np.zeros((1, 1))}
    g = rnn_cell_backward(np.array([[2., 1.]]), RNNCellCache(np.array([[0.5, 0.]]), np.array([[-1., 2.]]), np.array([[4., -1.]]), p))
    assert set(g) == {"dxt", "da_prev", "dWax", "dWaa", "dba"}
    np.testing.assert_allclose(g["dxt"], [[3., 2.]]); np.testing.assert_allclose(g["da_prev"], [[4.5, 3.]])
    np.testing.assert_allclose(g["dWax"], [[5.]]); np.testing.assert_allclose(g["dWaa"], [[0.5]]); np.testing.assert_allclose(g["dba"], [[2.5]])


@pytest.mark.parametrize("n_x,n_a,m", [(3, 5, 4), (1, 2, 1), (6, 3, 2)])
def test_cell_backward_gradcheck(n_x, n_a, m):
    p = _params(n_x, n_a, 2, s=1)
    xt, a_prev, R = randn(n_x, m, dtype=np.float64), randn(n_a, m, dtype=np.float64), randn(n_a, m, dtype=np.float64)
    g = rnn_cell_backward(R, rnn_cell_forward(xt, a_prev, p)[2])
    for k, v in {"dxt": xt, "da_prev": a_prev, "dWax": p["Wax"], "dWaa": p["Waa"], "dba": p["ba"]}.items():
        assert g[k].shape == v.shape, k
    grad_check(lambda: (rnn_cell_forward(xt, a_prev, p)[0] * R).sum(), {"xt": xt, "a_prev": a_prev, **p},
               {"xt": g["dxt"], "a_prev": g["da_prev"], "Wax": g["dWax"], "Waa": g["dWaa"], "ba": g["dba"]},
               keys=["xt", "a_prev", "Wax", "Waa", "ba"], tol=1e-7)


@pytest.mark.parametrize("T_x", [1, 2, 7])
def test_backward_through_time_gradcheck(T_x):
    p = _params(s=2)
    x, a0, R = randn(N_X, M, T_x, dtype=np.float64), randn(N_A, M, dtype=np.float64), randn(N_A, M, T_x, dtype=np.float64)
    g = rnn_backward(R, rnn_forward(x, a0, p)[2])
    assert set(g) == {"dx", "da0", "dWax", "dWaa", "dba"}
    grad_check(lambda: (rnn_forward(x, a0, p)[0] * R).sum(), {"x": x, "a0": a0, **p},
               {"x": g["dx"], "a0": g["da0"], "Wax": g["dWax"], "Waa": g["dWaa"], "ba": g["dba"]},
               keys=["x", "a0", "Wax", "Waa", "ba"], tol=1e-7)


def test_gradient_only_at_the_last_step_flows_back_to_every_input():
    "da zero except at T_x: dx<t> comes only through the recurrence, and is non-zero at every t."
    p = _params(s=3)
    x, a0 = randn(N_X, M, T, dtype=np.float64), randn(N_A, M, dtype=np.float64)
    da = np.zeros((N_A, M, T)); da[:, :, -1] = 1
    g = rnn_backward(da, rnn_forward(x, a0, p)[2])
    assert all(np.abs(to_numpy(g["dx"][:, :, t])).max() > 0 for t in range(T))
    grad_check(lambda: rnn_forward(x, a0, p)[0][:, :, -1].sum(), {"x": x, "a0": a0}, {"x": g["dx"], "a0": g["da0"]}, tol=1e-7)


def _full_loss(x, y, a0, p):
    a, y_pred, caches = rnn_forward(x, a0, p)
    J, dz = sequence_cross_entropy(y_pred, y)
    da, dWya, dby = output_backward(dz, a, p["Wya"])
    return J, {**rnn_backward(da, caches), "dWya": dWya, "dby": dby}


def test_loss_output_layer_and_rnn_gradcheck():
    p = _params(s=4)
    x, a0 = randn(N_X, M, T, dtype=np.float64), randn(N_A, M, dtype=np.float64)
    y = one_hot_sequences(get_rng(5).integers(-1, N_Y, (M, T)), N_Y, dtype=np.float64)
    J, g = _full_loss(x, y, a0, p)
    grad_check(lambda: _full_loss(x, y, a0, p)[0], {"x": x, "a0": a0, **p}, {"x": g["dx"], "a0": g["da0"], **{k: g["d" + k] for k in p}}, tol=1e-7)


def test_cross_entropy_against_a_loop_and_ignores_untargeted_steps():
    seed(6)
    y_pred = softmax(randn(N_Y, M, T, dtype=np.float64))
    tgt = get_rng(6).integers(-1, N_Y, (M, T))
    J, dz = sequence_cross_entropy(y_pred, one_hot_sequences(tgt, N_Y, dtype=np.float64))
    P = to_numpy(y_pred)
    ref = -sum(np.log(P[tgt[i, t], i, t]) for i in range(M) for t in range(T) if tgt[i, t] >= 0) / M
    np.testing.assert_allclose(J, ref, rtol=1e-12)
    dz = to_numpy(dz)
    for i in range(M):
        for t in range(T):
            if tgt[i, t] < 0: assert not dz[:, i, t].any()
            else: np.testing.assert_allclose(dz[:, i, t], (P[:, i, t] - np.eye(N_Y)[tgt[i, t]]) / M)
    J0, _ = sequence_cross_entropy(np.array([[[0.], [1.]]]).reshape(2, 1, 1), np.array([1., 0.]).reshape(2, 1, 1))
    assert np.isfinite(J0) and J0 > 700  # log of a probability 0 is clipped at the smallest float, not -inf


def test_encoder_decoder_gradcheck():
    pe, pd = _params(2, 4, 1, s=7), _params(3, 4, 3, s=8)
    x = randn(2, M, 5, dtype=np.float64)
    xd = randn(3, M, 3, dtype=np.float64)
    y = one_hot_sequences(get_rng(9).integers(0, 3, (M, 3)), 3, dtype=np.float64)

    def loss():
        a_e, _, c_e = rnn_forward(x, np.zeros((4, M)), pe)
        J, g_d = _full_loss(xd, y, a_e[:, :, -1], pd)
        da = np.zeros_like(a_e); da[:, :, -1] = g_d["da0"]
        return J, rnn_backward(da, c_e), g_d
    J, g_e, g_d = loss()
    grad_check(lambda: loss()[0], {"Wax": pe["Wax"], "Waa": pe["Waa"], "ba": pe["ba"], **{"dec_" + k: v for k, v in pd.items()}},
               {"Wax": g_e["dWax"], "Waa": g_e["dWaa"], "ba": g_e["dba"], **{"dec_" + k: g_d["d" + k] for k in pd}}, tol=1e-7)


# ---------------------------------------------------------------- generation
def test_generate_feeds_the_argmax_back():
    p = _params(n_x=N_Y, s=10)
    seed(11)
    x1, a0 = one_hot_sequences(np.array([[0], [2]]), N_Y, dtype=np.float64)[:, :, 0], randn(N_A, 2, dtype=np.float64)
    tokens = to_numpy(rnn_generate(x1, a0, p, 5))
    assert tokens.shape == (2, 5)
    xt, a = x1, a0  # the loop, by hand
    for t in range(5):
        a, y, _ = rnn_cell_forward(xt, a, p)
        k = to_numpy(y).argmax(axis=0)
        np.testing.assert_array_equal(tokens[:, t], k)
        xt = np.eye(N_Y)[:, k]


# ---------------------------------------------------------------- bad input
def test_bad_input():
    p = _params()
    xt, a_prev, x, a0 = randn(N_X, M), randn(N_A, M), randn(N_X, M, T), randn(N_A, M)
    fails(lambda: rnn_cell_forward(xt[None], a_prev, p), "rnn_cell_forward: xt must be a 2-D array (n_x, m), got shape (1, 3, 2)")
    fails(lambda: rnn_cell_forward(xt[:2], a_prev, p), "xt must be of shape (n_x, m) = (3, ?), got shape (2, 2)")
    fails(lambda: rnn_cell_forward(xt, a_prev[:, :1], p), "a_prev must be of shape (n_a, m) = (5, 2), got shape (5, 1)")
    fails(lambda: rnn_cell_forward(xt, a_prev[:3], p), "a_prev must be of shape (n_a, m) = (5, 2), got shape (3, 2)")
    fails(lambda: rnn_cell_forward(xt, a_prev.tolist(), p), "a_prev must be an array of shape (n_a, m), got list")
    fails(lambda: rnn_forward(x[:, :, 0], a0, p), "rnn_forward: x must be a 3-D array (n_x, m, T_x), got shape (3, 2)")
    fails(lambda: rnn_forward(x[None], a0, p), "x must be a 3-D array (n_x, m, T_x), got shape (1, 3, 2, 7)")
    fails(lambda: rnn_forward(x, a0[:, :1], p), "a0 must be of shape (n_a, m) = (5, 2), got shape (5, 1)")
    fails(lambda: rnn_forward(x, a0[1:], p), "a0 must be of shape (n_a, m) = (5, 2), got shape (4, 2)")
    for k in p:
        fails(lambda: rnn_forward(x, a0, {j: v for j, v in p.items() if j != k}), f"parameters must be a dict with keys Wax, Waa, ba, Wya, by, got a dict without {k!r}")
    fails(lambda: rnn_forward(x, a0, {**p, "Waa": randn(5, 4)}), "parameters['Waa'] must be of shape (n_a, n_a) = (5, 5), got shape (5, 4)")
    fails(lambda: rnn_forward(x, a0, {**p, "by": randn(3, 1)}), "parameters['by'] must be of shape (n_y, 1) = (4, 1), got shape (3, 1)")
    fails(lambda: rnn_forward(x, a0, {**p, "ba": randn(5)}), "parameters['ba'] must be a 2-D array (n_a, 1), got shape (5,)")
    fails(lambda: rnn_forward(x, a0, {**p, "Wya": randn(4, 6)}), "parameters['Wya'] must be of shape (n_y, n_a) = (?, 5), got shape (4, 6)")
    fails(lambda: rnn_forward(x, a0, None), "parameters must be a dict with keys Wax, Waa, ba, Wya, by, got NoneType")
    fails(lambda: rnn_backward(randn(N_A, M, T - 1), rnn_forward(x, a0, p)[2]), "rnn_backward: da must be of shape (n_a, m, T_x) = (5, 2, 7), got shape (5, 2, 6)")
    fails(lambda: rnn_generate(xt, a0, p, 3), "n_y = n_x (outputs are fed back), got n_y=4, n_x=3")
    fails(lambda: rnn_generate(randn(N_Y, M), a0, _params(n_x=N_Y), 0), "rnn_generate: T_y must be a positive int, got 0")
    fails(lambda: sequence_cross_entropy(randn(N_Y, M, T), randn(N_Y, M + 1, T)), "y must be of shape (n_y, m, T) = (4, 2, 7), got shape (4, 3, 7)")
    fails(lambda: one_hot_sequences(np.array([[0, -2]]), 3), "indices must be in [0, 3) or -1 (padding), got values from -2 to 0")
    fails(lambda: one_hot_sequences(np.array([[0]]), 0), "one_hot_sequences: vocab_size must be a positive int, got 0")
    fails(lambda: pad_sequences([[1]], pad=0.5), "pad must be an int, got 0.5")
    fails(lambda: rnn_parameters(0, 2, 2), "n_x must be a positive int, got 0")
    fails(lambda: check_parameters({"W": np.zeros((2, 3))}, {"W": ("n", "n")}, {}), "parameters['W'] must be of shape (n, n) = (2, 2), got shape (2, 3)")
    assert check_shape(np.zeros((2, 3, 4)), "x", ("n_x", "m", "T_x"), {}) == {"n_x": 2, "m": 3, "T_x": 4}


def test_every_public_function_documents_its_arguments():
    import inspect
    from fastcore.docments import docments
    import dlnotes.seq.rnn as mod
    for name in mod.__all__:
        f = getattr(mod, name)
        if inspect.isfunction(f):
            assert f.__doc__, name
            assert not [k for k, v in docments(f).items() if v is None and k != "return"], name
