"Penalties and their gradients for dlnotes.nn.regularizers."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, to_numpy
from dlnotes.gradcheck import numerical_grad, rel_diff
from dlnotes.nn.regularizers import L1, L2, L1L2, Regularizer, get_regularizer, REGULARIZERS


def test_values_by_hand():
    W = np.array([[3.0, -1.0], [0.0, 2.0]])
    assert float(L2(0.5)(W)) == pytest.approx(0.5 * 14)
    assert float(L1(0.25)(W)) == pytest.approx(0.25 * 6)
    assert float(L1L2(0.25, 0.5)(W)) == pytest.approx(1.5 + 7)
    np.testing.assert_allclose(to_numpy(L2(0.5).gradient(W)), W)
    np.testing.assert_allclose(to_numpy(L1(2.0).gradient(W)), [[2, -2], [0, 2]])
    assert float(Regularizer()(W)) == 0 and not to_numpy(Regularizer().gradient(W)).any()


@pytest.mark.parametrize("reg", [L1(0.3), L2(0.2), L1L2(0.1, 0.4)], ids=repr)
def test_gradients_match_central_differences(reg):
    seed(3)
    W = to_numpy(randn(5, 4, dtype=np.float64))
    W = np.where(np.abs(W) < 0.05, -0.7, W)  # away from |W|'s kink
    assert rel_diff(to_numpy(reg.gradient(W)), numerical_grad(lambda W_: float(reg(W_)), W.copy())) < 1e-7


def test_lookup_config_and_errors():
    assert set(REGULARIZERS) == {"l1", "l2", "l1_l2", "l1l2"}
    assert isinstance(get_regularizer("l1"), L1) and get_regularizer("L2").l2 == 0.01
    assert get_regularizer(None) is None
    r = L1L2(0.1, 0.2)
    assert get_regularizer(r) is r and repr(r) == "L1L2(l1=0.1, l2=0.2)"
    assert L1L2(**r.get_config()).get_config() == r.get_config()
    with pytest.raises(ValueError, match="got 'l3'"): get_regularizer("l3")
    with pytest.raises(ValueError, match="got 3"): get_regularizer(3)
    with pytest.raises((TypeError, ValueError), match="l1"): L1("big")
    with pytest.raises(ValueError, match="l2 must be a non-negative number"): L2(-0.1)
