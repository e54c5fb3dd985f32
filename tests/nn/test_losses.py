"Gradient checks of every loss over many shapes, the stable formulas at extreme logits, targets and one_hot, for dlnotes.nn.losses."
import numpy as np
import pytest

from dlnotes.backend import seed, randn, rand, to_numpy, xp
from dlnotes.gradcheck import numerical_grad, rel_diff
from dlnotes.nn.losses import BinaryCrossentropy, CategoricalCrossentropy, MeanSquaredError, get_loss, LOSSES, one_hot

BATCHES = [1, 3, 7]
TOL = 1e-7


# ---------------------------------------------------------------- losses

def _loss_cases():
    "(loss, prediction maker, target maker) for every loss and setting."
    logits = lambda shape: randn(*shape, dtype=np.float64) * 2
    probs = lambda shape: rand(*shape, dtype=np.float64) * 0.8 + 0.1
    binary = lambda shape: (rand(*shape, dtype=np.float64) > 0.5).astype(np.float64)
    onehot = lambda shape: one_hot(xp.asarray(to_numpy(rand(shape[0]) * shape[1]).astype(np.int64)), shape[1], dtype=np.float64)
    soft = lambda shape: (lambda P: P / P.sum(axis=-1, keepdims=True))(rand(*shape, dtype=np.float64) + 0.1)
    real = lambda shape: randn(*shape, dtype=np.float64)
    return [("bce_logits", BinaryCrossentropy(), logits, binary), ("bce_probs", BinaryCrossentropy(from_logits=False), probs, binary),
            ("cce_logits", CategoricalCrossentropy(), logits, onehot), ("cce_logits_soft", CategoricalCrossentropy(), logits, soft),
            ("cce_probs", CategoricalCrossentropy(from_logits=False), probs, onehot), ("mse", MeanSquaredError(), real, real)]


@pytest.mark.parametrize("case", range(6))
@pytest.mark.parametrize("m", BATCHES)
@pytest.mark.parametrize("n", [1, 4, 9])
def test_loss_gradcheck(case, m, n):
    seed(400 + case * 100 + m * 10 + n)
    name, loss, make_pred, make_target = _loss_cases()[case]
    if name.startswith("cce") and n == 1: n = 2  # a categorical loss needs at least two classes to be non-trivial
    P, Y = make_pred((m, n)), make_target((m, n))
    J = loss.forward(P, Y)
    assert np.ndim(to_numpy(J)) == 0
    g = loss.backward()
    assert g.shape == P.shape
    g_num = numerical_grad(lambda P_: loss.forward(P_, Y), P)
    assert rel_diff(g, g_num) < TOL, (name, rel_diff(g, g_num))


@pytest.mark.parametrize("m", BATCHES)
def test_losses_match_naive_formulas(m):
    seed(500 + m)
    Z = randn(m, 1, dtype=np.float64) * 3
    y = (rand(m, 1, dtype=np.float64) > 0.5).astype(np.float64)
    a = 1 / (1 + np.exp(-to_numpy(Z)))
    naive = -(to_numpy(y) * np.log(a) + (1 - to_numpy(y)) * np.log(1 - a)).mean()
    np.testing.assert_allclose(float(BinaryCrossentropy()(Z, y)), naive, rtol=1e-12)
    np.testing.assert_allclose(float(BinaryCrossentropy(from_logits=False)(xp.asarray(a), y)), naive, rtol=1e-9)
    Zc = to_numpy(randn(m, 4, dtype=np.float64) * 3)
    labels = np.arange(m) % 4
    S = np.exp(Zc) / np.exp(Zc).sum(axis=1, keepdims=True)
    naive_c = -np.log(S[np.arange(m), labels]).mean()
    np.testing.assert_allclose(float(CategoricalCrossentropy()(xp.asarray(Zc), xp.asarray(labels))), naive_c, rtol=1e-12)
    np.testing.assert_allclose(float(CategoricalCrossentropy(from_logits=False)(xp.asarray(S), xp.asarray(labels))), naive_c, rtol=1e-9)
    np.testing.assert_allclose(float(MeanSquaredError()(Z, y)), ((to_numpy(Z) - to_numpy(y)) ** 2).mean(), rtol=1e-12)


def test_losses_finite_at_extreme_logits():
    Z = xp.asarray([[1e4], [-1e4], [1e4], [-1e4]])
    y = xp.asarray([[1.0], [0.0], [0.0], [1.0]])
    bce = BinaryCrossentropy()
    np.testing.assert_allclose(float(bce(Z, y)), 2e4 / 4, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(bce.backward()), [[0.0], [0.0], [0.25], [-0.25]], atol=1e-12)
    Zc = xp.asarray([[1e4, -1e4, 0.0], [-1e4, 1e4, 5.0], [-1e4, -1e4, -1e4]])
    cce = CategoricalCrossentropy()
    L = float(cce(Zc, xp.asarray([0, 0, 2])))
    np.testing.assert_allclose(L, (0 + 2e4 + np.log(3)) / 3, rtol=1e-12)
    g = to_numpy(cce.backward())
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g.sum(axis=1), np.zeros(3), atol=1e-12)  # softmax - one-hot sums to zero per row
    for dtype in (np.float32, np.float64):
        assert np.isfinite(float(bce(Z.astype(dtype), y))) and np.isfinite(float(cce(Zc.astype(dtype), xp.asarray([0, 1, 2]))))


def test_integer_labels_equal_one_hot():
    seed(10)
    Z = randn(5, 3, dtype=np.float64)
    labels = xp.asarray([2, 0, 1, 1, 0])
    a, b = CategoricalCrossentropy(), CategoricalCrossentropy()
    np.testing.assert_allclose(float(a(Z, labels)), float(b(Z, one_hot(labels, 3, dtype=np.float64))), rtol=1e-14)
    np.testing.assert_allclose(to_numpy(a.backward()), to_numpy(b.backward()), rtol=1e-14)


def test_binary_accepts_label_vector():
    seed(11)
    Z = randn(6, 1, dtype=np.float64)
    y = xp.asarray([0.0, 1, 1, 0, 1, 0])
    a, b = BinaryCrossentropy(), BinaryCrossentropy()
    np.testing.assert_allclose(float(a(Z, y)), float(b(Z, y.reshape(6, 1))), rtol=1e-14)


def test_get_loss_names_and_errors():
    assert isinstance(get_loss("binary_crossentropy"), BinaryCrossentropy)
    assert isinstance(get_loss("categorical_crossentropy"), CategoricalCrossentropy)
    assert isinstance(get_loss("sparse_categorical_crossentropy"), CategoricalCrossentropy)
    assert isinstance(get_loss("mse"), MeanSquaredError) and isinstance(get_loss("mean_squared_error"), MeanSquaredError)
    obj = CategoricalCrossentropy()
    assert get_loss(obj) is obj
    with pytest.raises(ValueError, match="unknown loss 'hinge'; valid names: binary_crossentropy"): get_loss("hinge")
    with pytest.raises(TypeError, match="loss must be a name or a Loss object, got int"): get_loss(3)
    with pytest.raises(ValueError, match=r"categorical_crossentropy: y_true has shape \(4, 2\), expected the predictions' shape \(4, 3\)"):
        CategoricalCrossentropy()(xp.zeros((4, 3)), xp.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"holds labels from 0 to 5; class labels must be integers in \[0, 3\)"):
        CategoricalCrossentropy()(xp.zeros((2, 3)), xp.asarray([0, 5]))
    with pytest.raises(RuntimeError, match="backward called before forward"): MeanSquaredError().backward()


def test_one_hot():
    Y = to_numpy(one_hot(np.array([1, 0, 2, 1]), 3))
    np.testing.assert_array_equal(Y, np.eye(3, dtype=np.float32)[[1, 0, 2, 1]])
    assert one_hot(np.array([0]), 2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got labels from -1 to 2"): one_hot(np.array([-1, 2]), 3)
    with pytest.raises(ValueError, match=r"1-D array of integer labels, got shape \(2, 1\)"): one_hot(np.array([[0], [1]]), 2)


def test_binary_cross_entropy_is_chapter_1s_formula():
    "The loss object and chapter 1's column-layout function compute the same numbers (one formula, in basics)."
    from dlnotes.nn.basics import cross_entropy_from_logits
    seed(15)
    Z = randn(7, 3, dtype=np.float64) * 4
    Y = (rand(7, 3, dtype=np.float64) > 0.5).astype(np.float64)
    per_example = to_numpy(cross_entropy_from_logits(Z.T, Y.T))  # (1, m): summed over the 3 output units
    np.testing.assert_allclose(float(BinaryCrossentropy()(Z, Y)), per_example.sum() / Z.size, rtol=1e-14)


@pytest.mark.parametrize("loss", [BinaryCrossentropy(), BinaryCrossentropy(from_logits=False), MeanSquaredError(),
                                  CategoricalCrossentropy(), CategoricalCrossentropy(from_logits=False)], ids=repr)
@pytest.mark.parametrize("shape", [(5, 1), (4, 3), (3, 2, 4)])
def test_weighted_losses_and_their_gradients(loss, shape):
    seed(21)
    Y = (rand(*shape, dtype=np.float64) > 0.5).astype(np.float64)
    if isinstance(loss, CategoricalCrossentropy): Y = xp.eye(shape[-1])[xp.asarray(np.arange(int(np.prod(shape[:-1]))) % shape[-1])].reshape(shape)
    logits = getattr(loss, "from_logits", True)
    P = randn(*shape, dtype=np.float64) if logits else rand(*shape, dtype=np.float64) * 0.8 + 0.1
    w = rand(shape[0], dtype=np.float64) * 2
    J = float(loss(P, Y, w))
    g = loss.backward()
    assert rel_diff(to_numpy(g), numerical_grad(lambda P_: float(loss(P_, Y, w)), to_numpy(P).copy())) < TOL
    # the weighted mean, per example: Σ_i w_i ℓ_i / m with ℓ_i the example's own mean loss
    per_example = [float(loss(P[i:i + 1], Y[i:i + 1])) for i in range(shape[0])]
    assert J == pytest.approx(sum(float(w[i]) * l for i, l in enumerate(per_example)) / shape[0], rel=1e-12)
    assert float(loss(P, Y, xp.ones(shape[0]))) == pytest.approx(float(loss(P, Y)), rel=1e-12)


def test_label_forms_and_refusals():
    cce, y = CategoricalCrossentropy(), [2, 0, 1, 2]
    want = to_numpy(one_hot(np.array(y), 3))
    for form in (np.array(y), np.array(y, dtype=np.float64), np.array(y).reshape(4, 1), np.array(y, dtype=np.int8), y):
        np.testing.assert_array_equal(to_numpy(cce.targets(form, (4, 3))), want)
    with pytest.raises(TypeError, match="y_true must hold numbers"): cce.targets(np.array(list("abcd")), (4, 3))
    with pytest.raises(TypeError, match="got dtype object"): cce.targets(np.array([None] * 4), (4, 3))
    with pytest.raises(ValueError, match=r"non-integer values .* integers in \[0, 3\)"): cce.targets(np.array([0, 1.5, 2, 0]), (4, 3))
    with pytest.raises(ValueError, match=r"labels from -1 to 2"): cce.targets(np.array([-1, 1, 2, 0]), (4, 3))
    bce = BinaryCrossentropy()
    assert bce.targets(np.array([[1], [0]]), (2,)).shape == (2,) and bce.targets(np.array([1, 0]), (2, 1)).shape == (2, 1)
    with pytest.raises(TypeError, match="binary_crossentropy: y_true must hold numbers"): bce.targets(np.array(["y", "n"]), (2, 1))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(2,\)"): bce(xp.zeros((2, 1)), xp.ones((2, 1)), xp.ones((2, 1)))
    with pytest.raises(ValueError, match="finite and non-negative"): bce(xp.zeros((2, 1)), xp.ones((2, 1)), xp.asarray([1.0, np.nan]))
