import numpy as np
import pytest

from hybridkit._expr import ExpressionError, evaluate


def test_field_expression_matches_numpy():
    x = np.linspace(0, 100, 65)
    got = evaluate("0.1 + 0.4 * sin(pi * x / L)**2", {"x": x, "L": 100.0})
    np.testing.assert_allclose(got, 0.1 + 0.4 * np.sin(np.pi * x / 100) ** 2, rtol=1e-12)


def test_arithmetic_and_comparisons():
    assert evaluate("2**3 - 7 // 2 + 5 % 3 - -1") == 8 - 3 + 2 + 1
    np.testing.assert_array_equal(evaluate("x > 1", {"x": np.array([0.0, 2.0])}), [0.0, 1.0])


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os').system('echo hi')", "Not allowed"),
    ("__import__('os')", "Unknown function '__import__'"),
    ("x.__class__", "Not allowed"),
    ("open('f')", "Unknown function 'open'"),
    ("[1, 2]", "Not allowed"),
    ("x[0]", "Not allowed"),
    ("lambda: 1", "Not allowed"),
    ("y + 1", "Unknown name 'y'"),
    ("2 ** 1000", "Exponent too large"),
    ("1 +", "Invalid expression"),
    ("'a' * 3", "Not allowed"),
])
def test_unsafe_or_invalid_expressions_are_refused(text, fragment):
    with pytest.raises(ExpressionError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        evaluate(text, {"x": np.ones(3)})
