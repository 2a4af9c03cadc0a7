"""The schema, split by area. Import from here."""

from .accounts import Account
from .base import Base, UTCDateTime
from .ledger import UNATTRIBUTED, UNKNOWN, IngestFile, IngestReject, SourceCursor, UsageEvent
from .runs import JobRun

__all__ = [
    "Account", "Base", "IngestFile", "IngestReject", "JobRun", "SourceCursor", "UNATTRIBUTED",
    "UNKNOWN", "UTCDateTime", "UsageEvent",
]
