"""The schema, split by area. Import from here."""

from worker.models.access import TOKEN_SCOPES, ApiToken, LoginLink, WebKey
from worker.models.accounts import Account
from worker.models.alerts import SEVERITIES, Alert, Notification
from worker.models.base import Base, UTCDateTime
from worker.models.integrity import ATTEMPT_STATES, CallAttempt, Reconciliation
from worker.models.limits import WINDOW_KINDS, BudgetPendingDay, LimitWindow, SystemState
from worker.models.events import UNATTRIBUTED, UNKNOWN, IngestFile, IngestReject, SourceCursor, SourceStatus, UsageEvent
from worker.models.reports import Report
from worker.models.runs import JobRun
from worker.models.summaries import DailyRollup, DailySummary, DirtyDay, MonthlySummary, SummaryCorrection, SummaryDay

__all__ = [
    "ATTEMPT_STATES", "Account", "ApiToken", "LoginLink", "TOKEN_SCOPES", "WebKey", "Alert", "CallAttempt", "Reconciliation", "Base", "Notification", "SEVERITIES", "DailyRollup", "DailySummary", "DirtyDay", "MonthlySummary", "SummaryCorrection", "SummaryDay", "IngestFile", "IngestReject", "JobRun", "Report", "BudgetPendingDay", "LimitWindow", "SystemState", "WINDOW_KINDS", "SourceCursor", "SourceStatus", "UNATTRIBUTED",
    "UNKNOWN", "UTCDateTime", "UsageEvent",
]
