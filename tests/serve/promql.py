"""Test helpers: which metric names a PromQL expression reads, and which series an exposition has.

It is not a parser. It walks the expression once and drops what cannot be a metric name:
strings, label matchers `{...}`, ranges and subqueries `[...]`, numbers and durations, Grafana
variables (`$model`, `${model}`, `$__rate_interval`), comments, operators, keywords, grouping
label lists (`by (model, le)`) and function or aggregation names (an identifier before `(`).
Unbalanced brackets, unterminated strings and unknown functions raise `PromQLError`, so a typo in
a dashboard query fails a test instead of hiding a metric name.
"""

from __future__ import annotations

import re

_AGGREGATION_NAMES = """sum min max avg group stddev stdvar count count_values bottomk topk
quantile limitk limit_ratio"""
_FUNCTION_NAMES = """abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time
ceil changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week
day_of_year days_in_month deg delta deriv end exp floor histogram_avg histogram_count
histogram_fraction histogram_quantile histogram_stddev histogram_stdvar histogram_sum
holt_winters hour idelta increase irate label_join label_replace last_over_time ln log10 log2
mad_over_time max_over_time min_over_time minute month predict_linear present_over_time
quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_by_label
sort_by_label_desc sort_desc sqrt start stddev_over_time stdvar_over_time sum_over_time tan tanh
time timestamp vector year"""
AGGREGATIONS = frozenset(_AGGREGATION_NAMES.split())
FUNCTIONS = frozenset(_FUNCTION_NAMES.split())
# Keywords followed by a parenthesised list of label names (group_left/right's list is optional).
GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = GROUPING | {"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"}

_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_VARIABLE = re.compile(r"\$(?:\{[^}]*\}|\w+)")
_NAME_MATCHER = re.compile(r"""__name__\s*=\s*(["'`])([A-Za-z_:][A-Za-z0-9_:]*)\1""")
_CLOSING = {"(": ")", "[": "]", "{": "}"}


class PromQLError(ValueError):
    """An expression the tokenizer cannot read (the message says where)."""


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects, e.g. {"ladder_requests_total"}."""
    names: set[str] = set()
    stack: list[str] = []
    i = 0
    while i < len(expr):
        char = expr[i]
        if char.isspace():
            i += 1
        elif char == "#":
            end = expr.find("\n", i)
            i = len(expr) if end < 0 else end
        elif char in "\"'`":
            i = _skip_string(expr, i)
        elif char in "{[":
            end = _skip_group(expr, i)
            if char == "{":
                names.update(match.group(2) for match in _NAME_MATCHER.finditer(expr, i, end))
            i = end
        elif char == "$":
            match = _VARIABLE.match(expr, i)
            if match is None:
                raise PromQLError(f"a '$' that starts no Grafana variable at offset {i}: {expr!r}")
            i = match.end()
        elif char == "(":
            stack.append(")")
            i += 1
        elif char in ")]}":
            if not stack or stack.pop() != char:
                raise PromQLError(f"unbalanced {char!r} at offset {i}: {expr!r}")
            i += 1
        elif match := _DURATION.match(expr, i) or _NUMBER.match(expr, i):
            i = match.end()
        elif match := _IDENT.match(expr, i):
            word, i = match.group(), match.end()
            i = _read_word(expr, word, i, names)
        else:  # an operator or a comma
            i += 1
    if stack:
        raise PromQLError(f"unclosed '(' in {expr!r}")
    return names


def _read_word(expr: str, word: str, i: int, names: set[str]) -> int:
    """Record `word` if it names a metric; return where reading goes on."""
    lowered = word.lower()
    after = _skip_space(expr, i)
    if lowered in GROUPING:
        if after < len(expr) and expr[after] == "(":
            return _skip_group(expr, after)  # label names, not metrics
        return i
    if lowered in KEYWORDS:
        return i
    grouped = _IDENT.match(expr, after)
    if lowered in AGGREGATIONS and grouped and grouped.group().lower() in ("by", "without"):
        return i  # `sum by (model) (...)`
    if after < len(expr) and expr[after] == "(":
        if lowered not in AGGREGATIONS and word not in FUNCTIONS:
            raise PromQLError(f"unknown PromQL function {word!r} in {expr!r}")
        return i
    names.add(word)
    return i


def _skip_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i


def _skip_string(expr: str, i: int) -> int:
    """The offset just past the string literal that starts at `i`."""
    quote = expr[i]
    j = i + 1
    while j < len(expr):
        if expr[j] == "\\" and quote != "`":
            j += 2
            continue
        if expr[j] == quote:
            return j + 1
        j += 1
    raise PromQLError(f"unterminated string at offset {i}: {expr!r}")


def _skip_group(expr: str, i: int) -> int:
    """The offset just past the bracket group that opens at `i` (strings inside are skipped)."""
    closing = [_CLOSING[expr[i]]]
    j = i + 1
    while j < len(expr):
        char = expr[j]
        if char in "\"'`":
            j = _skip_string(expr, j)
            continue
        if char in _CLOSING:
            closing.append(_CLOSING[char])
        elif char in ")]}":
            if char != closing.pop():
                raise PromQLError(f"unbalanced {char!r} at offset {j}: {expr!r}")
            if not closing:
                return j + 1
        j += 1
    raise PromQLError(f"unclosed {expr[i]!r} at offset {i}: {expr!r}")


# The series each metric type adds to the exposition (a counter's family name ends in _total).
SERIES_SUFFIXES = {
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}


def families_in(exposition: str) -> dict[str, str]:
    """Metric families declared by `# TYPE name type` lines of a text exposition: name -> type."""
    families = {}
    for line in exposition.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[:2] == ["#", "TYPE"]:
            families[parts[2]] = parts[3]
    return families


def series_of(families: dict[str, str]) -> set[str]:
    """Every series name a query may select, e.g. a histogram's _bucket, _sum and _count."""
    return {name + suffix for name, kind in families.items() for suffix in SERIES_SUFFIXES[kind]}
