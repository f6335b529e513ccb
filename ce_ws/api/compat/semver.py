"""Whether a version satisfies an npm-style semver range, as Piston's `version` field is read.

Pure logic, called once per Piston request. Covered: `*`, `x`, partial
versions (`3`, `3.11`, `3.x`), comparators (`=`, `>`, `>=`, `<`, `<=`),
caret (`^3.10`), tilde (`~3.11`), hyphen ranges (`3.9 - 3.12`), ranges
joined by spaces (all must hold) and by `||` (one must). Pre-release tags
are not: a version here is three numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Version = tuple[int, int, int]
#: A version with numbers left out or wild (None).
Partial = tuple[int | None, int | None, int | None]

_PARTIAL = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")
_COMPARATOR = re.compile(r"^(<=|>=|<|>|=|\^|~>?)?\s*(.*)$")
_COMPARISONS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    "=": lambda v, b: v == b,
    ">": lambda v, b: v > b,
    ">=": lambda v, b: v >= b,
    "<": lambda v, b: v < b,
    "<=": lambda v, b: v <= b,
}


def parse_version(text: str) -> Version | None:
    """`3.11.2` as (3, 11, 2); None when it is not three numbers."""
    parts = _partial(text)
    if parts is None or None in parts:
        return None
    return parts[0] or 0, parts[1] or 0, parts[2] or 0


def satisfies(version: str, spec: str) -> bool:
    """Whether `version` (three numbers) is in the range `spec`; a bad range matches nothing."""
    parsed = parse_version(version)
    if parsed is None:
        return False
    return any(_all_hold(parsed, alternative.strip()) for alternative in spec.split("||"))


def _partial(text: str) -> Partial | None:
    """The numbers of a partial version, None for each one left out or wild."""
    match = _PARTIAL.match(text.strip())
    if match is None:
        return None
    numbers = [None if part in (None, "x", "X", "*") else int(part) for part in match.groups()]
    # After a wildcard everything is wild: `3.x.1` means `3.x`.
    for index, number in enumerate(numbers):
        if number is None:
            numbers[index:] = [None] * (3 - index)
            break
    return numbers[0], numbers[1], numbers[2]


def _all_hold(version: Version, alternative: str) -> bool:
    if alternative in ("", "*", "x", "X"):
        return True
    if " - " in alternative:
        low, _, high = alternative.partition(" - ")
        return _holds(version, f">={low.strip()}") and _holds(version, f"<={high.strip()}")
    tokens = re.sub(r"(<=|>=|<|>|=|\^|~>?)\s+", r"\1", alternative).split()
    return all(_holds(version, token) for token in tokens)


def _holds(version: Version, comparator: str) -> bool:
    match = _COMPARATOR.match(comparator)
    operator, rest = (match.group(1) or "", match.group(2)) if match else ("", "")
    parts = _partial(rest)
    if parts is None:
        return False
    if operator in ("", "="):
        return _within_partial(version, parts)
    if operator == "^":
        return _caret(version, parts)
    if operator.startswith("~"):
        return _tilde(version, parts)
    return _compare(version, operator, parts)


def _given(parts: Partial) -> list[int]:
    return [number for number in parts if number is not None]


def _padded(numbers: list[int]) -> Version:
    first, second, third = (*numbers, 0, 0, 0)[:3]
    return first, second, third


def _within_partial(version: Version, parts: Partial) -> bool:
    return all(want is None or have == want for have, want in zip(version, parts, strict=True))


def _caret(version: Version, parts: Partial) -> bool:
    """`^1.2.3` is `>=1.2.3 <2.0.0`: the numbers up to the first non-zero one are fixed."""
    given = _given(parts)
    if not given:
        return True
    fixed = next((index for index, number in enumerate(given) if number != 0), len(given) - 1)
    return _at_least_sharing(version, given, fixed)


def _tilde(version: Version, parts: Partial) -> bool:
    """`~1.2.3` is `>=1.2.3 <1.3.0`; `~1` is `1.x`."""
    given = _given(parts)
    if not given:
        return True
    return _at_least_sharing(version, given, min(1, len(given) - 1))


def _at_least_sharing(version: Version, given: list[int], fixed: int) -> bool:
    """At least `given`, with the same numbers up to index `fixed`."""
    low = _padded(given)
    return version >= low and version[: fixed + 1] == low[: fixed + 1]


def _compare(version: Version, operator: str, parts: Partial) -> bool:
    """`>`, `>=`, `<`, `<=` against a partial version, as npm reads them."""
    given = _given(parts)
    if not given:
        return operator in (">=", "<=")  # `>=*` is anything, `<*` nothing
    compare = _COMPARISONS[operator]
    if len(given) == 3 or operator in (">=", "<"):
        return compare(version, _padded(given))  # `>=1.2` is `>=1.2.0`, `<1.2` is `<1.2.0`
    # `>1.2` is `>=1.3.0` and `<=1.2` is `<1.3.0`: only the given numbers count.
    return compare(version[: len(given)], tuple(given))
