"Argument checks of dlnotes._checks: what they accept, what they refuse, and the one shape of their messages."
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from dlnotes._checks import arg_error, check_int, check_number, check_choice


@given(v=st.integers(-50, 50), low=st.one_of(st.none(), st.integers(-5, 5)), high=st.one_of(st.none(), st.integers(-5, 10)))
def test_check_int_accepts_exactly_the_ints_in_range(v, low, high):
    inside = (low is None or v >= low) and (high is None or v <= high)
    if inside:
        assert check_int(v, "n", low, high) == v and type(check_int(np.int32(v), "n", low, high)) is int
    else:
        with pytest.raises(ValueError, match=f"^n must be an? .*, got {v}$"): check_int(v, "n", low, high)


@pytest.mark.parametrize("bad", [True, False, 2.0, "3", None, np.bool_(True), [1]])
def test_check_int_refuses_what_is_not_an_int(bad):
    with pytest.raises(ValueError) as e: check_int(bad, "units", 1)
    assert str(e.value) == f"units must be a positive int, got {bad!r}"


@pytest.mark.parametrize("low, high, said", [(None, None, "an int"), (0, None, "a non-negative int"), (1, None, "a positive int"),
                                              (3, None, "an int >= 3"), (None, 4, "an int <= 4"), (1, 4, "an int in [1, 4]")])
def test_check_int_says_the_range(low, high, said):
    with pytest.raises(ValueError) as e: check_int(2.5, "n", low, high, owner="Dense", note="the width")
    assert str(e.value) == f"Dense: n must be {said} (the width), got 2.5"


@given(v=st.floats(allow_nan=True, allow_infinity=True), low_open=st.booleans(), high_open=st.booleans())
def test_check_number_is_the_interval(v, low_open, high_open):
    ok = math.isfinite(v) and (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)
    if ok: assert check_number(v, "p", 0, 1, low_open, high_open) == v
    else:
        with pytest.raises(ValueError, match=r"^p must be a number in [\[(]0, 1[\])], got"): check_number(v, "p", 0, 1, low_open, high_open)


@pytest.mark.parametrize("args, said", [((None, None, False, False), "a finite number"), ((0, None, True, False), "a positive number"),
                                        ((0, None, False, False), "a non-negative number"), ((2, None, True, False), "a number > 2"),
                                        ((None, 5, False, True), "a number < 5"), ((0, 1, False, True), "a number in [0, 1)")])
def test_check_number_says_the_interval(args, said):
    with pytest.raises(ValueError) as e: check_number(float("nan"), "lr", *args)
    assert str(e.value) == f"lr must be {said}, got nan"
    with pytest.raises(ValueError, match="got True"): check_number(True, "lr", *args)
    with pytest.raises(ValueError, match="got '0.5'"): check_number("0.5", "lr", *args)


def test_check_choice_and_arg_error():
    assert check_choice("max", "mode", ("max", "average")) == "max"
    with pytest.raises(ValueError, match="^Pool: mode must be one of 'max', 'average', got 'min'$"):
        check_choice("min", "mode", ("max", "average"), owner="Pool")
    with pytest.raises(ValueError, match=r"got \{\}"): check_choice({}, "mode", {"max": 1})  # unhashable: refused, not a TypeError
    e = arg_error("petals", "an even int >= 2", "3", note="of the flower")
    assert isinstance(e, ValueError) and str(e) == "petals must be an even int >= 2 (of the flower), got 3"
