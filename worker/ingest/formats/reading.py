"""How the records of one key set are read: which keys feed each canonical field, and what is derived.

A :class:`Reading` is the alias table of DESIGN.md ("The raw usage record") made general: for each
canonical field the keys of a record that feed it, the first non-empty one winning; which other keys
are kept in the event's metadata; and a ``derive`` hook for the fields no single key holds (a nested
usage object, a sum of token classes, a latency from two times). The canonical record's reading is
:data:`CANONICAL` (``canonical.ALIASES``, every other key kept). A format module whose records are one
call each gives its own (``plan(keys)``); the normaliser works a reading out once per distinct key set
(:func:`resolve`) and each record is then read straight into its event: a handful of lookups, no
intermediate record.

``derive(record, values)`` sets derived fields in ``values`` (canonical names; it may leave None) and
returns what it keeps in the event's metadata (or None), beside the record's own ``metadata`` where the
shape has one (``own_metadata``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from worker.ingest.fields import parse_metadata
from worker.ingest.formats.canonical import ALIASES

Derive = Callable[[Mapping[str, Any], dict[str, Any]], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Reading:
    fields: Mapping[str, tuple[str, ...]]  # canonical name -> the record's keys that feed it, in the order they win
    derive: Derive | None = None  # (record, values) -> metadata kept; sets the derived fields in values
    derived: frozenset[str] = frozenset()  # the canonical fields derive can set
    drop: frozenset[str] = frozenset()  # keys that are neither fields nor kept (bodies, content, read by derive)
    kept: frozenset[str] | None = None  # other keys kept in metadata; None: every key that feeds no field
    own_metadata: bool = True  # "metadata" and "record_type" mean what they mean in a canonical record

    def known(self) -> frozenset[str]:
        names = {k for canon, keys in self.fields.items() for k in (canon, *keys)}
        return frozenset(names | ({"metadata", "record_type"} if self.own_metadata else set()))


def canonical_fields(fields: Mapping[str, tuple[str, ...]] = ALIASES) -> dict[str, tuple[str, ...]]:
    """Each canonical name followed by its aliases (the canonical name wins)."""
    return {canon: (canon, *aliases) for canon, aliases in fields.items()}


CANONICAL = Reading(canonical_fields())

Multi = tuple[tuple[str, tuple[str, ...]], ...]


class Fields:
    """For one key set: which present key feeds each canonical field. ``names`` are fed by one key each;
    ``multi`` by several, the first non-empty winning; ``extras`` are the other keys kept in metadata.
    ``values`` is a reader made for the key set (:func:`_reader`)."""

    __slots__ = ("names", "keys", "multi", "extras", "values")

    def __init__(self, record_keys: tuple[str, ...], reading: Reading):
        present = set(record_keys) - reading.drop
        single, multi = [], []
        for canon, keys in reading.fields.items():
            found = tuple(k for k in keys if k in present)
            if len(found) == 1:
                single.append((canon, found[0]))
            elif found:
                multi.append((canon, found))
        self.names = tuple(canon for canon, _ in single)
        self.keys = tuple(key for _, key in single)
        self.multi: Multi = tuple(multi)
        known = reading.known()
        if reading.kept is None:
            self.extras = tuple(k for k in record_keys if k not in known and k not in reading.drop)
        else:
            self.extras = tuple(k for k in record_keys if k in reading.kept)
        # record -> its values under canonical names (null and "" are read as absent by the normaliser)
        self.values: Callable[[Mapping[str, Any]], dict[str, Any]] = _reader(tuple(single), self.multi)


def _reader(single: tuple[tuple[str, str], ...], multi: Multi) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A function reading one key set's values: one dict display of the single-key fields, then each
    multi-key field's first non-empty value. Made once per distinct key set, as ``collections.namedtuple``
    and ``dataclasses`` make their methods: the source holds only generated names (``_c0``, ``_k0``), the
    record's keys and the canonical names are bound as default arguments, never written into the source."""
    bound: dict[str, Any] = {}
    items = []
    for j, (canon, key) in enumerate(single):
        bound[f"_c{j}"], bound[f"_k{j}"] = canon, key
        items.append(f"_c{j}: r[_k{j}]")
    lines = [f"    v = {{{', '.join(items)}}}"]
    for j, (canon, keys) in enumerate(multi):
        bound[f"_m{j}"] = canon
        for n, key in enumerate(keys):
            bound[f"_m{j}_{n}"] = key
            lines.append(f"{'    ' * (n + 1)}x = r[_m{j}_{n}]")
            lines.append(f"{'    ' * (n + 1)}if x is not None and x != '':")
            lines.append(f"{'    ' * (n + 2)}v[_m{j}] = x")
            if n + 1 < len(keys):
                lines.append(f"{'    ' * (n + 1)}else:")
    params = "".join(f", {name}={name}" for name in bound)
    source = f"def values(r{params}):\n" + "\n".join(lines) + "\n    return v\n"
    namespace: dict[str, Any] = dict(bound)
    exec(compile(source, "<reading values>", "exec"), namespace)  # noqa: S102 (generated names only, see above)
    return namespace["values"]


def as_record(reading: Reading, record: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical record a reading makes of one record (what the normaliser reads; null and "" left out):
    the mapping's view, for the tests and for shapes that wrap another (a batch line holds a message)."""
    fields = Fields(tuple(record), reading)
    values = fields.values(record)
    metadata = parse_metadata(record.get("metadata")) if reading.own_metadata else None
    if reading.derive is not None and (kept := reading.derive(record, values)):
        metadata = {**metadata, **kept} if metadata else kept
    for key in fields.extras:
        if (v := record[key]) is not None and v != "":
            metadata = {**(metadata or {}), key: v}
    out = {k: v for k, v in values.items() if v is not None and v != ""}
    if metadata:
        out["metadata"] = metadata
    return out
