"Gradient checks of SimpleRNN, GRU and LSTM in every configuration (options, initial states, masks, stacks, graphs), padded batches against single sequences, hidden-state gradients, saving, PyTorch's weights, and bad inputs for dlnotes.seq.recurrent."
import operator

import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.gradcheck import check_layer, grad_check, numerical_grad, as_float64
from dlnotes.nn.layers import Dense, LAYERS
from dlnotes.nn.models import Model, Sequential, load_model
from dlnotes.nn.graphs import Input
from dlnotes.seq.recurrent import (SimpleRNN, GRU, LSTM, Orthogonal, RecurrentCache, lstm_step, lstm_step_backward, gru_step,
                                  keep_masked)

TOL = 1e-7
CLASSES = [SimpleRNN, GRU, LSTM]
OPTIONS = [{}, {"return_sequences": True}, {"return_state": True}, {"go_backwards": True},
           {"return_sequences": True, "return_state": True, "go_backwards": True}, {"use_bias": False},
           {"activation": "relu"}, {"activation": "sigmoid", "return_sequences": True}]


def _layer64(cls, X, units=4, **kw):
    "A layer built on X, in float64, with random biases (so that no gradient is zero by symmetry)."
    layer = cls(units, **kw)
    layer(X)
    as_float64(layer)
    if layer.use_bias: layer.params["bias"] += 0.3 * randn(*layer.params["bias"].shape, dtype=np.float64)
    return layer


class _Masked:
    "A layer called with a fixed mask, for check_layer."
    def __init__(self, layer, mask, n_states=0): self.layer, self.mask, self.params = layer, mask, layer.params
    def forward(self, x, training=False):
        xs = x if isinstance(x, list) else [x]
        return self.layer(xs[0], mask=self.mask, initial_state=xs[1:] or None)
    def backward(self, dy):
        dx = self.layer.backward(dy)
        self.grads = self.layer.grads
        return dx


# ---------------------------------------------------------------- gradient checks

@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kw", OPTIONS)
def test_gradcheck_options(cls, kw):
    seed(len(kw) + 7 * CLASSES.index(cls))
    X = randn(3, 5, 2, dtype=np.float64)
    layer = _layer64(cls, X, **kw)
    d = check_layer(layer, X)
    assert d["all"] < TOL, d
    assert set(layer.grads) == set(layer.params) and {"x"} | set(layer.params) | {"all"} == set(d)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kw", [{}, {"return_sequences": True, "return_state": True}, {"go_backwards": True}])
def test_gradcheck_initial_state(cls, kw):
    "Gradients reach h0 (and c0), also with the final states given a gradient of their own."
    seed(11 + CLASSES.index(cls))
    X = randn(3, 6, 2, dtype=np.float64)
    layer = _layer64(cls, X, **kw)
    states = [randn(3, 4, dtype=np.float64) for _ in layer.state_names]
    d = check_layer(layer, [X, *states])
    assert d["all"] < TOL, d
    assert {"x0", "x1"} <= set(d) and ("x2" in d) == (cls is LSTM)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kw", [{}, {"return_sequences": True}, {"return_sequences": True, "zero_output_for_mask": True},
                                {"go_backwards": True, "return_state": True}])
def test_gradcheck_masked(cls, kw):
    seed(21 + CLASSES.index(cls))
    X = randn(4, 6, 3, dtype=np.float64)
    mask = np.ones((4, 6), bool)
    mask[0, 4:], mask[1, :3], mask[2, [1, 3]], mask[3, :] = False, False, False, False  # post, pre, holes, all masked
    layer = _layer64(cls, X, **kw)
    states = [randn(4, 4, dtype=np.float64) for _ in layer.state_names]
    for x in (X, [X, *states]):
        d = check_layer(_Masked(layer, mask), x)
        assert d["all"] < TOL, d


@pytest.mark.parametrize("cls", CLASSES)
def test_gradcheck_stacked(cls):
    "Two layers in a Sequential (the first returning sequences), then a Dense on the last output."
    seed(31 + CLASSES.index(cls))
    X = randn(3, 5, 2, dtype=np.float64)
    model = Sequential([cls(4, return_sequences=True), cls(3), Dense(2)])
    model(X)
    for layer in model.layers: as_float64(layer)
    d = check_layer(model, X)
    assert d["all"] < TOL, d
    assert len(d) == 1 + 1 + 2 * len(model.layers[0].params) + 2


@pytest.mark.parametrize("cls", CLASSES)
def test_gradcheck_graph_with_initial_state(cls):
    "In a graph Model the initial states are inputs of the layer's node; return_state's outputs feed two heads."
    seed(41 + CLASSES.index(cls))
    n_states = 2 if cls is LSTM else 1
    x_in, s_in = Input((None, 3)), [Input((4,)) for _ in range(n_states)]
    out, *final = cls(4, return_sequences=True, return_state=True)(x_in, initial_state=s_in)
    model = Model([x_in, *s_in], [Dense(2)(out), Dense(1)(final[-1])])
    X, S = randn(2, 5, 3, dtype=np.float64), [randn(2, 4, dtype=np.float64) for _ in range(n_states)]
    model.forward([X, *S])
    for layer in model.layers: as_float64(layer)
    d = check_layer(model, [X, *S])
    assert d["all"] < TOL, d
    model.forward([X[:, :2].copy(), *S])  # another length
    assert model.forward([X, *S])[0].shape == (2, 5, 2)


# ---------------------------------------------------------------- forward semantics

def _lstm_loop(x, p, a, c):
    "One example through the equations, fused Keras blocks i, f, c, o, plain loops."
    n_a, sig = a.shape[0], lambda z: 1 / (1 + np.exp(-z))
    out = []
    for x_t in x:
        z = p["kernel"].T @ x_t + p["recurrent_kernel"].T @ a + p["bias"]
        i, f, g, o = sig(z[:n_a]), sig(z[n_a:2 * n_a]), np.tanh(z[2 * n_a:3 * n_a]), sig(z[3 * n_a:])
        c = f * c + i * g
        a = o * np.tanh(c)
        out.append(a)
    return np.array(out), a, c


def _gru_loop(x, p, a):
    "One example through the GRU equations (reset after the product), blocks z, r, h."
    n_a, sig = a.shape[0], lambda z: 1 / (1 + np.exp(-z))
    out = []
    for x_t in x:
        px, ra = p["kernel"].T @ x_t + p["bias"][0], p["recurrent_kernel"].T @ a + p["bias"][1]
        z, r = sig(px[:n_a] + ra[:n_a]), sig(px[n_a:2 * n_a] + ra[n_a:2 * n_a])
        h = np.tanh(px[2 * n_a:] + r * ra[2 * n_a:])
        a = z * a + (1 - z) * h
        out.append(a)
    return np.array(out), a


def test_forward_against_loops():
    seed(50)
    X = randn(3, 7, 2, dtype=np.float64)
    h0, c0 = randn(3, 4, dtype=np.float64), randn(3, 4, dtype=np.float64)
    lstm = _layer64(LSTM, X, return_sequences=True, return_state=True)
    Y, h, c = lstm(X, initial_state=[h0, c0])
    for i in range(3):
        y_ref, a_ref, c_ref = _lstm_loop(X[i], lstm.params, h0[i], c0[i])
        np.testing.assert_allclose(Y[i], y_ref, atol=1e-12); np.testing.assert_allclose(c[i], c_ref, atol=1e-12)
        np.testing.assert_allclose(h[i], a_ref, atol=1e-12)
    gru = _layer64(GRU, X, return_sequences=True)
    Y = gru(X, initial_state=[h0])
    for i in range(3): np.testing.assert_allclose(Y[i], _gru_loop(X[i], gru.params, h0[i])[0], atol=1e-12)
    rnn = _layer64(SimpleRNN, X, return_sequences=True)
    a, ref = np.zeros(4), []
    for x_t in X[1]:
        a = np.tanh(x_t @ rnn.params["kernel"] + a @ rnn.params["recurrent_kernel"] + rnn.params["bias"]); ref.append(a)
    np.testing.assert_allclose(rnn(X)[1], np.array(ref), atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_go_backwards_is_the_reversed_input(cls):
    "Keras: go_backwards processes the sequence reversed and returns the reversed sequence of outputs."
    seed(51)
    X = randn(2, 6, 3, dtype=np.float64)
    back = _layer64(cls, X, return_sequences=True, go_backwards=True)
    fwd = cls(4, return_sequences=True); fwd(X)
    fwd.params.update({k: v.copy() for k, v in back.params.items()})
    np.testing.assert_allclose(back(X), fwd(X[:, ::-1].copy()), atol=1e-12)
    dY = randn(2, 6, 4, dtype=np.float64)
    dx_back = back.backward(dY)
    np.testing.assert_allclose(dx_back, fwd.backward(dY)[:, ::-1], atol=1e-12)
    np.testing.assert_allclose(back.hidden_grads, fwd.hidden_grads, atol=1e-12)  # in the order of the steps


def _padded(seqs, T, pre):
    X, mask = np.zeros((len(seqs), T, seqs[0].shape[1])), np.zeros((len(seqs), T), bool)
    for i, s in enumerate(seqs):
        sl = slice(T - len(s), T) if pre else slice(0, len(s))
        X[i, sl], mask[i, sl] = s, True
    return X, mask


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("pre", [False, True])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_padded_batch_equals_single_sequences(cls, pre, go_backwards):
    "Sequences of lengths 5, 2, 4 padded to 5 and masked: the same outputs and gradients as each sequence alone."
    seed(60 + pre)
    seqs = [randn(n, 3, dtype=np.float64) for n in (5, 2, 4)]
    X, mask = _padded(seqs, 5, pre)
    X[~mask] = 7.0  # the padded values must not matter
    layer = _layer64(cls, X, return_state=True, go_backwards=go_backwards)
    R = [randn(3, 4, dtype=np.float64) for _ in range(1 + len(layer.state_names))]
    outs = layer(X, mask=mask)
    dX = layer.backward(R)
    g_batch = {k: v.copy() for k, v in layer.grads.items()}
    g_sum = {k: 0 for k in layer.params}
    for i, s in enumerate(seqs):
        outs_i = layer(s[None])
        for o, oi in zip(outs, outs_i): np.testing.assert_allclose(o[i], oi[0], atol=1e-12)
        dx_i = layer.backward([r[i:i + 1] for r in R])
        np.testing.assert_allclose(dX[i][mask[i]], dx_i[0], atol=1e-12)
        np.testing.assert_allclose(dX[i][~mask[i]], 0, atol=0)
        for k, g in layer.grads.items(): g_sum[k] = g_sum[k] + g
    for k in g_batch: np.testing.assert_allclose(g_batch[k], g_sum[k], atol=1e-12)


@pytest.mark.parametrize("cls", CLASSES)
def test_masked_sequence_outputs_and_mask_value(cls):
    "return_sequences: the carried state at masked steps (Keras), zeros with zero_output_for_mask; mask_value = that mask."
    seed(70)
    X = randn(2, 5, 3, dtype=np.float64)
    X[0, 3:] = 0.0
    mask = np.ones((2, 5), bool); mask[0, 3:] = False
    layer = _layer64(cls, X, return_sequences=True)
    Y = layer(X, mask=mask)
    np.testing.assert_allclose(Y[0, 3], Y[0, 2]); np.testing.assert_allclose(Y[0, 4], Y[0, 2])
    np.testing.assert_allclose(Y[0, :3], layer(X[:1, :3].copy())[0], atol=1e-12)
    layer.zero_output_for_mask = True
    np.testing.assert_allclose(layer(X, mask=mask), np.where(mask[:, :, None], Y, 0))
    layer.zero_output_for_mask, layer.mask_value = False, 0.0
    np.testing.assert_allclose(layer(X), Y)


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("kw", [{"return_sequences": True}, {"return_sequences": True, "go_backwards": True}])
def test_hidden_grads_are_dJ_da(cls, kw):
    "hidden_grads[:, t] against central differences of J in a<t>: the layer restarted at step t from (a<t>, c<t>)."
    seed(80 + CLASSES.index(cls))
    X = randn(2, 6, 3, dtype=np.float64)
    layer = _layer64(cls, X, **kw)
    Y = layer(X)
    R = randn(*Y.shape, dtype=np.float64)
    layer.backward(R)
    hg = layer.hidden_grads.copy()
    assert hg.shape == (2, 6, 4)
    c = layer.cache
    Xs = X[:, ::-1] if kw.get("go_backwards") else X
    rest = cls(4, return_sequences=True)  # the same weights, run forward from step t + 1
    rest(X)
    rest.params = layer.params
    for t in (0, 2, 5):
        a_t = np.ascontiguousarray(c.H[t + 1])
        others = [np.ascontiguousarray(c.C[t + 1])] if cls is LSTM else []
        def J(a):
            direct = (a * R[:, t]).sum()
            if t == 5: return direct
            return direct + (rest(np.ascontiguousarray(Xs[:, t + 1:]), initial_state=[a, *others]) * R[:, t + 1:]).sum()
        np.testing.assert_allclose(hg[:, t], numerical_grad(J, a_t), rtol=1e-6, atol=1e-9)


def test_hidden_grads_without_return_sequences():
    "With only the last output used, dJ/da<T> is dY itself."
    seed(85)
    X = randn(2, 4, 3, dtype=np.float64)
    layer = _layer64(LSTM, X)
    dY = randn(2, 4, dtype=np.float64)
    layer(X); layer.backward(dY)
    np.testing.assert_allclose(layer.hidden_grads[:, -1], dY)
    layer.clear_cache()
    assert layer.hidden_grads is None and layer.cache is None


@pytest.mark.parametrize("cls", CLASSES)
def test_lengths_may_vary_and_cache_is_named(cls):
    seed(90)
    layer = cls(3, return_sequences=True)
    assert layer(randn(2, 4, 5)).shape == (2, 4, 3)
    assert layer(randn(1, 9, 5)).shape == (1, 9, 3)
    assert layer.input_shape == (None, 5)
    assert isinstance(layer.cache, RecurrentCache) and layer.cache.X.shape == (9, 1, 5 + 1)  # a column of ones for the bias


# ---------------------------------------------------------------- weights, initializers, saving, PyTorch

def test_parameter_shapes_counts_and_initial_values():
    seed(91)
    X = randn(2, 3, 5)
    counts = {SimpleRNN: 6 * (5 + 6 + 1), GRU: 3 * 6 * (5 + 6 + 2), LSTM: 4 * 6 * (5 + 6 + 1)}
    for cls, n in counts.items():
        layer = cls(6); layer(X)
        assert layer.count_params() == n, cls
        k = layer.n_gates
        U = to_numpy(layer.params["recurrent_kernel"]).astype(np.float64)
        np.testing.assert_allclose(U @ U.T, np.eye(6), atol=1e-5)  # orthogonal rows
        assert layer.params["kernel"].shape == (5, k * 6) and layer.params["kernel"].dtype == np.float32
        limit = np.sqrt(6 / (5 + k * 6))
        assert np.abs(to_numpy(layer.params["kernel"])).max() <= limit
    lstm = LSTM(6); lstm(X)
    np.testing.assert_array_equal(to_numpy(lstm.params["bias"]), np.r_[np.zeros(6), np.ones(6), np.zeros(12)])
    lstm = LSTM(6, unit_forget_bias=False); lstm(X)
    np.testing.assert_array_equal(to_numpy(lstm.params["bias"]), 0)
    assert GRU(6).get_config()["recurrent_initializer"] == "orthogonal"


def test_orthogonal_is_uniform_in_sign_and_scaled():
    seed(92)
    Q = Orthogonal(gain=0.5)((8, 8), dtype=np.float64)
    np.testing.assert_allclose(Q @ Q.T, 0.25 * np.eye(8), atol=1e-12)
    diag = [np.sign(np.linalg.qr(Orthogonal()((5, 5), dtype=np.float64))[1][0, 0]) for _ in range(40)]
    assert 5 < sum(d > 0 for d in diag) < 35  # not always the same orientation


@pytest.mark.parametrize("cls", CLASSES)
def test_save_and_load(cls, tmp_path):
    seed(93)
    X = randn(3, 5, 2)
    model = Sequential([Input((None, 2)), cls(4, return_sequences=True, go_backwards=True, mask_value=0.0), cls(3), Dense(1)])
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = load_model(path)
    np.testing.assert_allclose(to_numpy(loaded(X)), to_numpy(model(X)), rtol=1e-6)
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert LAYERS[cls.__name__] is cls


def test_graph_with_initial_state_saves_loads_and_fits(tmp_path):
    "An encoder-decoder graph (return_state into initial_state) rebuilds from its file and trains with fit."
    seed(98)
    x_in, y_in = Input((None, 3)), Input((None, 2))
    _, h, c = LSTM(6, return_state=True, name="enc")(x_in)
    model = Model([x_in, y_in], Dense(2)(GRU(6, return_sequences=True)(y_in, initial_state=[h])))
    X, Y = randn(4, 5, 3), randn(4, 3, 2)
    model.save(tmp_path / "s2s.npz")
    loaded = load_model(tmp_path / "s2s.npz")
    np.testing.assert_array_equal(to_numpy(loaded.forward([X, Y])), to_numpy(model.forward([X, Y])))
    history = model.fit([X, Y], randn(4, 3, 2), epochs=3, loss="mse", verbose=0, optimizer="adam")
    assert len(history.history["loss"]) == 3 and np.isfinite(history.history["loss"]).all()


def _torch_blocks(a, name, axis):
    if name == "LSTM": return a
    z, r, h = np.split(a, 3, axis=axis)
    return np.concatenate([r, z, h], axis=axis)


@pytest.mark.parametrize("cls", [GRU, LSTM])
def test_same_as_pytorch(cls):
    "Keras's fused kernels, transposed (and the GRU's blocks reordered), are PyTorch's weights: same outputs and gradients."
    torch = pytest.importorskip("torch")
    seed(94)
    X = randn(3, 6, 2, dtype=np.float64)
    layer, name = _layer64(cls, X, return_sequences=True), cls.__name__
    net = getattr(torch.nn, name)(2, 4, batch_first=True).double()
    p = layer.params
    b_ih, b_hh = (p["bias"], np.zeros(16)) if name == "LSTM" else (p["bias"][0], p["bias"][1])
    with torch.no_grad():
        for t_name, a, axis in (("weight_ih_l0", p["kernel"], 1), ("weight_hh_l0", p["recurrent_kernel"], 1),
                                ("bias_ih_l0", b_ih, 0), ("bias_hh_l0", b_hh, 0)):
            blocks = _torch_blocks(a, name, axis)
            getattr(net, t_name).copy_(torch.from_numpy(np.ascontiguousarray(blocks.T if axis else blocks)))
    x = torch.from_numpy(X).requires_grad_(True)
    y, _ = net(x)
    np.testing.assert_allclose(layer(X), y.detach().numpy(), atol=1e-12)
    dY = randn(3, 6, 4, dtype=np.float64)
    y.backward(torch.from_numpy(dY))
    np.testing.assert_allclose(layer.backward(dY), x.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(_torch_blocks(layer.grads["recurrent_kernel"], name, 1).T, net.weight_hh_l0.grad.numpy(), atol=1e-12)


# ---------------------------------------------------------------- exercises' functions

def test_step_functions_on_hand_cases():
    Z = np.array([[0.0, 0.0, 0.0, 0.0]])
    a, c, g = lstm_step(Z, np.array([[4.0]]))
    np.testing.assert_allclose(c, [[2.0]]); np.testing.assert_allclose(a, [[0.5 * np.tanh(2.0)]])
    a, g = gru_step(np.zeros((1, 3)), np.zeros((1, 3)), np.array([[2.0]]))
    np.testing.assert_allclose(a, [[1.0]]); np.testing.assert_allclose(g, [[0.5, 0.5, 0.0]])
    new, old = keep_masked(np.array([[False]]), [np.ones((1, 2))], [np.zeros((1, 2))])[0], None
    np.testing.assert_array_equal(new, 0)


@pytest.mark.parametrize("acts", [("tanh", "sigmoid"), ("relu", "sigmoid"), ("tanh", "tanh")])
def test_lstm_step_backward_against_central_differences(acts):
    "lstm_step_backward is the gradient of J = Σ R_a ⊙ a<t> + Σ R_c ⊙ c<t> through lstm_step, in Z and c<t-1>."
    seed(96)
    Z, c_prev = randn(3, 8, dtype=np.float64), randn(3, 2, dtype=np.float64)
    Ra, Rc = randn(3, 2, dtype=np.float64), randn(3, 2, dtype=np.float64)
    def J():
        a, c, _ = lstm_step(Z, c_prev, *acts)
        return (a * Ra).sum() + (c * Rc).sum()
    a, c, gates = lstm_step(Z, c_prev, *acts)
    dZ, dc_prev = lstm_step_backward(Ra, Rc, gates, c_prev, c, *acts)
    d = grad_check(J, {"Z": Z, "c_prev": c_prev}, {"Z": dZ, "c_prev": dc_prev})
    assert d["all"] < TOL, d


@pytest.mark.parametrize("cls", CLASSES)
def test_need_dx_false_skips_only_dx(cls):
    seed(97)
    X = randn(2, 4, 3, dtype=np.float64)
    layer = _layer64(cls, X, return_sequences=True)
    dY = randn(2, 4, 4, dtype=np.float64)
    layer(X); dx = layer.backward(dY); g = {k: v.copy() for k, v in layer.grads.items()}
    layer(X)
    assert layer.backward(dY, need_dx=False) is None and dx.shape == X.shape
    for k in g: np.testing.assert_array_equal(layer.grads[k], g[k])


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("cls", CLASSES)
def test_bad_input(cls):
    seed(95)
    X = randn(4, 5, 3)
    layer = cls(2)
    name = layer.name
    fails(lambda: layer(randn(4, 3)), contains=f"layer {name!r}: x must have 3 axes (batch, T, features), got shape (4, 3)")
    fails(lambda: layer(randn(4, 5, 3, 1)), contains="got shape (4, 5, 3, 1)")
    layer(X)
    fails(lambda: layer(randn(4, 5, 2)), contains=f"layer {name!r} was built for inputs of shape (batch, T, 3), got x of shape (4, 5, 2)")
    n = len(layer.state_names)
    good = [randn(4, 2) for _ in range(n)]
    fails(lambda: layer(X, initial_state=[randn(3, 2)] + good[1:]),
              contains="initial_state h0 must have shape (batch, units) = (4, 2) for x of shape (4, 5, 3), got (3, 2)")
    fails(lambda: layer(X, initial_state=good[:-1] + [randn(4, 5)]), contains="must have shape (batch, units) = (4, 2)")
    fails(lambda: layer(X, initial_state=good + [randn(4, 2)]), contains=f"initial_state must be a list of {n} arrays")
    fails(lambda: layer(X, mask=np.ones((4, 6), bool)),
              contains=f"layer {name!r}: mask must have shape (batch, T) = (4, 5) for x of shape (4, 5, 3), got (4, 6)")
    fails(lambda: layer(X, mask=np.ones(5, bool)), contains="got (5,)")
    fails(lambda: layer(Input((5, 3)), mask=np.ones((1, 5), bool)), contains="in a model graph use mask_value")
    fails(lambda: cls(0), contains=f"{cls.__name__}: units must be a positive int, got 0")
    fails(lambda: cls(2, activation="softmax"), contains="activation must be one of")
    fails(lambda: cls(2, return_sequences="yes"), contains="return_sequences must be True or False")
    fails(lambda: cls(2, mask_value="pad"), contains="mask_value must be a finite number")
    x_in, h_in = Input((None, 3)), Input((5,))
    fails(lambda: cls(2)(x_in, initial_state=[h_in] * n), contains="initial_state h0 must have shape (batch, units)")
