"""The jobs page (admins and auditors): schedules, last runs, history; run one now (admins).

A run started here is a manual run like ``tokentally jobs run NAME`` (with the jobs that follow
it, as the daemon and the CLI run them), started after the response is sent; its row shows in
the history as ``running`` until it ends.
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from worker.registry import registry
from worker.scheduler import run_job
from worker.settings import Settings
from web.auth import Principal
from web.deps import csrf_protect, get_engine, get_settings, require_admin, require_staff
from web.pages.viewer import done, show
from web.views import jobs as jobs_view
from web.views.paging import clamp

router = APIRouter()


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(request: Request, job: str = "", page: str = "1", principal: Principal = Depends(require_staff),
              engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> HTMLResponse:
    number, size = clamp(page)
    job = job if jobs_view.known_job(job) else ""
    with engine.connect() as conn:
        rows = jobs_view.job_rows(conn, settings)
        found = jobs_view.history(conn, job or None, number, size)
    return show(request, principal, "jobs.html", jobs=rows, found=found, job=job)


def _run_with_followers(job_id: str, settings: Settings, engine: Engine) -> None:
    spec = registry.get(job_id)
    result = run_job(spec, settings, engine, trigger="manual")
    if result is not None and result.status == "success":
        for follower in registry.followers(spec.id):
            run_job(follower, settings, engine, trigger=f"after:{spec.id}")


@router.post("/jobs/{job_id}/run", dependencies=[Depends(csrf_protect)])
def run_now(job_id: str, background: BackgroundTasks, principal: Principal = Depends(require_admin),
            engine: Engine = Depends(get_engine), settings: Settings = Depends(get_settings)) -> Response:
    if not jobs_view.known_job(job_id):
        raise HTTPException(404, f"no job named {job_id}")
    background.add_task(_run_with_followers, job_id, settings, engine)
    return done(f"/jobs?job={job_id}", "job-started")
