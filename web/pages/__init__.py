"""The console's pages: one router per page, gathered here (``web.app`` includes :data:`router`).

Who may see what (the dependencies of ``web.deps``): every page is for readers (admins,
auditors and tenants; a tenant sees only its tenant's rows); the organisation-wide pages
(rejects, jobs, integrity) are for admins and auditors (403 for a tenant); every action is
a form POST for admins only, carrying the session's CSRF token. Without a session a page
answers 401 with a sign-in link, as the API does.
"""

from fastapi import APIRouter

from web.pages import accounts, alerts, integrity, jobs, overview, rejects, reports, static, usage

router = APIRouter(include_in_schema=False)
for _module in (static, overview, usage, accounts, alerts, reports, rejects, jobs, integrity):
    router.include_router(_module.router)
