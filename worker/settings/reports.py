"""``[reports]``: where reports are archived, served from, and which tenants receive their own."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.settings.reader import Reader
from worker.settings.routing import parse_targets


@dataclass(frozen=True)
class ReportSettings:
    archive_dir: str = "var/reports"
    top_accounts: int = 10
    base_url: str | None = None  # where the archive is served (links in Slack/email)
    # tenant -> ("channel", "target") contacts that receive that tenant's own reports
    tenants: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def parse_reports(r: Reader, channels: dict[str, Any]) -> ReportSettings:
    tenants_raw = r.take("tenants", dict, {})
    tenants = {str(tenant): parse_targets(items, channels, f"{r.key('tenants')}.{tenant}")
               for tenant, items in tenants_raw.items()}
    base_url = r.take("base_url", str, None)
    reports = ReportSettings(archive_dir=r.take("archive_dir", str, "var/reports"),
                             top_accounts=r.positive_int("top_accounts", 10),
                             base_url=base_url.rstrip("/") if base_url else None, tenants=tenants)
    r.done()
    return reports
