"""``[integrity]``: how the integrity checks look for unlogged calls and gaps in the books."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from worker.settings.reader import Reader, SettingsError, duration, fraction


@dataclass(frozen=True)
class IntegritySettings:
    """``[integrity]``."""

    days: int = 2  # local days each run of the job checks, today included
    attempt_grace: timedelta = timedelta(minutes=10)  # an attempt's event may take this long to arrive
    estimate_tolerance: float = 0.2  # |actual - estimated| / estimated tokens beyond this is flagged
    cost_tolerance: float = 0.2  # |reported - computed| / computed cost beyond this is flagged
    unattributed_share: float = 0.0  # of a day's events without an account beyond which it is flagged (0: any)
    silent_after: timedelta = timedelta(minutes=30)  # shortest silence that can be flagged
    silent_expected: float = 10.0  # events the source's history expects during the silence
    history_weeks: int = 4  # of history learned per source
    request_id_keys: tuple[str, ...] = ("provider_request_id", "response_id", "generation_id")
    examples: int = 5  # per finding
    skip: tuple[str, ...] = ()  # checks the job leaves out (CHECK_NAMES)


# The checks, in the order they run (see checks()).
CHECK_NAMES = ("unlogged_calls", "estimate_mismatch", "source_silent", "sequence_gap", "unattributed", "rejects",
               "unpriced", "duplicates", "token_mismatch", "cost_mismatch", "summaries")


def parse_integrity(raw: dict[str, Any] | None, env: dict[str, str]) -> IntegritySettings:
    d = IntegritySettings()
    r = Reader(raw or {}, "integrity", env)

    keys = r.take("request_id_keys", list, list(d.request_id_keys))
    if not all(isinstance(k, str) and k for k in keys):
        raise SettingsError(f"{r.key('request_id_keys')}: expected a list of metadata key names")
    skip = r.take("skip", list, [])
    if unknown := [name for name in skip if name not in CHECK_NAMES]:
        raise SettingsError(f"{r.key('skip')}: no such check: {', '.join(map(str, unknown))} "
                            f"(checks: {', '.join(CHECK_NAMES)})")
    expected = r.take("silent_expected", (int, float), d.silent_expected)
    if expected <= 0:
        raise SettingsError(f"{r.key('silent_expected')}: must be more than 0, got {expected!r}")
    result = IntegritySettings(
        days=r.positive_int("days", d.days), attempt_grace=duration(r, "attempt_grace", d.attempt_grace),
        estimate_tolerance=fraction(r, "estimate_tolerance", d.estimate_tolerance),
        cost_tolerance=fraction(r, "cost_tolerance", d.cost_tolerance),
        unattributed_share=fraction(r, "unattributed_share", d.unattributed_share),
        silent_after=duration(r, "silent_after", d.silent_after), silent_expected=float(expected),
        history_weeks=r.positive_int("history_weeks", d.history_weeks), request_id_keys=tuple(keys),
        examples=r.positive_int("examples", d.examples), skip=tuple(skip))
    r.done()
    return result
