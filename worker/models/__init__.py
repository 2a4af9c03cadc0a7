"""The schema, split by area. Import from here."""

from .accounts import Account
from .alerts import SEVERITIES, Alert, Notification
from .base import Base, UTCDateTime
from .integrity import ATTEMPT_STATES, CallAttempt, Reconciliation
from .limits import WINDOW_KINDS, LimitWindow, SystemState
from .ledger import UNATTRIBUTED, UNKNOWN, IngestFile, IngestReject, SourceCursor, SourceStatus, UsageEvent
from .reports import Report
from .runs import JobRun
from .summaries import DailyRollup, DailySummary, DirtyDay, MonthlySummary, SummaryCorrection, SummaryDay

__all__ = [
    "ATTEMPT_STATES", "Account", "Alert", "CallAttempt", "Reconciliation", "Base", "Notification", "SEVERITIES", "DailyRollup", "DailySummary", "DirtyDay", "MonthlySummary", "SummaryCorrection", "SummaryDay", "IngestFile", "IngestReject", "JobRun", "Report", "LimitWindow", "SystemState", "WINDOW_KINDS", "SourceCursor", "SourceStatus", "UNATTRIBUTED",
    "UNKNOWN", "UTCDateTime", "UsageEvent",
]
