"Tests of dlnotes.basics: bad inputs, numerical stability at extreme inputs, gradient checks in float64."
import numpy as np
import pytest
from fastcore.test import test_close as close, test_eq as eq, test_fail as fails  # renamed: pytest collects test_*

from dlnotes.backend import randn, seed, to_numpy
from dlnotes.nn.basics import (ACTIVATIONS, cross_entropy_cost, cross_entropy_from_logits, cross_entropy_grad,
                            cross_entropy_loss, get_activation, gradient_descent_step, initialize_with_zeros,
                            leaky_relu, leaky_relu_backward, logistic_regression_model, optimize, predict_logistic,
                            propagate, sigmoid, sigmoid_backward, softmax, softmax_backward, squared_error_cost,
                            squared_error_grad, squared_error_loss)
from dlnotes.gradcheck import grad_check, numerical_grad, rel_diff

SHAPES = [(1, 1), (2, 7), (5, 3), (4, 4)]


def _Z(shape, s, scale=3.0):
    "float64 test inputs, kept away from the ReLU kink at 0."
    seed(s)
    Z = randn(*shape, dtype=np.float64) * scale
    return np.where(np.abs(Z) < 0.05, 0.5, Z)


def _check(forward, backward, Z, s):
    "Gradient-check backward on J = sum(R * forward(Z)); returns the relative difference."
    seed(100 + s)
    R = randn(*Z.shape, dtype=np.float64)
    dZ = backward(R, forward(Z)[1])
    return grad_check(lambda: float(np.sum(R * forward(Z)[0])), Z, dZ, tol=1e-7)["all"]


# --- gradient checks ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_activation_gradients(name, shape):
    forward, backward = get_activation(name)
    scale = 3.0
    if name == "softmax":  # one class: softmax is constant 1; widely spread scores give tiny, noise-dominated gradients
        shape, scale = (max(shape[0], 2), shape[1]), 1.0
    assert _check(forward, backward, _Z(shape, sum(shape), scale), sum(shape)) < 1e-7


@pytest.mark.parametrize("shape", [(3, 5), (6, 2)])
def test_softmax_gradient_rows(shape):
    fwd = lambda Z: softmax(Z, axis=-1)
    assert _check(fwd, softmax_backward, _Z(shape, 7, 1.0), 7) < 1e-7


def test_leaky_relu_gradient_alpha():
    fwd = lambda Z: leaky_relu(Z, alpha=0.2)
    bwd = lambda dA, c: leaky_relu_backward(dA, c, alpha=0.2)
    assert _check(fwd, bwd, _Z((4, 6), 3), 3) < 1e-7


@pytest.mark.parametrize("loss,grad", [(cross_entropy_loss, cross_entropy_grad), (squared_error_loss, squared_error_grad)])
def test_loss_gradients(loss, grad):
    seed(11)
    A = np.clip(np.abs(randn(3, 8, dtype=np.float64)) / 3, 0.05, 0.95)
    Y = (randn(3, 8, dtype=np.float64) > 0).astype(np.float64)
    d = rel_diff(grad(A, Y), numerical_grad(lambda A_: float(np.sum(loss(A_, Y))), A.copy()))
    assert d < 1e-7


def test_cross_entropy_from_logits_gradient():
    seed(12)
    Z = randn(1, 10, dtype=np.float64) * 4
    Y = (randn(1, 10) > 0).astype(np.float64)
    dZ_num = numerical_grad(lambda Z_: float(np.sum(cross_entropy_from_logits(Z_, Y))), Z.copy())
    assert rel_diff(sigmoid(Z)[0] - Y, dZ_num) < 1e-7
    close(cross_entropy_from_logits(Z, Y), cross_entropy_loss(sigmoid(Z)[0], Y), eps=1e-12)


def test_propagate_gradient():
    seed(13)
    X = randn(4, 12, dtype=np.float64)
    Y = (randn(1, 12) > 0).astype(np.float64)
    params = {"w": randn(4, 1, dtype=np.float64), "b": np.array(-0.2)}
    grads, _ = propagate(params["w"], params["b"], X, Y)
    grads = {"dw": grads["dw"], "db": np.array(grads["db"])}
    diffs = grad_check(lambda: propagate(params["w"], params["b"], X, Y)[1], params, grads, tol=1e-7)
    assert diffs["all"] < 1e-7


# --- stability at extreme inputs ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_activations_extreme(dtype):
    Z = np.array([[-1e4, -1e3, -100.0, 0.0, 100.0, 1e3, 1e4]], dtype=dtype)
    expected = {
        "sigmoid": [0, 0, np.exp(-100.0) if dtype == np.float64 else 0, 0.5, 1, 1, 1],
        "tanh": [-1, -1, -1, 0, 1, 1, 1],
        "relu": [0, 0, 0, 0, 100, 1e3, 1e4],
        "leaky_relu": [-100, -10, -1, 0, 100, 1e3, 1e4],
        "linear": Z[0],
    }
    with np.errstate(all="raise"):
        for name, (forward, backward) in ACTIVATIONS.items():
            if name == "softmax": continue
            A, cache = forward(Z)
            dZ = backward(np.ones_like(Z), cache)
            assert A.dtype == dtype and dZ.dtype == dtype, name
            assert np.all(np.isfinite(A)) and np.all(np.isfinite(dZ)), name
            close(A[0], np.asarray(expected[name], dtype=dtype), eps=1e-6 * 1e4 if name in ("relu", "leaky_relu", "linear") else 1e-12)
        A, cache = sigmoid(Z)
        eq(sigmoid_backward(np.ones_like(Z), cache)[0, [0, 1, 5, 6]], np.zeros(4, dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_softmax_extreme(dtype):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1.0], [1e4, 1e4 - 1.0, 2.0]], dtype=dtype)
    with np.errstate(all="raise"):
        A, cache = softmax(Z)
        dZ = softmax_backward(np.arange(9, dtype=dtype).reshape(3, 3), cache)
    assert np.all(np.isfinite(A)) and np.all(np.isfinite(dZ))
    e = np.exp(-1.0)
    close(A[:, 0], [0.5, 0.0, 0.5], eps=1e-6)
    close(A[:, 1], [0.0, 1 / (1 + e), e / (1 + e)], eps=1e-6)
    close(A.sum(axis=0), np.ones(3), eps=1e-6)
    eq(A.dtype, dtype)


def test_stable_losses_extreme():
    Z = np.array([[-1e4, 1e4, -1e4, 1e4, 40.0]])
    Y = np.array([[0, 1, 1, 0, 0]])
    with np.errstate(all="raise"):
        L = cross_entropy_from_logits(Z, Y)
        L_A = cross_entropy_loss(sigmoid(Z)[0], Y)
        g = cross_entropy_grad(sigmoid(Z)[0], Y)
    close(L, [[0.0, 0.0, 1e4, 1e4, 40.0]], eps=1e-9)
    assert np.all(np.isfinite(L_A)) and np.all(np.isfinite(g))
    eq(L_A[0, :2], [0.0, 0.0])
    assert not np.any(np.signbit(L_A))  # no -0.0 from log(1)


# --- bad inputs ---------------------------------------------------------------------------------

def test_unknown_activation():
    fails(lambda: get_activation("foo"), contains="unknown activation 'foo'; expected one of")
    fails(lambda: get_activation("foo"), contains="'leaky_relu'")
    fails(lambda: get_activation(3), contains="unknown activation 3")
    assert set(ACTIVATIONS) == {"sigmoid", "tanh", "relu", "leaky_relu", "softmax", "linear"}


def test_backward_shape_mismatch():
    for name, (forward, backward) in ACTIVATIONS.items():
        _, cache = forward(np.ones((2, 3)))
        fails(lambda: backward(np.ones((3, 2)), cache), contains="dA must have the shape")


def _tiny_data():
    seed(14)
    X = randn(3, 10, dtype=np.float64)
    Y = (X[:1] + X[1:2] > 0).astype(np.int64)
    return X, Y


def test_wrong_axis_X():
    X, Y = _tiny_data()
    w, b = initialize_with_zeros(3)
    for fn in (lambda: propagate(w, b, X.T, Y),
               lambda: optimize(w, b, X.T, Y, num_iterations=1, learning_rate=0.1)):
        fails(fn, contains="X (10, 3) and Y (1, 10)")
        fails(fn, contains="pass X.T")
    fails(lambda: logistic_regression_model(X.T, Y, X, Y, num_iterations=1), contains="X_train (10, 3) and Y_train (1, 10)")
    fails(lambda: logistic_regression_model(X.T, Y, X, Y, num_iterations=1), contains="pass X_train.T")
    fails(lambda: logistic_regression_model(X, Y, X.T, Y, num_iterations=1), contains="pass X_test.T")
    fails(lambda: propagate(w, b, X, Y.ravel()), contains="Y (10,)")
    fails(lambda: propagate(np.zeros((2, 1)), b, X, Y), contains="w must be (n_x, 1) = (3, 1)")
    fails(lambda: predict_logistic(w, b, X.T), contains="got X (10, 3)")


@pytest.mark.parametrize("bad", [2, -1, 0.5, np.nan])
def test_labels_outside_01(bad):
    X, Y = _tiny_data()
    Yb = Y.astype(np.float64); Yb[0, 4] = bad
    w, b = initialize_with_zeros(3)
    A = np.full(Y.shape, 0.5)
    for fn in (lambda: propagate(w, b, X, Yb),
               lambda: optimize(w, b, X, Yb, num_iterations=1, learning_rate=0.1),
               lambda: logistic_regression_model(X, Yb, X, Y, num_iterations=1),
               lambda: logistic_regression_model(X, Y, X, Yb, num_iterations=1)):
        fails(fn, contains="must contain only the labels 0 and 1" if bad == bad else "contains 1 NaN")
    for fn in (lambda: cross_entropy_loss(A, Yb), lambda: cross_entropy_cost(A, Yb),
               lambda: cross_entropy_grad(A, Yb), lambda: cross_entropy_from_logits(A, Yb)):
        fails(fn, contains="must contain only the labels 0 and 1")
    if bad == bad:  # not NaN: a number that is not a label
        fails(lambda: propagate(w, b, X, Yb), contains="Y must contain only the labels 0 and 1")
        fails(lambda: logistic_regression_model(X, Y, X, Yb, num_iterations=1), contains="Y_test must contain only")
    else:  # the data check refuses a NaN label before looking at the values
        fails(lambda: propagate(w, b, X, Yb), contains="Y contains 1 NaN and 0 infinite values (of 10)")
        fails(lambda: logistic_regression_model(X, Y, X, Yb, num_iterations=1), contains="Y_test contains 1 NaN")
    fails(lambda: cross_entropy_loss(A, Yb), contains=str([float(bad)]))


def test_loss_shape_mismatch():
    A = np.full((1, 4), 0.5)
    for fn in (cross_entropy_loss, cross_entropy_grad, squared_error_loss, squared_error_cost, squared_error_grad):
        fails(lambda: fn(A, np.zeros(4)), contains="got A (1, 4) and Y (4,)")
        fails(lambda: fn(A, np.zeros((4, 1))), contains="got A (1, 4) and Y (4, 1)")
    fails(lambda: cross_entropy_from_logits(A, np.zeros((4, 1))), contains="got Z (1, 4) and Y (4, 1)")


def test_gradient_descent_step():
    params = {"W": np.ones((2, 3)), "b": np.zeros((2, 1))}
    grads = {"dW": np.full((2, 3), 2.0), "db": np.ones((2, 1))}
    new = gradient_descent_step(params, grads, 0.25)
    close(new["W"], np.full((2, 3), 0.5)); close(new["b"], np.full((2, 1), -0.25))
    eq(params["W"], np.ones((2, 3)))
    fails(lambda: gradient_descent_step(params, {"dW": grads["dW"]}, 0.1), contains="'db' or 'b'")
    fails(lambda: gradient_descent_step(params, {"dW": grads["dW"].T, "db": grads["db"]}, 0.1),
              contains="shape (2, 3), got (3, 2)")
    for lr in (0, -0.1, np.inf, np.nan):
        fails(lambda: gradient_descent_step(params, grads, lr), contains="learning_rate must be a positive number")


def test_initialize_with_zeros_bad():
    for n in (0, -3, 2.5, True, "3"):
        fails(lambda: initialize_with_zeros(n), contains="n_x must be a positive int")


# --- behaviour ----------------------------------------------------------------------------------

def test_logistic_regression_learns_separable_data():
    seed(15)
    X = randn(2, 200, dtype=np.float64)
    Y = (2 * X[:1] - X[1:2] > 0).astype(np.int64)
    res = logistic_regression_model(X, Y, X, Y, num_iterations=300, learning_rate=1.0)
    assert res["train_accuracy"] >= 0.97
    assert res["costs"][-1] < 0.2 * res["costs"][0]
    close(res["costs"][0], np.log(2), eps=1e-12)  # zero weights predict 0.5 everywhere
    w = res["w"].ravel()
    assert w[0] > 0 > w[1]  # points along (2, -1)
    eq(res["Y_prediction_test"].shape, (1, 200))
    assert set(np.unique(to_numpy(res["Y_prediction_test"]))) <= {0, 1}


def test_losses_values():
    A, Y = np.array([[0.8, 0.3]]), np.array([[1, 0]])
    close(cross_entropy_loss(A, Y), [[-np.log(0.8), -np.log(0.7)]], eps=1e-15)
    close(cross_entropy_cost(A, Y), -(np.log(0.8) + np.log(0.7)) / 2, eps=1e-15)
    close(squared_error_loss(A, Y), [[0.02, 0.045]], eps=1e-15)
    close(squared_error_cost(A, Y), 0.0325, eps=1e-15)
    # several output units: the per-example loss sums over them
    A2, Y2 = np.array([[0.8, 0.3], [0.5, 0.9]]), np.array([[1, 0], [0, 1]])
    close(cross_entropy_loss(A2, Y2), [[-np.log(0.8) - np.log(0.5), -np.log(0.7) - np.log(0.9)]], eps=1e-15)


# --- the data checks: the same helper (dlnotes.data.check_data) as the layer API ------------------

def _with(X, i, j, value):
    "A copy of X with X[i, j] = value."
    X = X.copy(); X[i, j] = value
    return X


@pytest.mark.parametrize("bad, said", [(np.nan, "1 NaN and 0 infinite"), (np.inf, "0 NaN and 1 infinite")])
def test_nan_or_infinity_in_X_is_refused_before_training(bad, said):
    X, Y = _tiny_data()
    Xb = _with(X, 1, 4, bad)
    w, b = initialize_with_zeros(3)
    for fn, name in ((lambda: propagate(w, b, Xb, Y), "X"), (lambda: optimize(w, b, Xb, Y, num_iterations=5, learning_rate=0.1), "X"),
                     (lambda: logistic_regression_model(Xb, Y, X, Y, num_iterations=5), "X_train"),
                     (lambda: logistic_regression_model(X, Y, Xb, Y, num_iterations=5), "X_test"), (lambda: predict_logistic(w, b, Xb), "X")):
        fails(fn, contains=f"{name} contains {said} values (of 30)")


def test_empty_X_and_no_iterations_are_refused():
    X, Y = _tiny_data()
    w, b = initialize_with_zeros(3)
    fails(lambda: propagate(w, b, X[:, :0], Y[:, :0]), contains="X is empty: it holds no examples (shape (3, 0))")
    fails(lambda: logistic_regression_model(X[:, :0], Y[:, :0], X, Y, num_iterations=5), contains="X_train is empty")
    for n in (0, -1, 2.5):
        fails(lambda: optimize(w, b, X, Y, num_iterations=n, learning_rate=0.1), contains=f"num_iterations must be a positive int, got {n}")
        fails(lambda: logistic_regression_model(X, Y, X, Y, num_iterations=n), contains="num_iterations must be a positive int")


def test_lists_are_taken_as_arrays():
    X, Y = _tiny_data()
    w, b = initialize_with_zeros(3)
    w = w.astype(np.float64)
    grads, cost = propagate(w, b, X, Y)
    grads_l, cost_l = propagate(w.tolist(), b, X.tolist(), Y.tolist())
    eq(cost_l, cost); close(to_numpy(grads_l["dw"]), to_numpy(grads["dw"]), eps=1e-12)
    res = logistic_regression_model(X, Y, X, Y, num_iterations=20)
    res_l = logistic_regression_model(X.tolist(), Y.tolist(), X.tolist(), Y.tolist(), num_iterations=20)
    close(res_l["costs"], res["costs"], eps=1e-12)
    eq(res_l["test_accuracy"], res["test_accuracy"])
    eq(to_numpy(predict_logistic(to_numpy(res["w"]).tolist(), res["b"], X.tolist())), to_numpy(predict_logistic(res["w"], res["b"], X)))
    fails(lambda: propagate(w, b, [["a", "b"]] * 3, Y), contains="X must be an array of numbers, got dtype <U1 (strings)")
    fails(lambda: propagate(w, b, X, [[0, 1], [1]]), contains="Y must be an array of numbers, got a list that is not one")


def test_learning_rate_and_integer_parameters():
    X, Y = _tiny_data()
    w, b = initialize_with_zeros(3)
    for lr in ("0.1", None, [0.1]):
        fails(lambda: optimize(w, b, X, Y, num_iterations=1, learning_rate=lr), contains=f"learning_rate must be a positive number, got {lr!r}")
        fails(lambda: logistic_regression_model(X, Y, X, Y, learning_rate=lr), contains="learning_rate must be a positive number")
        fails(lambda: gradient_descent_step({"W": np.ones(2)}, {"dW": np.ones(2)}, lr), contains="learning_rate must be a positive number")
    # integer parameters: gradient descent returns new (float) arrays, so the step is simply right
    new = gradient_descent_step({"W": np.array([[1, 2]]), "b": np.array([[0]])}, {"dW": np.array([[1.0, -1.0]]), "db": np.array([[2]])}, 0.5)
    close(new["W"], [[0.5, 2.5]]); close(new["b"], [[-1.0]])
    fails(lambda: gradient_descent_step({"W": np.ones((1, 2))}, {"dW": [[1.0, "x"]]}, 0.5), contains="gradient of 'W' must be an array of numbers")


@pytest.mark.parametrize("A", [[[0.2, 1.5, 0.5]], [[-0.1, 0.5, 0.5]], [[2.0, -1.0, 0.3]]])
def test_cross_entropy_wants_probabilities(A):
    Y = np.array([[1, 0, 1]])
    for fn in (cross_entropy_loss, cross_entropy_cost, cross_entropy_grad):
        fails(lambda: fn(np.array(A), Y), contains="A must hold probabilities in [0, 1] (a sigmoid's output, not logits)")
        fails(lambda: fn(np.array(A), Y), contains="use cross_entropy_from_logits")
    close(cross_entropy_from_logits(np.array(A), Y), cross_entropy_loss(sigmoid(np.array(A))[0], Y), eps=1e-12)  # logits are fine there
    squared_error_cost(np.array(A), Y)  # the squared error takes any real numbers
