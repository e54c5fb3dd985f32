"Gradient checks, Keras's semantics, masks, saving and bad input for dlnotes.seq.wrappers: TimeDistributed and Bidirectional."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy, xp
from dlnotes.gradcheck import as_float64, check_layer, grad_check, numerical_grad, rel_diff
from dlnotes.nn.graphs import Input
from dlnotes.nn.layers import LAYERS, Activation, Dense, Dropout
from dlnotes.nn.models import Model, Sequential, load_model
from dlnotes.nn.optimizers import SGD, Adam
from dlnotes.seq.recurrent import GRU, LSTM, SimpleRNN
from dlnotes.seq.wrappers import (MERGE_MODES, Bidirectional, BidirectionalCache, TimeDistributed, TimeDistributedCache,
                                  merge_directions, merge_directions_backward)
from dlnotes.vision.cnn import Conv2D, Flatten

TOL = 1e-6
CELLS = [SimpleRNN, GRU, LSTM]


def _built64(layer, x, **kw):
    "The layer called once on x (to build it), then cast to float64."
    layer(x, **kw)
    return as_float64(layer)


# ---------------------------------------------------------------- TimeDistributed

@pytest.mark.parametrize("make, shape", [(lambda: Dense(3, activation="tanh"), (2, 5, 4)), (lambda: Dense(2), (1, 1, 3)),
                                         (lambda: Activation("sigmoid"), (3, 4, 2, 2)),
                                         (lambda: Conv2D(2, 3, activation="tanh"), (2, 3, 5, 5, 2)), (Flatten, (2, 3, 4, 2))])
def test_time_distributed_gradcheck(make, shape):
    seed(len(shape) * 7 + shape[-1])
    x = randn(*shape, dtype=np.float64)
    td = _built64(TimeDistributed(make()), x)
    d = check_layer(td, x)
    assert max(d.values()) < TOL, d


def test_time_distributed_is_the_layer_at_every_step():
    seed(1)
    x = randn(3, 4, 5, dtype=np.float64)
    td = _built64(TimeDistributed(Dense(2, activation="relu")), x)
    y = to_numpy(td(x))
    dense = td.layer
    for t in range(4):  # each step alone through the wrapped layer's own forward pass: an independent loop
        np.testing.assert_allclose(y[:, t], to_numpy(dense.forward(x[:, t])), rtol=1e-12)
    assert isinstance(td.cache, TimeDistributedCache) and (td.cache.m, td.cache.T) == (3, 4)


def test_time_distributed_lengths_vary_and_weights_are_shared():
    seed(2)
    td = TimeDistributed(Dense(3))
    assert tuple(td(randn(2, 5, 4)).shape) == (2, 5, 3)
    assert tuple(td(randn(6, 9, 4)).shape) == (6, 9, 3)
    assert td.input_shape == (None, 4) and td.count_params() == 15
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, None, 4\)"):
        td(randn(2, 5, 3))


def test_time_distributed_views_write_through():
    seed(3)
    td = TimeDistributed(Dense(2))
    x = randn(4, 3, 5)
    td(x)
    assert td.params is td.layer.params and td.grads is td.layer.grads
    W0 = to_numpy(td.layer.params["W"]).copy()
    td.backward(xp.ones((4, 3, 2), dtype=x.dtype))
    SGD(0.1).step(td)
    np.testing.assert_allclose(to_numpy(td.layer.params["W"]), W0 - 0.1 * to_numpy(td.grads["W"]), rtol=1e-6)


def test_time_distributed_in_a_model_trains_saves_and_loads(tmp_path):
    seed(4)
    x = randn(16, 6, 3)
    y = (to_numpy(x).sum(-1) > 0).astype(np.int64)
    model = Sequential([TimeDistributed(Dense(8, activation="tanh")), TimeDistributed(Dense(2))])
    model.compile(Adam(0.02), "categorical_crossentropy")
    h = model.fit(x, y, epochs=30, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    model.save(tmp_path / "td.npz")
    loaded = load_model(tmp_path / "td.npz")
    np.testing.assert_array_equal(to_numpy(loaded.predict(x)), to_numpy(model.predict(x)))
    assert loaded.layers[0].get_config() == model.layers[0].get_config()
    assert model.layers[0].get_config()["layer"]["class_name"] == "Dense" and LAYERS["TimeDistributed"] is TimeDistributed


def test_time_distributed_dropout_uses_training_flag():
    seed(5)
    td = TimeDistributed(Dropout(0.5))
    x = xp.ones((2, 3, 4))
    assert bool((td(x) == x).all())
    y = to_numpy(td(x, training=True))
    assert set(np.unique(y)) <= {0.0, 2.0} and (y == 0).any()


def test_time_distributed_bad_input():
    with pytest.raises(TypeError, match="TimeDistributed: layer must be a Layer, got str"):
        TimeDistributed("dense")
    with pytest.raises(ValueError, match="layer must be a layer with one input"):
        TimeDistributed(Sequential([Dense(2)]))
    with pytest.raises(ValueError, match=r"needs inputs of shape \(batch, T, features...\), got \(batch, 4\)"):
        TimeDistributed(Dense(2))(randn(3, 4))
    with pytest.raises(ValueError, match="expects a 4-D batch"):
        TimeDistributed(Conv2D(2, 3))(randn(2, 3, 5, 5))


# ---------------------------------------------------------------- merging the directions

def test_merge_functions_against_numpy():
    seed(6)
    a, b, dy = (to_numpy(randn(2, 3, 4, dtype=np.float64)) for _ in range(3))
    np.testing.assert_array_equal(merge_directions(a, b, "concat"), np.dstack([a, b]))
    np.testing.assert_array_equal(merge_directions(a, b, "sum"), a + b)
    np.testing.assert_array_equal(merge_directions(a, b, "ave"), (a + b) / 2)
    np.testing.assert_array_equal(merge_directions(a, b, "mul"), a * b)
    assert [x is y for x, y in zip(merge_directions(a, b, None), (a, b))] == [True, True]
    for mode in ("sum", "ave", "mul"):  # gradients of J = Σ dy ⊙ merge(a, b) by central differences
        da, db = merge_directions_backward(dy, a, b, mode)
        d = grad_check(lambda: (dy * merge_directions(a, b, mode)).sum(), {"a": a, "b": b}, {"a": da, "b": db})
        assert d["all"] < 1e-8
    dc = np.concatenate([dy, -dy], axis=-1)
    da, db = merge_directions_backward(dc, a, b, "concat")
    np.testing.assert_array_equal(da, dy); np.testing.assert_array_equal(db, -dy)
    with pytest.raises(ValueError, match="merge_mode must be one of 'concat', 'sum', 'ave', 'mul', None, got 'max'"):
        merge_directions_backward(dy, a, b, "max")


# ---------------------------------------------------------------- Bidirectional: gradients

@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("mode", MERGE_MODES)
@pytest.mark.parametrize("options", [{}, {"return_sequences": True}, {"return_state": True},
                                     {"return_sequences": True, "return_state": True}])
def test_bidirectional_gradcheck(cls, mode, options):
    seed(hash((cls.__name__, str(mode), len(options))) % 1000)
    x = randn(2, 4, 3, dtype=np.float64)
    bi = _built64(Bidirectional(cls(3, **options), merge_mode=mode), x)
    d = check_layer(bi, x)
    assert max(d.values()) < TOL, d
    assert {k.split("/")[0] for k in d if k not in ("x", "all")} == {"forward", "backward"}


@pytest.mark.parametrize("cls", CELLS)
def test_bidirectional_masked_gradcheck(cls):
    seed(7)
    x = randn(3, 5, 2, dtype=np.float64)
    mask = xp.asarray([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [0, 0, 1, 1, 1]], dtype=bool)  # full, post-padded, pre-padded
    bi = _built64(Bidirectional(cls(3, return_sequences=True), merge_mode="concat"), x, mask=mask)

    class Masked:  # the layer called with the mask, for check_layer
        params, grads = bi.params, bi.grads
        def forward(self, x, training=False): return bi(x, training=training, mask=mask)
        def backward(self, dy): return bi.backward(dy)
    d = check_layer(Masked(), x)
    assert max(d.values()) < TOL, d


@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("padding", ["post", "pre"])
def test_bidirectional_padded_batch_equals_each_sequence_alone(cls, padding):
    seed(8)
    lengths, T = [4, 2, 1], 4
    x = randn(3, T, 2, dtype=np.float64)
    steps = np.arange(T)[None, :]
    L = np.array(lengths)[:, None]
    mask = xp.asarray(steps < L if padding == "post" else steps >= T - L)
    for rs in (False, True):
        bi = _built64(Bidirectional(cls(3, return_sequences=rs, return_state=True), merge_mode="concat"), x, mask=mask)
        out = bi(x, mask=mask)
        dys = [randn(*o.shape, dtype=np.float64) for o in out]
        if rs: dys[0] = dys[0] * mask[..., None]
        dx = bi.backward(dys)
        grads = {k: to_numpy(g).copy() for k, g in bi.grads.items()}
        total = {k: 0 for k in grads}
        for i, n in enumerate(lengths):
            sl = slice(0, n) if padding == "post" else slice(T - n, T)
            alone = bi(x[i:i + 1, sl])
            if rs: np.testing.assert_allclose(to_numpy(alone[0][0]), to_numpy(out[0][i, sl]), atol=1e-12)
            else: np.testing.assert_allclose(to_numpy(alone[0][0]), to_numpy(out[0][i]), atol=1e-12)
            for a, b in zip(alone[1:], out[1:]): np.testing.assert_allclose(to_numpy(a[0]), to_numpy(b[i]), atol=1e-12)
            dx_i = bi.backward([dys[0][i:i + 1, sl] if rs else dys[0][i:i + 1]] + [d[i:i + 1] for d in dys[1:]])
            np.testing.assert_allclose(to_numpy(dx_i[0]), to_numpy(dx[i, sl]), atol=1e-12)
            for k in total: total[k] = total[k] + to_numpy(bi.grads[k])
        for k in grads: np.testing.assert_allclose(total[k], grads[k], atol=1e-11)
        if rs: assert float(abs(to_numpy(out[0])[~to_numpy(mask)]).max()) == 0.0  # zeros at padded steps


def test_stacked_bidirectional_in_a_graph_model_gradcheck():
    seed(9)
    inp = Input((None, 2))
    h = Bidirectional(GRU(3, return_sequences=True), merge_mode="ave")(inp)
    y, h_f, c_f, h_b, c_b = Bidirectional(LSTM(2, return_state=True))(h)
    model = Model(inp, [y, h_b])
    x = randn(2, 5, 2, dtype=np.float64)
    model(x)
    for layer in model.layers: as_float64(layer)
    d = check_layer(model, x)
    assert max(d.values()) < TOL, d


def test_stacked_with_mask_value_gradcheck():
    seed(10)
    x = randn(3, 6, 2, dtype=np.float64); x[0, 4:] = 0; x[1, :3] = 0
    real = xp.broadcast_to((x != 0).any(-1, keepdims=True), x.shape)
    stack = Sequential([Bidirectional(LSTM(3, return_sequences=True, mask_value=0.0), merge_mode="mul"),
                        Bidirectional(SimpleRNN(2, mask_value=0.0)), Dense(2)])
    stack(x)
    for layer in stack.layers: as_float64(layer)
    R = randn(3, 2, dtype=np.float64)
    J = lambda: (stack.forward(x) * R).sum()
    stack.forward(x); dx = stack.backward(R)
    d = grad_check(J, dict(stack.params), {k: g.copy() for k, g in stack.grads.items()})
    assert d["all"] < TOL, d
    assert rel_diff(dx[real], numerical_grad(lambda _: J(), x)[real]) < TOL
    assert float(abs(to_numpy(dx[~real])).max()) == 0.0


# ---------------------------------------------------------------- Bidirectional: semantics

def test_bidirectional_is_two_loops_over_time():
    "Step t holds [a→<t>; a←<t>]: a loop over t = 1..T and one over t = T..1 with the wrapper's weights."
    seed(11)
    x = randn(2, 5, 3, dtype=np.float64)
    bi = _built64(Bidirectional(SimpleRNN(4, return_sequences=True, return_state=True)), x)
    y, h_f, h_b = (to_numpy(a) for a in bi(x))
    X = to_numpy(x)
    def loop(p, steps):
        p = {k: to_numpy(v) for k, v in p.items()}
        a, out = np.zeros((2, 4)), {}
        for t in steps: a = out[t] = np.tanh(X[:, t] @ p["kernel"] + a @ p["recurrent_kernel"] + p["bias"])
        return out
    f, b = loop(bi.forward_layer.params, range(5)), loop(bi.backward_layer.params, range(4, -1, -1))
    for t in range(5): np.testing.assert_allclose(y[:, t], np.hstack([f[t], b[t]]), atol=1e-12)
    np.testing.assert_allclose(h_f, f[4], atol=1e-12); np.testing.assert_allclose(h_b, b[0], atol=1e-12)


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_same_as_pytorch_bidirectional(name):
    "Concatenated outputs, final states and gradients of a bidirectional PyTorch layer given the same weights."
    torch = pytest.importorskip("torch")
    seed(12)
    x = randn(3, 6, 2, dtype=np.float64)
    cls = {"LSTM": LSTM, "GRU": GRU}[name]
    bi = _built64(Bidirectional(cls(4, return_sequences=True, return_state=True)), x)
    net = getattr(torch.nn, name)(2, 4, batch_first=True, bidirectional=True).double()
    def blocks(a, axis):  # Keras's GRU blocks z, r, h are PyTorch's r, z, n
        if name == "LSTM": return a
        z, r, h = np.split(a, 3, axis=axis)
        return np.concatenate([r, z, h], axis=axis)
    with torch.no_grad():
        for suffix, layer in (("l0", bi.forward_layer), ("l0_reverse", bi.backward_layer)):
            p = {k: to_numpy(v) for k, v in layer.params.items()}
            b_ih, b_hh = (p["bias"], np.zeros(16)) if name == "LSTM" else (p["bias"][0], p["bias"][1])
            for t_name, a, axis in (("weight_ih", p["kernel"], 1), ("weight_hh", p["recurrent_kernel"], 1),
                                    ("bias_ih", b_ih, 0), ("bias_hh", b_hh, 0)):
                a = blocks(a, axis)
                getattr(net, f"{t_name}_{suffix}").copy_(torch.from_numpy(np.ascontiguousarray(a.T if axis else a)))
    xt = torch.from_numpy(to_numpy(x)).requires_grad_(True)
    yt, states = net(xt)
    out = bi(x)
    np.testing.assert_allclose(to_numpy(out[0]), yt.detach().numpy(), atol=1e-12)
    h_n = (states[0] if name == "LSTM" else states).detach().numpy()
    np.testing.assert_allclose(to_numpy(out[1]), h_n[0], atol=1e-12)
    np.testing.assert_allclose(to_numpy(out[-2 if name == "LSTM" else -1]), h_n[1], atol=1e-12)
    dy = randn(3, 6, 8, dtype=np.float64)
    yt.backward(torch.from_numpy(to_numpy(dy)))
    dx = bi.backward([dy] + [xp.zeros_like(o) for o in out[1:]])
    np.testing.assert_allclose(to_numpy(dx), xt.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(blocks(to_numpy(bi.grads["backward/kernel"]), 1).T, net.weight_ih_l0_reverse.grad.numpy(), atol=1e-12)


def test_backward_direction_is_computed_in_the_forward_pass():
    seed(13)
    bi = Bidirectional(SimpleRNN(3, return_sequences=True))
    x = randn(1, 5, 2)
    y = bi(x)
    assert bi.backward_layer.hidden_grads is None and isinstance(bi.cache, BidirectionalCache)
    x2 = x.copy(); x2[0, -1] += 1
    y2 = bi(x2)
    assert bool((y2[0, 0, :3] == y[0, 0, :3]).all()) and bool((y2[0, 0, 3:] != y[0, 0, 3:]).any())


def test_copies_have_their_own_weights_and_the_configuration():
    seed(14)
    layer = GRU(3, return_sequences=True, mask_value=0.0, name="tagger")
    bi = Bidirectional(layer)
    bi(randn(2, 4, 2))
    f, b = bi.forward_layer, bi.backward_layer
    assert (f.name, b.name, f.go_backwards, b.go_backwards) == ("forward_tagger", "backward_tagger", False, True)
    assert f.mask_value == b.mask_value == 0.0 and f.zero_output_for_mask and b.zero_output_for_mask
    assert not layer.built and f.params["kernel"] is not b.params["kernel"]
    assert not np.allclose(to_numpy(f.params["kernel"]), to_numpy(b.params["kernel"]))
    rev = Bidirectional(SimpleRNN(2, go_backwards=True))
    assert (rev.forward_layer.go_backwards, rev.backward_layer.go_backwards) == (True, False)


def test_views_optimizer_and_zeroed_gradients():
    seed(15)
    bi = Bidirectional(SimpleRNN(3))
    x = randn(4, 5, 2)
    bi(x); bi.backward(xp.ones((4, 6), dtype=x.dtype))
    assert bi.params["backward/kernel"] is bi.backward_layer.params["kernel"]
    before = {k: to_numpy(v).copy() for k, v in bi.params.items()}
    SGD(0.5).step(bi)
    for k, v in bi.params.items(): np.testing.assert_allclose(to_numpy(v), before[k] - 0.5 * to_numpy(bi.grads[k]), rtol=1e-5)
    bi.grads = {k: xp.zeros_like(v) for k, v in bi.params.items()}
    assert all(float(abs(to_numpy(g)).sum()) == 0 for g in bi.backward_layer.grads.values())
    assert len(bi.params) == 6 and bi.count_params() == 2 * (2 * 3 + 3 * 3 + 3)


def test_bidirectional_trains_and_saves(tmp_path):
    seed(16)
    x = randn(32, 6, 2)
    y = (to_numpy(x)[:, -1, 0] > 0).astype(np.int64)  # the last step's sign: the backward direction sees it first
    model = Sequential([Input((None, 2)), Bidirectional(GRU(4), backward_layer=GRU(3, go_backwards=True), merge_mode="concat"),
                        Dense(2)])
    model.compile(Adam(0.05), "categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, epochs=40, verbose=0)
    assert h.history["accuracy"][-1] > 0.9
    model.save(tmp_path / "bi.npz")
    loaded = load_model(tmp_path / "bi.npz")
    np.testing.assert_array_equal(to_numpy(loaded.predict(x)), to_numpy(model.predict(x)))
    assert loaded.layers[0].backward_layer.units == 3 and loaded.layers[0].get_config() == model.layers[0].get_config()
    assert LAYERS["Bidirectional"] is Bidirectional
    assert model.layers[0].get_config()["backward_layer"]["config"]["units"] == 3


def test_clear_cache_reaches_both_directions():
    bi = Bidirectional(LSTM(2))
    bi(randn(2, 3, 2))
    bi.clear_cache()
    assert bi.cache is None and bi.forward_layer.cache is None and bi.backward_layer.cache is None


# ---------------------------------------------------------------- Bidirectional: bad input

def test_bidirectional_bad_arguments():
    with pytest.raises(ValueError, match="Bidirectional: merge_mode must be one of 'concat', 'sum', 'ave', 'mul', None, got 'max'"):
        Bidirectional(SimpleRNN(2), merge_mode="max")
    with pytest.raises(TypeError, match="layer must be a recurrent layer"):
        Bidirectional(Dense(2))
    with pytest.raises(TypeError, match="backward_layer must be a recurrent layer"):
        Bidirectional(SimpleRNN(2), backward_layer=Dense(2))
    with pytest.raises(ValueError, match="backward_layer must be a layer with go_backwards=True"):
        Bidirectional(SimpleRNN(2), backward_layer=SimpleRNN(2))
    with pytest.raises(ValueError, match="backward_layer must be a layer with return_state=True"):
        Bidirectional(SimpleRNN(2, return_state=True), backward_layer=SimpleRNN(2, go_backwards=True))


def test_bidirectional_bad_input_and_gradients():
    bi = Bidirectional(LSTM(2, return_state=True))
    x = randn(3, 4, 2)
    with pytest.raises(ValueError, match=r"x must have 3 axes \(batch, T, features\), got an input of shape \(batch, 4\)"):
        bi(randn(3, 4))
    with pytest.raises(ValueError, match=r"mask must have shape \(batch, T\) = \(3, 4\)"):
        bi(x, mask=xp.ones((3, 5), dtype=bool))
    out = bi(x)
    with pytest.raises(ValueError, match="dy must be a list of 5 arrays, one per output, got a list of 2"):
        bi.backward(out[:2])
    with pytest.raises(ValueError, match=r"built for inputs of shape \(batch, None, 2\), got an input of shape \(3, 4, 3\)"):
        bi(randn(3, 4, 3))
    with pytest.raises(TypeError, match="mask= takes an array"):
        Bidirectional(SimpleRNN(2))(Input((4, 2)), mask=xp.ones((1, 4), dtype=bool))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Bidirectional(SimpleRNN(2)).backward(xp.ones((1, 4)))
