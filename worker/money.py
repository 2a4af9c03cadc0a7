"""Money as text: one place that turns an amount into digits.

Amounts are Decimal (an int is accepted as a whole number of dollars; floats are
refused: money is Decimal end to end). Every function takes an explicit number of
decimal places and rounds half-even (banker's rounding), as Python's own
``f"{Decimal:.4f}"`` does, so switching a call site to these keeps its text.

- :func:`fixed`: ``Decimal("12.34"), 4`` -> ``12.3400`` (the figures in JSON and CSV);
  a negative amount keeps its sign in front of the digits (``-0.5000``).
- :func:`usd`: ``$12.3400``; negative amounts as ``-$0.5000``, and an amount that
  rounds to zero has no sign (``$0.0000``). Asked for fewer than 4 places (cents), an
  amount below a cent gets enough places to show its first two digits, at least 4 and
  at most 6 (``$0.0042``, ``$0.000042``), so a small cost is never shown as ``$0.00``.
- :func:`short`: to the cent with thousands separators at or above a dollar
  (``1,234.57``), four places below it (up to six for amounts below a hundredth of a
  cent), so amounts below a cent keep their digits (``0.0012``, ``0.000042``).

Ground floor: imports nothing of tokentally.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext

Amount = Decimal | int


def amount(value: Amount | str) -> Decimal:
    """``value`` as a finite Decimal; floats and bools are refused (TypeError), text that
    is not an amount and infinities/NaN too (ValueError)."""
    if isinstance(value, float | bool):
        raise TypeError(f"expected a Decimal, got {type(value).__name__} {value!r}")
    try:
        out = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not out.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return out


def fixed(value: Amount | str, places: int, *, grouping: bool = False) -> str:
    """The amount with exactly ``places`` decimals, half-even; ``grouping`` adds thousands separators."""
    with localcontext() as ctx:
        ctx.prec = 100  # never limit the integer digits of an amount
        rounded = amount(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{rounded:,f}" if grouping else f"{rounded:f}"


SUB_CENT_MAX_PLACES = 6  # the most places an amount below a cent is shown with


def places_for(value: Amount | str, places: int) -> int:
    """``places``, or for a non-zero amount below a cent asked for in cents, enough places (4 to 6)
    to show its first two digits: ``0.0042`` -> 4, ``0.000042`` -> 6."""
    size = abs(amount(value))
    if places >= 4 or size == 0 or size >= Decimal("0.01"):
        return places
    return min(max(4, 1 - size.adjusted()), SUB_CENT_MAX_PLACES)


def usd(value: Amount | str, places: int = 4, *, grouping: bool = False) -> str:
    """``$12.3400``, ``-$0.5000``: the sign before the dollar sign, none for a zero; ``$0.0042``
    (not ``$0.00``) when cents were asked for (see :func:`places_for`)."""
    places = places_for(value, places)
    text = fixed(abs(amount(value)), places, grouping=grouping)
    return f"-${text}" if amount(value) < 0 and Decimal(text.replace(",", "")) != 0 else f"${text}"


def short(value: Amount | str) -> str:
    """``1,234.57`` at or above a dollar, ``0.0012`` below it (amounts below a cent keep digits)."""
    if amount(value) >= 1:
        return fixed(value, 2, grouping=True)
    return fixed(value, max(4, places_for(value, 2)))
