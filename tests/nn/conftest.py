"Fixtures shared by the tests of dlnotes.nn."
import pytest

from dlnotes.data import load_digits_data, train_test_split


@pytest.fixture(scope="session")
def digits():
    "The scikit-learn digits split 75/25 with the classes' proportions kept: (X_train, X_test, y_train, y_test)."
    X, y = load_digits_data()
    return train_test_split(X, y, test_size=0.25, seed=0, stratify=True)
