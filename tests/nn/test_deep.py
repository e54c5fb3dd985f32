"""The L-layer network of `dlnotes.deep`: bad inputs, shapes, and the backward pass against central differences."""
import numpy as np
import pytest
from fastcore.test import test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import seed, randn, rand, to_numpy, to_device, get_default_dtype
from dlnotes.gradcheck import grad_check
from dlnotes.nn.deep import (initialize_parameters_deep, linear_forward, linear_activation_forward, L_model_forward,
                          compute_cost, linear_backward, linear_activation_backward, L_model_backward,
                          update_parameters, L_layer_model, predict, initialize_parameters, two_layer_forward,
                          two_layer_backward, two_layer_model, plot_decision_boundary)


def _problem(layer_dims, m, s=0, dtype=np.float64):
    "Parameters (biases moved off zero), inputs (n_0, m) and 0/1 labels (1, m) for a random network."
    parameters = initialize_parameters_deep(layer_dims, seed=s, dtype=dtype)
    for l in range(1, len(layer_dims)):
        # with b = 0, an example whose inputs to a layer are all zero (every ReLU before it off) gets z = 0
        # exactly, on ReLU's kink, where central differences disagree with any one-sided derivative
        parameters[f"b{l}"] = 0.1 * randn(layer_dims[l], 1, dtype=dtype)
    X = randn(layer_dims[0], m, dtype=dtype)
    Y = (rand(1, m) > 0.5).astype(np.int64)
    return parameters, X, Y


# ---- bad inputs ------------------------------------------------------------------------------

def test_X_with_examples_on_the_wrong_axis():
    parameters, X, Y = _problem([5, 4, 1], 7)
    fails(lambda: L_model_forward(X.T, parameters), contains="X has shape (7, 5) but W1 has shape (4, 5)")
    fails(lambda: L_model_forward(X.T, parameters), contains="examples on the wrong axis")
    fails(lambda: predict(X.T, parameters), contains="W1 has shape (4, 5)")
    fails(lambda: two_layer_forward(X.T, parameters), contains="X has shape (7, 5)")
    fails(lambda: L_layer_model(X.T, Y, [5, 4, 1], num_iterations=1), contains="X has shape (7, 5)")
    fails(lambda: two_layer_model(X.T, Y, [5, 4, 1], num_iterations=1), contains="X has shape (7, 5)")


def test_W_not_matching_A():
    seed(0)
    A, W, b = randn(3, 4), randn(2, 5), randn(2, 1)
    fails(lambda: linear_forward(A, W, b), contains="W has shape (2, 5), so A must have 5 rows")
    fails(lambda: linear_forward(A, W, b), contains="got A (3, 4)")
    fails(lambda: linear_forward(A, randn(2, 3), randn(3, 1)), contains="b must have shape (2, 1)")
    fails(lambda: linear_activation_forward(A, W, b, "relu"), contains="W has shape (2, 5)")


def test_unknown_activation():
    seed(1)
    A, W, b = randn(3, 4), randn(2, 3), randn(2, 1)
    fails(lambda: linear_activation_forward(A, W, b, "swish"), contains="unknown activation 'swish'")
    _, cache = linear_activation_forward(A, W, b, "relu")
    fails(lambda: linear_activation_backward(randn(2, 4), cache, "swish"), contains="unknown activation")
    parameters, X, Y = _problem([3, 2, 1], 4)
    fails(lambda: L_model_forward(X, parameters, hidden_activation="swish"), contains="unknown activation")


@pytest.mark.parametrize("bad, shown", [([[0, 1, 2, 1]], "[2]"), ([[-1, 1, 0, 1]], "[-1]"), ([[0.5, 1, 0, 1]], "[0.5]"),
                                        ([[3, 9, 0, 1]], "[3, 9]")])
def test_Y_outside_0_1(bad, shown):
    AL = to_device(np.array([[0.2, 0.7, 0.4, 0.9]]))
    Y = to_device(np.array(bad))
    fails(lambda: compute_cost(AL, Y), contains="Y must hold only 0 and 1")
    fails(lambda: compute_cost(AL, Y), contains=shown)
    parameters, X, _ = _problem([3, 2, 1], 4)
    AL, caches = L_model_forward(X, parameters)
    fails(lambda: L_model_backward(AL, Y, caches), contains="Y must hold only 0 and 1")
    fails(lambda: L_layer_model(X, Y, [3, 2, 1], num_iterations=1), contains=shown)


def test_Y_shape_mismatch():
    AL = to_device(np.array([[0.2, 0.7, 0.4]]))
    fails(lambda: compute_cost(AL, to_device(np.array([[1, 0]]))), contains="Y must have shape (1, 3)")
    fails(lambda: compute_cost(AL, to_device(np.array([[1], [0], [1]]))), contains="got (3, 1)")
    assert np.isclose(compute_cost(AL, to_device(np.array([1, 0, 1]))), compute_cost(AL, to_device(np.array([[1, 0, 1]]))))


@pytest.mark.parametrize("dims", [[], [4], (7,)])
def test_layer_dims_with_fewer_than_two_entries(dims):
    fails(lambda: initialize_parameters_deep(dims), contains="layer_dims must have at least two entries")
    fails(lambda: initialize_parameters_deep(dims), contains=repr(list(dims)))


@pytest.mark.parametrize("dims", [[3, 0, 1], [3, -2, 1], [3, 2.5, 1], [3, True, 1]])
def test_layer_dims_not_positive_ints(dims):
    fails(lambda: initialize_parameters_deep(dims), contains="positive ints")


def test_dZ_with_the_wrong_shape():
    parameters, X, Y = _problem([3, 2, 1], 4)
    _, cache = linear_forward(X, parameters["W1"], parameters["b1"])
    fails(lambda: linear_backward(randn(2, 5, dtype=np.float64), cache), contains="dZ must have shape (2, 4)")


def test_two_layer_model_needs_three_sizes():
    parameters, X, Y = _problem([3, 2, 1], 4)
    fails(lambda: two_layer_model(X, Y, [3, 2, 2, 1], num_iterations=1), contains="(n_x, n_h, n_y)")


def test_plot_decision_boundary_wants_points_in_columns():
    X = to_device(np.zeros((5, 2)))
    fails(lambda: plot_decision_boundary(lambda G: G[:1] > 0, X, np.zeros(5)), contains="X must have shape (2, m)")


# ---- shapes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dims", [[2, 1], [5, 4, 3, 1], [12, 1, 7, 1]])
def test_shapes_of_parameters_caches_and_grads(dims):
    m, L = 6, len(dims) - 1
    parameters, X, Y = _problem(dims, m, dtype=np.float32)
    assert sorted(parameters) == sorted([f"{p}{l}" for l in range(1, L + 1) for p in "Wb"])
    for l in range(1, L + 1):
        assert parameters[f"W{l}"].shape == (dims[l], dims[l - 1]) and parameters[f"W{l}"].dtype == np.float32
        assert parameters[f"b{l}"].shape == (dims[l], 1)
    AL, caches = L_model_forward(X, parameters)
    assert AL.shape == (1, m) and len(caches) == L
    grads = L_model_backward(AL, Y, caches)
    assert sorted(grads) == sorted([f"dA{l - 1}" for l in range(1, L + 1)] + [f"d{p}{l}" for l in range(1, L + 1) for p in "Wb"])
    for l in range(1, L + 1):
        (A_prev, W, b), Z = caches[l - 1]
        assert A_prev.shape == (dims[l - 1], m) and Z.shape == (dims[l], m)
        assert grads[f"dW{l}"].shape == W.shape and grads[f"db{l}"].shape == b.shape
        assert grads[f"dA{l - 1}"].shape == A_prev.shape
    assert predict(X, parameters).shape == (1, m)
    assert set(np.unique(to_numpy(predict(X, parameters))).tolist()) <= {0, 1}


def test_default_dtype_zero_biases_and_he_scale():
    parameters = initialize_parameters_deep([3, 2, 1])
    assert parameters["W1"].dtype == parameters["b2"].dtype == get_default_dtype()
    assert not to_numpy(parameters["b1"]).any() and not to_numpy(parameters["b2"]).any()
    W = to_numpy(initialize_parameters_deep([500, 400], seed=2, dtype=np.float64)["W1"])
    assert abs(W.std() - np.sqrt(2 / 500)) < 2e-3 and abs(W.mean()) < 2e-3
    W = to_numpy(initialize_parameters_deep([500, 400], seed=2, dtype=np.float64, scale=0.01)["W1"])
    assert abs(W.std() - 0.01) < 1e-3
    a, b = (to_numpy(initialize_parameters_deep([4, 3, 1], seed=5)["W2"]) for _ in range(2))
    np.testing.assert_array_equal(a, b)


# ---- gradients -------------------------------------------------------------------------------

@pytest.mark.parametrize("dims, m, hidden", [([4, 1], 5, "relu"), ([5, 4, 3, 1], 7, "relu"),
                                             ([6, 8, 5, 4, 1], 9, "relu"), ([3, 6, 2, 1], 6, "tanh")])
def test_L_model_backward_matches_central_differences(dims, m, hidden):
    seed(10 + m)
    parameters, X, Y = _problem(dims, m, s=len(dims))
    AL, caches = L_model_forward(X, parameters, hidden)
    grads = L_model_backward(AL, Y, caches, hidden)
    J = lambda: compute_cost(L_model_forward(X, parameters, hidden)[0], Y)
    d = grad_check(J, parameters, grads)
    assert d["all"] < 1e-7
    # dA0 is the per-example derivative: m times dJ/dX
    assert grad_check(J, {"X": X}, {"X": grads["dA0"] / m})["all"] < 1e-7


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
def test_two_layer_backward_matches_checks_and_the_L_layer_version(hidden):
    seed(3)
    parameters = initialize_parameters(4, 5, 1, seed=3, dtype=np.float64)
    parameters["b1"] = 0.1 * randn(5, 1, dtype=np.float64)
    X, Y = randn(4, 8, dtype=np.float64), (rand(1, 8) > 0.5).astype(np.float64)
    A2, caches = two_layer_forward(X, parameters, hidden)
    grads = two_layer_backward(A2, Y, caches, hidden)
    d = grad_check(lambda: compute_cost(two_layer_forward(X, parameters, hidden)[0], Y), parameters, grads)
    assert d["all"] < 1e-7
    AL, caches_L = L_model_forward(X, parameters, hidden)
    for k, g in L_model_backward(AL, Y, caches_L, hidden).items():
        np.testing.assert_allclose(to_numpy(grads[k]), to_numpy(g), rtol=1e-12, atol=1e-15)


def test_fused_output_gradient_equals_the_notes_route():
    parameters, X, Y = _problem([4, 3, 1], 6, s=4)
    AL, caches = L_model_forward(X, parameters)
    grads = L_model_backward(AL, Y, caches)
    dAL = -(Y / AL - (1 - Y) / (1 - AL))
    dA1, dW2, db2 = linear_activation_backward(dAL, caches[-1], "sigmoid")
    for a, b in [(dA1, grads["dA1"]), (dW2, grads["dW2"]), (db2, grads["db2"])]:
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), rtol=1e-10)


# ---- training --------------------------------------------------------------------------------

def test_update_parameters_is_a_gradient_step_and_leaves_its_input_alone():
    parameters, X, Y = _problem([3, 4, 1], 10, s=6)
    before = {k: to_numpy(v).copy() for k, v in parameters.items()}
    AL, caches = L_model_forward(X, parameters)
    grads = L_model_backward(AL, Y, caches)
    new = update_parameters(parameters, grads, 0.05)
    for k in parameters:
        np.testing.assert_array_equal(to_numpy(parameters[k]), before[k])
        np.testing.assert_allclose(to_numpy(new[k]), before[k] - 0.05 * to_numpy(grads["d" + k]))
    assert compute_cost(L_model_forward(X, new)[0], Y) < compute_cost(AL, Y)


def test_L_layer_model_learns_a_nonlinear_rule_and_records_costs_every_100():
    seed(7)
    X = randn(2, 200, dtype=np.float64)
    Y = (X[0:1] * X[1:2] > 0).astype(np.int64)          # XOR of the signs: not linearly separable
    parameters, costs = L_layer_model(X, Y, [2, 8, 4, 1], learning_rate=0.3, num_iterations=1500, seed=0)
    assert len(costs) == 15 and costs[-1] < costs[0] / 3
    acc = (to_numpy(predict(X, parameters)) == to_numpy(Y)).mean()
    assert acc > 0.9
    _, costs_lr = L_layer_model(X, Y, [2, 1], learning_rate=0.3, num_iterations=500, seed=0)
    assert costs_lr[-1] > 0.6                            # logistic regression cannot fit it


def test_print_cost_prints_every_100_iterations(capsys):
    parameters, X, Y = _problem([3, 2, 1], 8)
    _, costs = L_layer_model(X, Y, [3, 2, 1], num_iterations=250, print_cost=True, seed=0)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [l.split(":")[0] for l in lines] == [f"Cost after iteration {i}" for i in (0, 100, 200)]
    assert [float(l.split(":")[1]) for l in lines] == [round(c, 4) for c in costs]


# ---- the data checks: the same helper (dlnotes.data.check_data) as the layer API ---------------

from dlnotes.backend import get_array_module
from dlnotes.nn.deep import _train_loop


@pytest.mark.parametrize("bad, said", [(np.nan, "1 NaN and 0 infinite"), (-np.inf, "0 NaN and 1 infinite")])
def test_nan_in_X_is_refused_before_any_step(bad, said):
    parameters, X, Y = _problem([3, 2, 1], 8)
    X = to_numpy(X).copy(); X[2, 5] = bad
    for fn in (lambda: L_layer_model(X, Y, [3, 2, 1], num_iterations=200), lambda: two_layer_model(X, Y, [3, 2, 1], num_iterations=200),
               lambda: L_model_forward(X, parameters), lambda: predict(X, parameters), lambda: two_layer_forward(X, parameters)):
        fails(fn, contains=f"X contains {said} values (of 24)")


def test_empty_X_and_no_iterations_are_refused():
    parameters, X, Y = _problem([3, 2, 1], 8)
    for fn in (lambda: L_layer_model(X[:, :0], Y[:, :0], [3, 2, 1], num_iterations=5),
               lambda: two_layer_model(X[:, :0], Y[:, :0], [3, 2, 1], num_iterations=5), lambda: predict(X[:, :0], parameters)):
        fails(fn, contains="X is empty: it holds no examples (shape (3, 0))")
    for n in (0, -3):
        fails(lambda: L_layer_model(X, Y, [3, 2, 1], num_iterations=n), contains=f"num_iterations must be a positive int, got {n}")
        fails(lambda: two_layer_model(X, Y, [3, 2, 1], num_iterations=n), contains="num_iterations must be a positive int")
    # the shared loop itself: a training of nothing is a mistake
    fails(lambda: _train_loop(parameters, lambda e: [(X, Y)], None, None, None, 0, None), contains="num_iterations must be a positive int, got 0")
    fails(lambda: _train_loop(parameters, lambda e: [(X, Y)], None, None, None, 0, None, unit="epoch"), contains="num_epochs must be a positive int, got 0")


@pytest.mark.parametrize("AL, shown", [([[0.2, 1.7, 0.5]], "[0.2, 1.7]"), ([[-2.0, 0.0, 3.0]], "[-2, 3]")])
def test_compute_cost_wants_probabilities(AL, shown):
    Y = np.array([[1, 0, 1]])
    fails(lambda: compute_cost(np.array(AL), Y), contains="AL must hold probabilities in [0, 1] (a sigmoid's output, not logits)")
    fails(lambda: compute_cost(np.array(AL), Y), contains=f"got values in {shown}")
    fails(lambda: compute_cost(np.array([[0.2, np.nan, 0.5]]), Y), contains="AL contains 1 NaN and 0 infinite values (of 3)")
    assert np.isclose(compute_cost(np.array([[0.0, 0.0, 1.0]]), np.array([[0, 0, 1]])), 0.0)  # 0 and 1 themselves are probabilities


def test_lists_are_taken_as_arrays():
    parameters, X, Y = _problem([3, 2, 1], 8)
    Xl, Yl = to_numpy(X).tolist(), to_numpy(Y).tolist()
    P, costs = L_layer_model(X, Y, [3, 2, 1], learning_rate=0.1, num_iterations=150, seed=0)
    P_l, costs_l = L_layer_model(Xl, Yl, [3, 2, 1], learning_rate=0.1, num_iterations=150, seed=0)
    assert costs_l == costs
    for k in P: np.testing.assert_array_equal(to_numpy(P_l[k]), to_numpy(P[k]))
    P_l, costs_l = two_layer_model(Xl, Yl[0], [3, 2, 1], learning_rate=0.1, num_iterations=150, seed=0)  # (m,) labels too
    assert costs_l == two_layer_model(X, Y, [3, 2, 1], learning_rate=0.1, num_iterations=150, seed=0)[1]
    np.testing.assert_array_equal(to_numpy(predict(Xl, P)), to_numpy(predict(X, P)))
    AL, caches = L_model_forward(Xl, P)
    assert compute_cost(to_numpy(AL).tolist(), Yl) == compute_cost(AL, Y)
    np.testing.assert_array_equal(to_numpy(L_model_backward(AL, Yl, caches)["dW1"]), to_numpy(L_model_backward(AL, Y, caches)["dW1"]))
    fails(lambda: L_layer_model([["a"] * 8] * 3, Y, [3, 2, 1], num_iterations=1), contains="X must be an array of numbers, got dtype <U1 (strings)")
    fails(lambda: L_layer_model(X, [[0, 1]] * 3 + [[1]], [3, 2, 1], num_iterations=1), contains="Y must be an array of numbers, got a list that is not one")


def test_learning_rate_and_integer_parameters():
    parameters, X, Y = _problem([3, 2, 1], 8)
    for lr in ("0.1", None, 0):
        fails(lambda: L_layer_model(X, Y, [3, 2, 1], learning_rate=lr, num_iterations=1), contains=f"learning_rate must be a positive number, got {lr!r}")
        fails(lambda: two_layer_model(X, Y, [3, 2, 1], learning_rate=lr, num_iterations=1), contains="learning_rate must be a positive number")
        fails(lambda: update_parameters(parameters, {"dW1": 1, "db1": 1}, lr), contains="learning_rate must be a positive number")
    # integer parameters: update_parameters returns new arrays, so the step is right (and float)
    P_int = {"W1": np.array([[1, 2, 3]]), "b1": np.array([[1]])}
    new = update_parameters(P_int, {"dW1": np.ones((1, 3)), "db1": np.ones((1, 1))}, 0.5)
    np.testing.assert_array_equal(new["W1"], [[0.5, 1.5, 2.5]]); np.testing.assert_array_equal(new["b1"], [[0.5]])


def test_device_arrays_stay_on_the_device():
    "check_data puts the data on the active device: device arrays (CuPy on a GPU) go through without a copy to the host."
    parameters, X, Y = _problem([3, 2, 1], 8)
    xp = get_array_module(parameters["W1"])
    for out in (L_model_forward(X, parameters)[0], predict(X, parameters), predict(to_numpy(X), parameters),
                L_model_backward(*L_model_forward(X, parameters)[:1], Y, L_model_forward(X, parameters)[1])["dW1"]):
        assert get_array_module(out) is xp
    P, _ = L_layer_model(to_numpy(X), to_numpy(Y), [3, 2, 1], num_iterations=1)
    assert get_array_module(P["W1"]) is xp
