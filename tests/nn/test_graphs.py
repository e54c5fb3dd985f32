"Symbolic tensors, nodes, output shapes and the order of a graph's nodes, for dlnotes.nn.graphs."
import numpy as np
import pytest

from dlnotes.backend import randn
from dlnotes.nn.graphs import Input, InputLayer, SymbolicTensor, Node, _topological
from dlnotes.nn.layers import Dense, Activation, Dropout
from dlnotes.nn.merging import Add, Concatenate, Dot
from dlnotes.nn.reshaping import RepeatVector, Reshape


def test_input_and_output_shapes():
    x = Input((5,), name="x")
    assert isinstance(x, SymbolicTensor) and x.shape == (None, 5) and isinstance(x.node.layer, InputLayer)
    assert Dense(3)(x).shape == (None, 3)
    assert Concatenate()([Dense(2)(x), Dense(4)(x)]).shape == (None, 6)
    assert RepeatVector(7)(x).shape == (None, 7, 5) and Reshape((5, 1))(x).shape == (None, 5, 1)
    seq = Input((None, 4))
    assert Dense(2)(seq).shape == (None, None, 2)  # the varying time axis stays None
    assert Dot(axes=2)([seq, seq]).shape == (None, None, None)
    assert Input([3, None]).shape == (None, 3, None)


def test_a_node_per_call_and_the_layer_built_once():
    x, y = Input((4,)), Input((4,))
    d = Dense(3)
    a, b = d(x), d(y)
    assert a.node is not b.node and a.node.layer is b.node.layer is d and d._nodes == [a.node, b.node]
    assert d.built and d.params["W"].shape == (4, 3) and d.cache is None  # built by the shape run, no cache kept
    assert a.node.inputs == [x] and not a.node.listed and a.node.outputs == [a]
    s = Add()([a, b])
    assert s.node.listed and s.node.inputs == [a, b]


def test_shape_errors_name_the_layers():
    x = Input((5,), name="wide")
    d = Dense(3, name="d")
    d(Input((4,), name="narrow"))
    with pytest.raises(ValueError, match=r"layer 'd' cannot take the output \(None, 5\) of layer 'wide': layer 'd' was built for inputs of shape \(batch, 4\)"):
        d(x)
    with pytest.raises(ValueError, match=r"layer 'sum' cannot take the output \(None, 5\) of layer 'wide' and the output \(None, 3\) of layer 'd'"):
        Add(name="sum")([x, d(Input((4,)))])
    with pytest.raises(TypeError, match="a mix of symbolic tensors and arrays"): Add()([x, randn(2, 5)])


def test_topological_order_and_refusals():
    x1, x2, spare = Input((3,), name="x1"), Input((3,), name="x2"), Input((3,), name="spare")
    d = Dense(3, name="d")
    h1, h2 = d(x1), d(x2)
    out = Activation("tanh", name="act")(Add(name="sum")([h1, h2]))
    order = _topological([out], [x1, x2])
    names = [n.layer.name for n in order]
    for before, after in [("x1", "d"), ("d", "sum"), ("x2", "sum"), ("sum", "act")]:
        assert names.index(before) < names.index(after)
    assert len(order) == 6 and order.index(h1.node) < order.index(out.node.inputs[0].node)
    assert [n.layer.name for n in _topological([h1], [x1])] == ["x1", "d"]
    with pytest.raises(ValueError, match=r"depend on input 'x2' \(through layer 'd'\), which is not among the model's inputs \['x1'\]"):
        _topological([out], [x1])
    with pytest.raises(ValueError, match="input 'spare' is not connected to the outputs"): _topological([out], [x1, x2, spare])
    loop = Dense(3, name="loop")
    t = loop(x1)
    t.node.inputs = [loop(t)]
    with pytest.raises(ValueError, match="cycle"): _topological([t], [x1])
    deep = x1
    for _ in range(1500): deep = Activation("relu")(deep)  # deeper than Python's recursion limit: the walk is iterative
    assert len(_topological([deep], [x1])) == 1501


def test_dropout_in_a_graph_draws_nothing_at_construction():
    from dlnotes.backend import seed, rand, to_numpy
    seed(3); ref = rand((4,))
    seed(3); Dropout(0.5)(Input((6,))); after = rand((4,))
    np.testing.assert_array_equal(to_numpy(ref), to_numpy(after))
