"Bad inputs and planted bugs for dlnotes.gradcheck."
import numpy as np
import pytest

from dlnotes.backend import seed, randn
from dlnotes.gradcheck import numerical_grad, numerical_grads, rel_diff, verdict, grad_check, check_layer


def test_float32_is_refused():
    x = np.ones((2, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="gradient checks need float64, got float32"):
        numerical_grad(lambda x: x.sum(), x)
    with pytest.raises(TypeError, match=r"params\['W'\]"):
        grad_check(lambda: x.sum(), {"W": x}, {"W": np.ones((2, 3))})


def test_non_array_and_non_scalar():
    with pytest.raises(TypeError, match="float64 array"):
        numerical_grad(lambda x: sum(x), [1.0, 2.0])
    with pytest.raises(ValueError, match=r"f must return a scalar, got an array of shape \(3,\)"):
        numerical_grad(lambda x: 2 * x, np.ones(3))


def test_x_restored_even_when_f_raises():
    x = np.arange(4.0)
    calls = []
    def f(x):
        calls.append(1)
        if len(calls) == 2: raise RuntimeError("boom")
        return x.sum()
    with pytest.raises(RuntimeError):
        numerical_grad(f, x)
    np.testing.assert_array_equal(x, np.arange(4.0))


def test_numerical_grad_non_contiguous_and_0d():
    base = np.arange(12.0).reshape(3, 4)
    x = base[:, ::2]  # a non-contiguous view, perturbed through the base array
    g = numerical_grad(lambda x: (x ** 3).sum(), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-7)
    np.testing.assert_array_equal(base, np.arange(12.0).reshape(3, 4))
    s = np.array(0.7)
    np.testing.assert_allclose(numerical_grad(lambda s: np.sin(s), s), np.cos(0.7), rtol=1e-9)


def test_rel_diff_shapes_and_values():
    with pytest.raises(ValueError, match=r"g \(2, 3\) and g_num \(6,\)"):
        rel_diff(np.ones((2, 3)), np.ones(6))
    assert rel_diff(np.zeros(4), np.zeros(4)) == 0.0
    assert rel_diff(np.ones(4), np.zeros(4)) == 1.0
    assert isinstance(rel_diff(np.ones(2), np.ones(2)), float)


def test_verdict_thresholds():
    assert [verdict(d) for d in (0.0, 1e-7, 9.9e-7, 1e-6, 1e-5, 1e-3, 1.01e-3, float("nan"))] == \
        ["correct", "correct", "correct", "check", "check", "check", "bug", "bug"]
    with pytest.raises(ValueError, match="non-negative"):
        verdict(-0.5)


def test_missing_grad_key_is_named():
    seed(0)
    W, b = randn(3, 2, dtype=np.float64), randn(3, dtype=np.float64)
    J = lambda: (W ** 2).sum() + b.sum()
    with pytest.raises(KeyError, match="no gradient for parameter 'b'"):
        grad_check(J, {"W": W, "b": b}, {"dW": 2 * W})
    # both spellings are accepted
    d = grad_check(J, {"W": W, "b": b}, {"dW": 2 * W, "b": np.ones(3)})
    assert set(d) == {"W", "b", "all"} and max(d.values()) < 1e-7


def test_grad_shape_mismatch_and_types():
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"gradient of 'W' has shape \(2, 3\), expected the parameter's shape \(3, 2\)"):
        grad_check(lambda: W.sum(), {"W": W}, {"W": np.ones((2, 3))})
    with pytest.raises(TypeError, match="grads must be a dict"):
        grad_check(lambda: W.sum(), {"W": W}, np.ones((3, 2)))
    with pytest.raises(TypeError, match="params must be a dict"):
        numerical_grads(lambda: W.sum(), W)


def test_grad_check_catches_factor_and_nan():
    seed(1)
    x = randn(6, dtype=np.float64)
    J = lambda: (x ** 2).sum()
    assert grad_check(J, x, 2 * x)["x"] < 1e-8
    with pytest.raises(AssertionError, match=r"'x' has relative difference 3\.333e-01"):
        grad_check(J, x, x)  # forgot the factor 2: |g - 2g| / (|g| + |2g|) = 1/3
    with pytest.raises(AssertionError, match="'x'"):
        grad_check(J, x, np.full(6, np.nan))


class _Affine:
    "y = x @ W + b with examples on rows; `bug` selects a wrong backward."
    def __init__(self, n_in, n_out, bug=None):
        self.params = {"W": randn(n_in, n_out, dtype=np.float64), "b": randn(n_out, dtype=np.float64)}
        self.grads, self.bug = {}, bug

    def forward(self, x, training=False):
        self.x = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dy):
        W = self.params["W"]
        self.grads["W"] = self.x.T @ dy
        self.grads["b"] = dy.sum(axis=0) if self.bug != "b_mean" else dy.mean(axis=0)
        return dy @ (W.T if self.bug != "no_transpose" else W)


def test_check_layer_passes_a_correct_layer():
    seed(2)
    d = check_layer(_Affine(4, 3), randn(5, 4, dtype=np.float64))
    assert set(d) == {"x", "W", "b", "all"}
    assert max(d.values()) < 1e-7


@pytest.mark.parametrize("bug,key", [("no_transpose", "'x'"), ("b_mean", "'b'")])
def test_check_layer_catches_wrong_backward(bug, key):
    seed(3)
    layer = _Affine(4, 4, bug=bug)  # square W: the transpose bug keeps every shape right
    with pytest.raises(AssertionError, match=key):
        check_layer(layer, randn(5, 4, dtype=np.float64))


def test_check_layer_needs_float64_and_deterministic_layer():
    seed(4)
    layer = _Affine(3, 2)
    with pytest.raises(TypeError, match="need float64, got float32"):
        check_layer(layer, randn(2, 3, dtype=np.float32))

    class _Noisy(_Affine):  # forward draws fresh noise on every call: the check must fail
        def forward(self, x, training=False):
            return super().forward(x) + randn(x.shape[0], 2, dtype=np.float64)
    with pytest.raises(AssertionError):
        check_layer(_Noisy(3, 2), randn(2, 3, dtype=np.float64))
