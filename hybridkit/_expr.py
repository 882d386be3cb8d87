"""A safe evaluator for numeric expressions written in configs, e.g. ``"0.1 + sin(pi * x / L)**2"``.

Only numbers, the names passed in, the constants ``pi`` and ``e``, arithmetic
(``+ - * / // % **``, unary ``+ -``) and the functions in :data:`FUNCTIONS` are allowed. The text
is parsed with :mod:`ast` and walked node by node: nothing is ever handed to ``eval``, so an
expression cannot import, call methods, read attributes or index. Numbers are float64, so no
expression can build a huge integer (``((9**64)**64)**64`` is ``inf``, not a minutes-long
computation), and every failure, numeric ones included, is an :class:`ExpressionError`.
"""
from __future__ import annotations

import ast
import operator
from typing import Mapping

import numpy as np

__all__ = ["evaluate", "ExpressionError", "FUNCTIONS"]

#: the functions an expression may call (all elementwise on numpy arrays)
FUNCTIONS = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "tanh": np.tanh, "abs": np.abs, "minimum": np.minimum, "maximum": np.maximum,
    "where": np.where, "heaviside": lambda v: np.heaviside(v, 0.5),
}
#: how many arguments each function takes (np.where with one argument returns indices, not values)
_ARITY = {"minimum": 2, "maximum": 2, "where": 3}
CONSTANTS = {"pi": np.pi, "e": np.e}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_LENGTH = 1000  # long enough for any sensible coefficient, short enough to bound parsing


class ExpressionError(ValueError):
    """The expression is not valid or uses something that is not allowed."""


def evaluate(text: str, variables: Mapping[str, object] | None = None):
    """Evaluate an arithmetic expression over ``variables`` (numbers or numpy arrays).

    Args:
        text: e.g. ``"0.5 * (1 + sin(2 * pi * x / L)**2)"``.
        variables: names the expression may use, e.g. ``{"x": x_array, "L": 100.0}``.

    Returns:
        A float or a numpy array.

    Raises:
        ExpressionError: for syntax errors, unknown names or functions, or anything that is not
            plain arithmetic; the message names the offending part and what is allowed.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"Expected an expression string, got {type(text).__name__}.")
    if len(text) > _MAX_LENGTH:
        raise ExpressionError(f"Expression longer than {_MAX_LENGTH} characters.")
    names = {**CONSTANTS, **dict(variables or {})}
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"Invalid expression {text!r}: {exc.msg}.") from None
    try:
        with np.errstate(all="ignore"):
            return _walk(tree.body, names, text)
    except ExpressionError:
        raise
    except (ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        # e.g. shapes that do not broadcast, a literal too large for a float, nesting too deep
        raise ExpressionError(f"Cannot evaluate {text!r}: {exc}.") from None


def _walk(node, names, text):
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return np.float64(node.value)  # float: an int power tower would compute for hours
    if isinstance(node, ast.Name):
        if node.id in names:
            value = names[node.id]
            return np.float64(value) if type(value) is int else value
        raise ExpressionError(
            f"Unknown name {node.id!r} in {text!r}. Allowed names: {sorted(names)}; "
            f"functions: {sorted(FUNCTIONS)}."
        )
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left, names, text), _walk(node.right, names, text)
        if isinstance(node.op, ast.Pow) and np.max(np.abs(right)) > 64:
            raise ExpressionError(f"Exponent too large in {text!r} (at most 64).")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_walk(node.operand, names, text))
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left = _walk(node.left, names, text)
        right = _walk(node.comparators[0], names, text)
        return np.asarray(_COMPARE[type(node.ops[0])](left, right), dtype=np.float64)[()]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise ExpressionError(
                f"Unknown function {node.func.id!r} in {text!r}. Allowed: {sorted(FUNCTIONS)}."
            )
        arity = _ARITY.get(node.func.id, 1)
        if len(node.args) != arity:
            raise ExpressionError(
                f"{node.func.id}() takes {arity} argument(s), got {len(node.args)} in {text!r}."
            )
        return fn(*[_walk(a, names, text) for a in node.args])
    raise ExpressionError(
        f"Not allowed in an expression: {ast.unparse(node)!r} (in {text!r}). Only numbers, "
        f"names, arithmetic, comparisons and the functions {sorted(FUNCTIONS)} are allowed."
    )
