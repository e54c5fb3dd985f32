"Frozen layers keep their parameters through fit, unfrozen ones move; transferred copies are independent, keep their names and so their optimizer state."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.nn.layers import Dense, Dropout
from dlnotes.nn.models import Sequential
from dlnotes.nn.optimizers import SGD, Momentum, RMSprop, Adam
from dlnotes.strategy.transfer import freeze, unfreeze, transfer_layers, trainable_params


def _net():
    seed(0)
    net = Sequential([Dense(6, activation="tanh"), Dropout(0.2), Dense(5, activation="relu"), Dense(3)])
    net.build((4,))
    return net


def _snapshot(model):
    return {k: to_numpy(v).copy() for k, v in model.params.items()}


def _data(m=48):
    seed(1)
    return randn(m, 4), np.arange(m) % 3


@pytest.mark.parametrize("opt", [lambda: SGD(0.1), lambda: Momentum(0.1), lambda: RMSprop(0.01), lambda: Adam(0.01)])
@pytest.mark.parametrize("up_to", [0, 1, 2, 3, 4])
def test_frozen_params_do_not_change_and_unfrozen_do(opt, up_to):
    net = freeze(_net(), up_to=up_to)
    before = _snapshot(net)
    X, y = _data()
    net.fit(X, y, epochs=2, batch_size=16, optimizer=opt(), verbose=0)
    after = _snapshot(net)
    for i, layer in enumerate(net.layers):
        for k in layer.params:
            key = f"{layer.name}/{k}"
            if i < up_to: np.testing.assert_array_equal(after[key], before[key])
            else: assert not np.array_equal(after[key], before[key]), key


def test_freeze_by_name_and_unfreeze():
    net = _net()
    names = [l.name for l in net.layers]
    freeze(net, up_to=names[2])
    assert [l.trainable for l in net.layers] == [False, False, False, True]
    assert trainable_params(net) == 5 * 3 + 3
    unfreeze(net)
    assert all(l.trainable for l in net.layers) and trainable_params(net) == net.count_params()
    before = _snapshot(net)
    net.fit(*_data(), epochs=1, batch_size=16, optimizer=Adam(0.01), verbose=0)
    assert all(not np.array_equal(before[k], v) for k, v in _snapshot(net).items())


def test_transferred_copies_match_and_are_independent():
    src = _net()
    src.fit(*_data(), epochs=1, batch_size=16, optimizer=Adam(0.01), verbose=0)
    src_before = _snapshot(src)
    new = transfer_layers(src, 3, trainable=False)
    assert [l.name for l in new.layers] == [l.name for l in src.layers[:3]]
    for a, b in zip(new.layers, src.layers):
        for k in a.params:
            np.testing.assert_array_equal(to_numpy(a.params[k]), to_numpy(b.params[k]))
            assert a.params[k] is not b.params[k]
    new.add(Dense(2))
    X, _ = _data()
    new.fit(X, np.arange(len(X)) % 2, epochs=2, batch_size=16, optimizer=Adam(0.01), verbose=0)
    for a, b in zip(new.layers[:3], src.layers):  # frozen copies: unchanged
        for k in a.params: np.testing.assert_array_equal(to_numpy(a.params[k]), to_numpy(b.params[k]))
    unfreeze(new).fit(X, np.arange(len(X)) % 2, epochs=2, batch_size=16, optimizer=Adam(0.01), verbose=0)
    assert not np.array_equal(to_numpy(new.layers[0].params["W"]), src_before[f"{src.layers[0].name}/W"])
    for k, v in _snapshot(src).items(): np.testing.assert_array_equal(v, src_before[k])  # the source never moves


def test_copies_keep_their_names_and_a_new_layer_gets_an_unused_one():
    src = _net()
    names = [l.name for l in src.layers]
    assert names == ["dense", "dropout", "dense_1", "dense_2"]
    new = transfer_layers(src, 3)
    assert [l.name for l in new.layers] == names[:3]
    assert list(new.params) == [k for k in src.params if not k.startswith("dense_2/")]
    assert all(l.cache is None for l in new.layers)  # not the source's last batch
    new.add(Dense(2))
    assert [l.name for l in new.layers] == ["dense", "dropout", "dense_1", "dense_2"]  # unique within the new model
    new.add(Dense(2, name="head"))
    with pytest.raises(ValueError, match="two different layers named 'head'"):
        new.add(Dense(2, name="head"))


def test_frozen_copies_get_optimizer_state_only_once_unfrozen():
    src = _net()
    X, y = _data()
    new = transfer_layers(src, 3, trainable=False)
    new.add(Dense(3, name="head"))
    opt = Adam(0.01)
    new.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    assert set(opt.state) == {"head/W", "head/b"}  # the optimizer skipped the frozen copies
    unfreeze(new).fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    assert set(opt.state) == set(new.params)
    freeze(new, up_to="dense_1")
    kept = [to_numpy(a).copy() for a in opt.state["dense/W"]]  # updated in place by a step
    new.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    for a, b in zip(kept, opt.state["dense/W"]):
        np.testing.assert_array_equal(a, to_numpy(b))  # frozen again: its state is kept, not updated


def test_optimizer_state_carries_over_to_copies_by_name():
    "An optimizer's state saved on the source continues on a full copy exactly as on the source."
    X, y = _data()
    src, opt = _net(), Adam(0.01)
    src.fit(X, y, epochs=1, batch_size=16, optimizer=opt, verbose=0)
    twin = transfer_layers(src, len(src.layers))
    opt_twin = Adam(0.01).load_state_dict(opt.state_dict())
    for model, o in ((src, opt), (twin, opt_twin)):
        seed(2)  # the same shuffles and dropout masks
        model.fit(X, y, epochs=1, batch_size=16, optimizer=o, verbose=0)
    assert list(twin.params) == list(src.params)
    for k, v in src.params.items(): np.testing.assert_array_equal(to_numpy(twin.params[k]), to_numpy(v))


def test_transferred_model_predicts_like_source_lower_layers():
    src = _net()
    X, _ = _data()
    new = transfer_layers(src, 3)
    lower = X
    for layer in src.layers[:3]: lower = layer.forward(lower, training=False)
    np.testing.assert_allclose(to_numpy(new.predict(X)), to_numpy(lower), rtol=1e-6)


def test_bad_inputs():
    net = _net()
    with pytest.raises(ValueError, match=r"up_to must be an int in \[0, 4\] \(or a layer name\), got -1"):
        freeze(net, up_to=-1)
    with pytest.raises(ValueError, match=r"up_to must be an int in \[0, 4\] \(or a layer name\), got 2.0"):
        freeze(net, up_to=2.0)
    with pytest.raises(ValueError, match="up_to must be one of 'dense', 'dropout', 'dense_1', 'dense_2', got 'nope'"):
        freeze(net, up_to="nope")
    with pytest.raises(ValueError, match=r"n_layers must be an int in \[1, 4\], got 5"):
        transfer_layers(net, 5)
    with pytest.raises(TypeError, match="source_model must be a model with a list of layers"):
        transfer_layers(Dense(3), 1)
    with pytest.raises(ValueError, match="are not built"):
        transfer_layers(Sequential([Dense(2), Dense(3)]), 2)
    with pytest.raises(TypeError, match="model must be a model with a list of layers"):
        unfreeze(object())
