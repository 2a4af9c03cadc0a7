"""The schema, split by area. Import from here."""

from worker.models.access import TOKEN_SCOPES, ApiToken, LoginLink, WebKey
from worker.models.accounts import Account
from worker.models.alerts import SEVERITIES, Alert, Notification
from worker.models.base import Base, UTCDateTime
from worker.models.integrity import ATTEMPT_STATES, CallAttempt, Reconciliation
from worker.models.limits import WINDOW_KINDS, BudgetPendingDay, LimitDirtyAccount, LimitWindow, SystemState
from worker.models.events import (UNATTRIBUTED, UNKNOWN, IngestFile, IngestLease, IngestReject, LedgerExport,
                                  SourceCursor, SourceStatus, UsageEvent, UsageEventId)
from worker.models.reports import Report
from worker.models.scopes import SCOPE_WINDOW_KINDS, LimitDirtyScope, ScopeWindow, StoredScopeBudget
from worker.models.runs import RUN_STATES, Daemon, JobRun, Outage
from worker.models.summaries import DailyRollup, DailySummary, DirtyDay, MonthlySummary, SummaryCorrection, SummaryDay

__all__ = [
    "ATTEMPT_STATES", "Account", "ApiToken", "LoginLink", "TOKEN_SCOPES", "WebKey", "Alert", "CallAttempt",
    "Reconciliation", "Base", "Notification", "SEVERITIES", "DailyRollup", "DailySummary", "DirtyDay", "MonthlySummary",
    "SummaryCorrection", "SummaryDay", "IngestFile", "IngestReject", "JobRun", "Daemon", "Outage", "RUN_STATES",
    "Report", "BudgetPendingDay", "LimitDirtyAccount", "LimitWindow", "SystemState", "WINDOW_KINDS", "SourceCursor",
    "SourceStatus", "UNATTRIBUTED", "UNKNOWN", "UTCDateTime", "UsageEvent", "UsageEventId", "LedgerExport", "IngestLease",
    "SCOPE_WINDOW_KINDS", "LimitDirtyScope", "ScopeWindow", "StoredScopeBudget",
]
