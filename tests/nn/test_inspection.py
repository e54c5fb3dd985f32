"get_layer, layer.output, up_to and input_gradient (checked in float64 against central differences), for dlnotes.nn.inspection."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.gradcheck import numerical_grad, rel_diff, as_float64
from dlnotes.nn.layers import Dense, Dropout
from dlnotes.nn.batchnorm import BatchNormalization
from dlnotes.nn.graphs import Input
from dlnotes.nn.merging import Concatenate
from dlnotes.nn.models import Model, Sequential
from dlnotes.nn.inspection import get_layer, input_gradient, up_to  # noqa: F401 (the methods are patched on Model)
from dlnotes.vision.cnn import Conv2D, MaxPooling2D, Flatten

TOL = 1e-7


def _cnn64():
    seed(5)
    cnn = Sequential([Conv2D(3, 3, activation="tanh", name="c1"), MaxPooling2D(2, name="p1"),
                      Conv2D(4, 3, strides=2, activation="relu", name="c2"), Flatten(name="f"),
                      BatchNormalization(name="bn"), Dropout(0.4, name="drop"), Dense(5, name="out")], name="cnn")
    cnn.build((11, 11, 2))
    for layer in cnn.layers: as_float64(layer)
    return cnn


@pytest.mark.parametrize("layer", ["c1", "p1", "c2", "out"])
def test_input_gradient_of_a_cnn_and_its_inner_layers(layer):
    cnn = _cnn64()
    model = cnn.up_to(layer)
    x = randn(3, 11, 11, 2, dtype=np.float64)
    d = randn(*model.predict(x).shape, dtype=np.float64)
    dx = model.input_gradient(x, d)
    num = numerical_grad(lambda v: float((d * model.predict(v)).sum()), x)
    assert rel_diff(dx, num) < TOL


def test_one_unit_sees_only_its_receptive_field():
    # c1 (3x3) then a 2x2 pool: a unit of p1 at (1, 1) sees input rows and columns 2..5 only
    cnn = _cnn64()
    model = cnn.up_to("p1")
    x = randn(1, 11, 11, 2, dtype=np.float64)
    y = model.predict(x)
    d = np.zeros(y.shape); d[0, 1, 1, 0] = 1
    g = np.abs(to_numpy(model.input_gradient(x, d))).sum(axis=(0, 3))
    rows, cols = np.nonzero(g)
    assert rows.min() >= 2 and rows.max() <= 5 and cols.min() >= 2 and cols.max() <= 5


def test_inference_mode_and_weights_gradients_untouched():
    cnn = _cnn64()
    x, d = randn(4, 11, 11, 2, dtype=np.float64), randn(4, 5, dtype=np.float64)
    cnn.forward(x, training=True); cnn.backward(d)
    before = {k: to_numpy(g).copy() for k, g in cnn.grads.items()}
    moving = to_numpy(cnn.get_layer("bn").moving_mean).copy()
    assert np.abs(moving).max() > 0  # the training-mode forward above moved it
    g1, g2 = cnn.input_gradient(x, d), cnn.input_gradient(x, d)
    np.testing.assert_array_equal(to_numpy(g1), to_numpy(g2))
    for k, g in cnn.grads.items(): np.testing.assert_array_equal(to_numpy(g), before[k])
    after = to_numpy(cnn.get_layer("bn").moving_mean)
    np.testing.assert_array_equal(after, moving)   # inference mode: the moving averages do not move
    assert cnn.cache is None


def test_two_inputs_two_outputs_and_a_shared_layer():
    seed(7)
    a, b = Input((4,), name="a"), Input((4,), name="b")
    shared = Dense(3, activation="tanh", name="shared")
    ha, hb = shared(a), shared(b)
    joined = Concatenate(name="cat")([ha, hb])
    model = Model([a, b], [Dense(2, name="y1")(joined), Dense(1, name="y2")(hb)], name="two")
    for layer in model.layers: as_float64(layer)
    xa, xb = randn(3, 4, dtype=np.float64), randn(3, 4, dtype=np.float64)
    d1, d2 = randn(3, 2, dtype=np.float64), randn(3, 1, dtype=np.float64)
    J = lambda xa, xb: float(sum((d * y).sum() for d, y in zip((d1, d2), model.predict([xa, xb]))))
    da, db = model.input_gradient([xa, xb], [d1, d2])
    assert rel_diff(da, numerical_grad(lambda v: J(v, xb), xa)) < TOL
    assert rel_diff(db, numerical_grad(lambda v: J(xa, v), xb)) < TOL
    inner = model.up_to("cat")
    assert inner.output_shape == (6,) and inner.get_layer("shared") is shared
    with pytest.raises(ValueError, match="has 2 calls"): shared.output
    with pytest.raises(ValueError, match=r"dy\[1\] must have the output's shape \(3, 1\), got \(3, 2\)"):
        model.input_gradient([xa, xb], [d1, d1])


def test_bad_names():
    m = Sequential([Dense(2, name="d")]); m.build((3,))
    with pytest.raises(ValueError, match=r"a name among \['d'\]"): m.get_layer("e")
    with pytest.raises(ValueError, match="got name=None, index=None"): m.get_layer()
    with pytest.raises(ValueError, match=r"a name among \['d'\]"): m.up_to("e")
