"""Reading one TOML table: typed values, environment overrides, secrets, durations.

Every settings module reads its tables through :class:`Reader`. A wrong type, a bad
value or a key nobody took raises :class:`SettingsError` naming the key (the CLI
turns it into exit code 2). ``TOKENTALLY_<PATH>`` overrides a scalar key;
``TOKENTALLY_<PATH>_FILE`` names a file holding the value (for secrets, which are
never read from the settings file itself).
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ENV_PREFIX = "TOKENTALLY_"


class SettingsError(Exception):
    """A setting is missing, unknown or invalid; the message names the key."""


MAX_INT = 10**9  # no count, size or duration setting needs more; beyond it a value is a typo


class Env(dict):
    """The environment settings are read from, remembering every variable a setting looked for,
    so a ``TOKENTALLY_*`` variable that names no setting can be refused like an unknown key."""

    def __init__(self, values: dict[str, str]):
        super().__init__(values)
        self.seen: set[str] = set()

    def unknown(self, allowed: frozenset[str]) -> list[str]:
        return sorted(k for k in self if k.startswith(ENV_PREFIX) and k not in self.seen and k not in allowed)


class Reader:
    """Takes keys out of one TOML table, checking types; leftovers are unknown keys."""

    def __init__(self, table: Any, path: str, env: dict[str, str] | None):
        if not isinstance(table, dict):
            raise SettingsError(f"{path or 'settings'}: expected a table")
        self.table = dict(table)
        self.path = path
        self.env = env  # None for arrays of tables: no env overrides there

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        key = self.key(name)
        value = self.table.pop(name, None)
        if self.env is not None:
            var = ENV_PREFIX + key.upper().replace(".", "_")
            if isinstance(self.env, Env):
                self.env.seen.update((var, var + "_FILE"))
            if var in self.env:
                value = _from_env(self.env[var], kind, key)
            elif var + "_FILE" in self.env:
                try:
                    text = Path(self.env[var + "_FILE"]).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise SettingsError(f"{key}: cannot read {var}_FILE: {exc.strerror}") from None
                value = _from_env(text, kind, key)
        if value is None:
            if required:
                raise SettingsError(f"{key}: required")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise SettingsError(f"{key}: expected {_kind_name(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise SettingsError(f"{key}: expected {_kind_name(kinds)}, got {type(value).__name__} {value!r}")
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.take(name, (str, int, float), required=required)
        if value is None:
            return None
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise SettingsError(f"{self.key(name)}: not a decimal amount: {value!r}") from None
        if not amount.is_finite() or amount < 0:
            raise SettingsError(f"{self.key(name)}: must be a non-negative amount, got {value!r}")
        return amount

    def positive_int(self, name: str, default: int | None = None, *, maximum: int = MAX_INT) -> int | None:
        value = self.take(name, int, default)
        if value is not None and not 0 < value <= maximum:
            raise SettingsError(f"{self.key(name)}: must be a positive integer up to {maximum:,}, got {value!r}")
        return value

    def bounded_int(self, name: str, default: int, *, minimum: int = 0, maximum: int = MAX_INT) -> int:
        value = self.take(name, int, default)
        if not minimum <= value <= maximum:
            raise SettingsError(f"{self.key(name)}: must be an integer from {minimum:,} to {maximum:,}, got {value!r}")
        return value

    def secret(self, name: str, *, required: bool = False) -> str | None:
        """A secret: only from TOKENTALLY_<KEY> or TOKENTALLY_<KEY>_FILE, never from the file."""
        var = ENV_PREFIX + self.key(name).upper().replace(".", "_")
        if name in self.table:
            raise SettingsError(f"{self.key(name)}: secrets are not read from the settings file; "
                                f"set {var} or {var}_FILE")
        value = Reader({}, self.path, self.env if self.env is not None else {}).take(name, str)
        if value is None and required:
            raise SettingsError(f"{self.key(name)}: required; set {var} or {var}_FILE")
        return value

    def done(self) -> None:
        if self.table:
            names = ", ".join(self.key(k) for k in sorted(self.table))
            raise SettingsError(f"unknown setting(s): {names}")


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
             dict: "a table", list: "an array", date: "a date"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _from_env(text: str, kind: type | tuple[type, ...], key: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if bool in kinds:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{key}: expected true/false from the environment, got {text!r}")
    if int in kinds and str not in kinds:
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"{key}: expected an integer from the environment, got {text!r}") from None
    return text


_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str, key: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise SettingsError(f"{key}: expected a duration like '30s', '5m', '2h' or '1d', got {text!r}")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def duration(r: Reader, name: str, default: timedelta) -> timedelta:
    """``name`` as a duration ("30s", "5m", "2h", "1d"), or ``default`` when absent."""
    text = r.take(name, str)
    return parse_duration(text, r.key(name)) if text is not None else default


def fraction(r: Reader, name: str, default: float, *, high: float = 100) -> float:
    value = r.take(name, (int, float), default)
    if not 0 <= value <= high:
        raise SettingsError(f"{r.key(name)}: expected a fraction like 0.2, got {value!r}")
    return float(value)
