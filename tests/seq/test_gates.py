"""dlnotes.seq.gates: GRU and LSTM in the notes' layout (columns are examples).

The LSTM is compared with PyTorch's nn.LSTM (forward states and autograd gradients, weights mapped gate by gate);
the GRU (reset gate before the product, as in the notes, which PyTorch does not offer) with a per-example loop written
here; both backward passes by hand on one unit and against float64 central differences, cell by cell and through time,
on shapes where every size differs; the memory cell's direct path multiplies the gradient by the forget gate; bad input
raises a ValueError naming the argument and the shapes.
"""
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy, get_rng
from dlnotes.gradcheck import grad_check
from dlnotes.seq.rnn import one_hot_sequences, sequence_cross_entropy, output_backward
from dlnotes.seq.gates import (GRU_SHAPES, LSTM_SHAPES, LSTM_GRADS, GateCaches, GRUCellCache, LSTMCellCache, sigmoid, gate_parameters,
                               gru_cell_forward, gru_forward, gru_cell_backward, gru_backward,
                               lstm_cell_forward, lstm_forward, lstm_cell_backward, lstm_backward)

N_X, N_A, N_Y, M, T = 3, 5, 4, 2, 6
GRU_KEYS, LSTM_KEYS = ["Wu", "bu", "Wr", "br", "Wc", "bc"], [k[1:] for k in LSTM_GRADS]


def fails(fn, contains, exc=ValueError):
    with pytest.raises(exc) as e: fn()
    assert contains in str(e.value), f"{contains!r} not in {str(e.value)!r}"


def _params(kind, n_x=N_X, n_a=N_A, n_y=N_Y, s=0):
    "float64 parameters with random biases, so that no gate sits at 1/2."
    seed(s)
    p = gate_parameters(kind, n_x, n_a, n_y, seed=s, dtype=np.float64)
    for k in p:
        if k.startswith("b"): p[k] = randn(*p[k].shape, dtype=np.float64)
    return p


def _sig(z): return 1 / (1 + np.exp(-z))


# ---------------------------------------------------------------- forward against independent references
def test_gru_matches_a_loop_reference():
    p = _params("gru")
    x, c0 = randn(N_X, M, T, dtype=np.float64), randn(N_A, M, dtype=np.float64)
    c, y, caches = gru_forward(x, c0, p)
    P = {k: to_numpy(v) for k, v in p.items()}
    for i in range(M):
        h = to_numpy(c0)[:, i]
        for t in range(T):
            xt = to_numpy(x)[:, i, t]
            u = _sig(P["Wu"] @ np.r_[h, xt] + P["bu"][:, 0])
            r = _sig(P["Wr"] @ np.r_[h, xt] + P["br"][:, 0])
            cand = np.tanh(P["Wc"] @ np.r_[r * h, xt] + P["bc"][:, 0])
            h = u * cand + (1 - u) * h
            z = P["Wy"] @ h + P["by"][:, 0]
            np.testing.assert_allclose(to_numpy(c)[:, i, t], h, atol=1e-12)
            np.testing.assert_allclose(to_numpy(y)[:, i, t], np.exp(z) / np.exp(z).sum(), atol=1e-12)
    assert isinstance(caches, GateCaches) and len(caches.caches) == T and isinstance(caches.caches[0], GRUCellCache)


def test_lstm_matches_pytorch():
    torch = pytest.importorskip("torch")
    p = _params("lstm", s=1)
    x, a0 = randn(N_X, M, T, dtype=np.float64), randn(N_A, M, dtype=np.float64)
    R = randn(N_A, M, T, dtype=np.float64)
    a, y, c, caches = lstm_forward(x, a0, p)
    g = lstm_backward(R, caches)

    lstm = torch.nn.LSTM(N_X, N_A, batch_first=False).double()
    P = {k: to_numpy(v) for k, v in p.items()}
    order = "fico"  # ours; PyTorch stacks the gates as i, f, g (our c), o
    torch_order = ["i", "f", "c", "o"]
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(np.concatenate([P["W" + gk][:, N_A:] for gk in torch_order])))
        lstm.weight_hh_l0.copy_(torch.tensor(np.concatenate([P["W" + gk][:, :N_A] for gk in torch_order])))
        lstm.bias_ih_l0.copy_(torch.tensor(np.concatenate([P["b" + gk][:, 0] for gk in torch_order])))
        lstm.bias_hh_l0.zero_()
    xt = torch.tensor(to_numpy(x).transpose(2, 1, 0), requires_grad=True)  # (T, m, n_x)
    h0 = torch.tensor(to_numpy(a0).T[None].copy(), requires_grad=True)
    out, _ = lstm(xt, (h0, torch.zeros_like(h0)))
    np.testing.assert_allclose(out.detach().numpy().transpose(2, 1, 0), to_numpy(a), atol=1e-12)
    (out * torch.tensor(to_numpy(R).transpose(2, 1, 0))).sum().backward()
    np.testing.assert_allclose(xt.grad.numpy().transpose(2, 1, 0), to_numpy(g["dx"]), atol=1e-10)
    np.testing.assert_allclose(h0.grad.numpy()[0].T, to_numpy(g["da0"]), atol=1e-10)
    gi, gh, gb = lstm.weight_ih_l0.grad.numpy(), lstm.weight_hh_l0.grad.numpy(), lstm.bias_ih_l0.grad.numpy()
    for j, gk in enumerate(torch_order):
        rows = slice(j * N_A, (j + 1) * N_A)
        np.testing.assert_allclose(to_numpy(g["dW" + gk]), np.concatenate([gh[rows], gi[rows]], axis=1), atol=1e-10)
        np.testing.assert_allclose(to_numpy(g["db" + gk])[:, 0], gb[rows], atol=1e-10)
    assert set(order) == set(torch_order)


def test_sigmoid_is_stable_and_exact():
    z = np.linspace(-30, 30, 61)
    np.testing.assert_allclose(to_numpy(sigmoid(z)), _sig(z), rtol=1e-12, atol=1e-300)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(to_numpy(sigmoid(np.array([-1e4, 1e4]))), [0., 1.])


def test_gate_parameters():
    g, l = gate_parameters("gru", 3, 5, 2, seed=0), gate_parameters("lstm", 3, 5, 2, seed=0, forget_bias=2.5)
    assert list(g) == list(GRU_SHAPES) and list(l) == list(LSTM_SHAPES)
    assert all(g[k].shape == (5, 8) for k in ("Wu", "Wr", "Wc")) and g["Wy"].shape == (2, 5)
    np.testing.assert_array_equal(to_numpy(l["bf"]), np.full((5, 1), 2.5))
    assert not to_numpy(l["bi"]).any() and not to_numpy(g["bu"]).any()
    np.testing.assert_array_equal(to_numpy(gate_parameters("lstm", 3, 5, 2, seed=0)["Wf"]), to_numpy(l["Wf"]))
    assert gate_parameters("lstm", 3, 5, 2, seed=0)["bf"].dtype == np.float32


# ---------------------------------------------------------------- backward by hand
def test_gru_cell_backward_by_hand():
    half = np.array([[0.5]])
    p = {"Wu": np.array([[1., 0.]]), "bu": np.zeros((1, 1)), "Wr": np.array([[0., 1.]]), "br": np.zeros((1, 1)),
         "Wc": np.array([[2., 1.]]), "bc": np.zeros((1, 1)), "Wy": np.ones((1, 1)), "by": np.zeros((1, 1))}
    g = gru_cell_backward(np.ones((1, 1)), GRUCellCache(half, np.ones((1, 1)), half, half, half, np.array([[2.]]), p))
    want = {"dxt": 9 / 16, "dc_prev": 3 / 4, "dWu": [-1 / 8, -1 / 4], "dbu": -1 / 8, "dWr": [3 / 16, 3 / 8], "dbr": 3 / 16,
            "dWc": [3 / 16, 3 / 4], "dbc": 3 / 8}
    assert set(g) == set(want)
    for k, v in want.items(): np.testing.assert_allclose(to_numpy(g[k]).ravel(), np.ravel(v), err_msg=k)


def test_lstm_cell_backward_by_hand():
    h, o, z = np.array([[0.5]]), np.ones((1, 1)), np.zeros((1, 1))
    p = {"Wf": np.array([[1., 0.]]), "bf": z, "Wi": np.array([[0., 1.]]), "bi": z, "Wc": np.array([[1., 1.]]), "bc": z,
         "Wo": np.array([[2., 0.]]), "bo": z, "Wy": o, "by": z}
    g = lstm_cell_backward(o, o, LSTMCellCache(h * h, np.arctanh(h), -o, o, h, h, h, h, 2 * o, p))
    np.testing.assert_allclose([float(g[k][0, 0]) for k in ("dxt", "da_prev", "dc_prev")], [11 / 16, 71 / 64, 11 / 16])
    for gk, dz in zip("fico", (11 / 32, 11 / 64, 33 / 64, 1 / 8)):
        np.testing.assert_allclose(to_numpy(g["dW" + gk]), [[-dz, 2 * dz]]); np.testing.assert_allclose(to_numpy(g["db" + gk]), [[dz]])


# ---------------------------------------------------------------- gradient checks in float64
@pytest.mark.parametrize("n_x,n_a,m", [(3, 5, 4), (1, 1, 1), (6, 2, 3)])
def test_gru_cell_gradcheck(n_x, n_a, m):
    p = _params("gru", n_x, n_a, 2, s=2)
    xt, c_prev, R = randn(n_x, m, dtype=np.float64), randn(n_a, m, dtype=np.float64), randn(n_a, m, dtype=np.float64)
    g = gru_cell_backward(R, gru_cell_forward(xt, c_prev, p)[2])
    grad_check(lambda: (gru_cell_forward(xt, c_prev, p)[0] * R).sum(), {"xt": xt, "c_prev": c_prev, **p},
               {"xt": g["dxt"], "c_prev": g["dc_prev"], **{k: g["d" + k] for k in GRU_KEYS}}, keys=["xt", "c_prev", *GRU_KEYS], tol=1e-6)


@pytest.mark.parametrize("n_x,n_a,m", [(3, 5, 4), (1, 1, 1), (6, 2, 3)])
def test_lstm_cell_gradcheck(n_x, n_a, m):
    p = _params("lstm", n_x, n_a, 2, s=3)
    xt, a_prev, c_prev = (randn(r, m, dtype=np.float64) for r in (n_x, n_a, n_a))
    Ra, Rc = randn(n_a, m, dtype=np.float64), randn(n_a, m, dtype=np.float64)
    def J():
        a, c, _, _ = lstm_cell_forward(xt, a_prev, c_prev, p)
        return (a * Ra).sum() + (c * Rc).sum()
    g = lstm_cell_backward(Ra, Rc, lstm_cell_forward(xt, a_prev, c_prev, p)[3])
    assert list(g) == ["dxt", "da_prev", "dc_prev", *LSTM_GRADS]
    grad_check(J, {"xt": xt, "a_prev": a_prev, "c_prev": c_prev, **p},
               {"xt": g["dxt"], "a_prev": g["da_prev"], "c_prev": g["dc_prev"], **{k: g["d" + k] for k in LSTM_KEYS}},
               keys=["xt", "a_prev", "c_prev", *LSTM_KEYS], tol=1e-7)


@pytest.mark.parametrize("T_x", [1, 2, 6])
def test_gru_backward_gradcheck(T_x):
    p = _params("gru", s=4)
    x, c0, R = randn(N_X, M, T_x, dtype=np.float64), randn(N_A, M, dtype=np.float64), randn(N_A, M, T_x, dtype=np.float64)
    g = gru_backward(R, gru_forward(x, c0, p)[2])
    assert set(g) == {"dx", "dc0", *("d" + k for k in GRU_KEYS)}
    grad_check(lambda: (gru_forward(x, c0, p)[0] * R).sum(), {"x": x, "c0": c0, **p},
               {"x": g["dx"], "c0": g["dc0"], **{k: g["d" + k] for k in GRU_KEYS}}, keys=["x", "c0", *GRU_KEYS], tol=1e-7)


@pytest.mark.parametrize("T_x", [1, 2, 6])
def test_lstm_backward_gradcheck(T_x):
    p = _params("lstm", s=5)
    x, a0, R = randn(N_X, M, T_x, dtype=np.float64), randn(N_A, M, dtype=np.float64), randn(N_A, M, T_x, dtype=np.float64)
    g = lstm_backward(R, lstm_forward(x, a0, p)[3])
    assert list(g) == ["dx", "da0", *LSTM_GRADS]
    grad_check(lambda: (lstm_forward(x, a0, p)[0] * R).sum(), {"x": x, "a0": a0, **p},
               {"x": g["dx"], "a0": g["da0"], **{k: g["d" + k] for k in LSTM_KEYS}}, keys=["x", "a0", *LSTM_KEYS], tol=1e-7)


def test_losses_through_both_networks_gradcheck():
    x, s0 = randn(N_X, M, T, dtype=np.float64), randn(N_A, M, dtype=np.float64)
    y = one_hot_sequences(get_rng(6).integers(-1, N_Y, (M, T)), N_Y, dtype=np.float64)
    def lstm_loss(p):
        a, y_pred, c, caches = lstm_forward(x, s0, p)
        J, dz = sequence_cross_entropy(y_pred, y)
        da, dWy, dby = output_backward(dz, a, p["Wy"])
        return J, {**lstm_backward(da, caches), "dWy": dWy, "dby": dby}
    def gru_loss(p):
        c, y_pred, caches = gru_forward(x, s0, p)
        J, dz = sequence_cross_entropy(y_pred, y)
        dc, dWy, dby = output_backward(dz, c, p["Wy"])
        return J, {**gru_backward(dc, caches), "dWy": dWy, "dby": dby}
    for loss, p, ds0 in ((lstm_loss, _params("lstm", s=7), "da0"), (gru_loss, _params("gru", s=8), "dc0")):
        _, g = loss(p)
        grad_check(lambda: loss(p)[0], {"x": x, "s0": s0, **p}, {"x": g["dx"], "s0": g[ds0], **{k: g["d" + k] for k in p}}, tol=1e-7)


# ---------------------------------------------------------------- the memory cell's path, and the gates open
def test_cell_path_multiplies_by_the_forget_gate():
    p = _params("lstm", s=9)
    x = randn(N_X, M, T, dtype=np.float64)
    cells = lstm_forward(x, np.zeros((N_A, M)), p)[3].caches
    dc, prod = randn(N_A, M, dtype=np.float64), 1.0
    dc_T = dc.copy()
    for cache in reversed(cells):
        g = lstm_cell_backward(np.zeros((N_A, M)), dc, cache)
        np.testing.assert_allclose(to_numpy(g["dc_prev"]), to_numpy(cache.ft * dc), rtol=1e-14)
        dc, prod = g["dc_prev"], prod * cache.ft
    np.testing.assert_allclose(to_numpy(dc), to_numpy(dc_T * prod), rtol=1e-12)


def test_gates_open_gru_averages_lstm_adds():
    one = np.ones((1, 1))
    pg = {"Wu": np.zeros((1, 2)), "bu": 30 * one, "Wr": np.zeros((1, 2)), "br": 30 * one, "Wc": np.array([[0., 1.]]), "bc": 0 * one,
          "Wy": one, "by": 0 * one}
    pl = {"Wf": np.zeros((1, 2)), "bf": 30 * one, "Wi": np.zeros((1, 2)), "bi": 30 * one, "Wc": np.array([[0., 1.]]), "bc": 0 * one,
          "Wo": np.zeros((1, 2)), "bo": 30 * one, "Wy": one, "by": 0 * one}
    x = np.ones((1, 1, 10))
    np.testing.assert_allclose(to_numpy(gru_forward(x, np.zeros((1, 1)), pg)[0])[0, 0], np.full(10, np.tanh(1)), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(lstm_forward(x, np.zeros((1, 1)), pl)[2])[0, 0], np.tanh(1) * np.arange(1, 11), rtol=1e-12)
    pg["bu"] = -30 * one  # update gate shut: the GRU keeps c0 for ever
    np.testing.assert_allclose(to_numpy(gru_forward(x, 0.3 * one, pg)[0])[0, 0], np.full(10, 0.3), atol=1e-11)  # Γu = σ(−30) ≈ 1e-13


# ---------------------------------------------------------------- bad input
def test_bad_input():
    pl, pg = _params("lstm"), _params("gru")
    xt, a_prev, c_prev, x, a0 = randn(N_X, M), randn(N_A, M), randn(N_A, M), randn(N_X, M, T), randn(N_A, M)
    fails(lambda: lstm_cell_forward(xt[None], a_prev, c_prev, pl), "lstm_cell_forward: xt must be a 2-D array (n_x, m), got shape (1, 3, 2)")
    fails(lambda: lstm_cell_forward(xt[:1], a_prev, c_prev, pl), "xt must be of shape (n_x, m) = (3, ?), got shape (1, 2)")
    fails(lambda: lstm_cell_forward(xt, a_prev[:2], c_prev, pl), "a_prev must be of shape (n_a, m) = (5, 2), got shape (2, 2)")
    fails(lambda: lstm_cell_forward(xt, a_prev, c_prev[:, :1], pl), "c_prev must be of shape (n_a, m) = (5, 2), got shape (5, 1)")
    fails(lambda: lstm_cell_forward(xt, a_prev, c_prev.tolist(), pl), "c_prev must be an array of shape (n_a, m), got list")
    fails(lambda: lstm_forward(x[:, :, 0], a0, pl), "lstm_forward: x must be a 3-D array (n_x, m, T_x), got shape (3, 2)")
    fails(lambda: lstm_forward(x, a0[:, :1], pl), "lstm_forward: a0 must be of shape (n_a, m) = (5, 2), got shape (5, 1)")
    for k in LSTM_SHAPES:
        fails(lambda: lstm_forward(x, a0, {j: v for j, v in pl.items() if j != k}), f"got a dict without {k!r}")
    fails(lambda: lstm_forward(x, a0, {**pl, "Wo": randn(5, 9)}), "parameters['Wo'] must be of shape (n_a, n_a+n_x) = (5, 8), got shape (5, 9)")
    fails(lambda: lstm_forward(x, a0, {**pl, "bf": randn(4, 1)}), "parameters['bf'] must be of shape (n_a, 1) = (5, 1), got shape (4, 1)")
    fails(lambda: lstm_forward(x, a0, {**pl, "Wy": randn(4, 6)}), "parameters['Wy'] must be of shape (n_y, n_a) = (?, 5), got shape (4, 6)")
    fails(lambda: lstm_forward(x, a0, {**pl, **{"W" + g: randn(5, 5) for g in "fico"}}), "parameters['Wf'] must be of shape (n_a, n_a + n_x) with n_x >= 1")
    fails(lambda: lstm_forward(x, a0, "weights"), "parameters must be a dict with keys Wf, bf, Wi, bi, Wc, bc, Wo, bo, Wy, by, got str")
    fails(lambda: lstm_backward(randn(N_A, M + 1, T), lstm_forward(x, a0, pl)[3]), "lstm_backward: da must be of shape (n_a, m, T_x) = (5, 2, 6), got shape (5, 3, 6)")
    fails(lambda: gru_cell_forward(xt[:, :, None], c_prev, pg), "gru_cell_forward: xt must be a 2-D array (n_x, m), got shape (3, 2, 1)")
    fails(lambda: gru_cell_forward(xt, c_prev[1:], pg), "gru_cell_forward: c_prev must be of shape (n_a, m) = (5, 2), got shape (4, 2)")
    fails(lambda: gru_forward(x, a0.T, pg), "gru_forward: c0 must be of shape (n_a, m) = (5, 2), got shape (2, 5)")
    fails(lambda: gru_forward(x[0], a0, pg), "gru_forward: x must be a 3-D array (n_x, m, T_x), got shape (2, 6)")
    for k in GRU_SHAPES:
        fails(lambda: gru_forward(x, a0, {j: v for j, v in pg.items() if j != k}), f"got a dict without {k!r}")
    fails(lambda: gru_forward(x, a0, {**pg, "Wr": randn(5, 8, 1)}), "parameters['Wr'] must be a 2-D array (n_a, n_a+n_x), got shape (5, 8, 1)")
    fails(lambda: gru_backward(randn(N_A, M, T + 1), gru_forward(x, a0, pg)[2]), "gru_backward: dc must be of shape (n_a, m, T_x) = (5, 2, 6), got shape (5, 2, 7)")
    fails(lambda: gate_parameters("lstm", 3, 0, 2), "gate_parameters: n_a must be a positive int, got 0")
    fails(lambda: gate_parameters("lstm", 3, 5, 2, forget_bias=float("nan")), "forget_bias must be a finite number, got nan")
    fails(lambda: gate_parameters("LSTM", 3, 5, 2), "kind must be one of 'gru', 'lstm', got 'LSTM'")


def test_every_public_function_documents_its_arguments():
    import inspect
    from fastcore.docments import docments
    import dlnotes.seq.gates as mod
    for name in mod.__all__:
        f = getattr(mod, name)
        if inspect.isfunction(f):
            assert f.__doc__, name
            assert not [k for k, v in docments(f).items() if v is None and k != "return"], name
