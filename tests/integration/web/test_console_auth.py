"""Console sign-in, sessions, CSRF and the headers every response carries."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from web.auth import SESSION_COOKIE, create_login_link, create_token, csrf_for, revoke_token


def _login_form(client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def test_a_token_signs_in_and_the_cookie_is_strict_and_httponly(web) -> None:
    csrf = _login_form(web.client)
    done = web.client.post("/login", data={"token": web.token("auditor"), "csrf_token": csrf, "next": "/usage"},
                           follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/usage"
    cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Secure" not in cookie
    assert web.client.get("/v1/alerts").status_code == 200  # the session reads like the token


def test_behind_https_the_session_cookie_is_secure(make_web) -> None:
    web = make_web('[web]\npublic_url = "https://tally.example.org"\n')
    client = TestClient(web.client.app, base_url="https://tally.example.org")  # as behind the TLS proxy
    csrf = _login_form(client)
    done = client.post("/login", data={"token": web.token("admin"), "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert any("Secure" in c for c in done.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE))


def test_a_wrong_token_or_an_app_token_does_not_sign_in(web) -> None:
    csrf = _login_form(web.client)
    bad = web.client.post("/login", data={"token": "tt_nope", "csrf_token": csrf}, follow_redirects=False)
    assert bad.status_code == 401 and SESSION_COOKIE not in bad.headers.get("set-cookie", "")
    csrf = _login_form(web.client)
    app = web.client.post("/login", data={"token": web.token("app"), "csrf_token": csrf}, follow_redirects=False)
    assert app.status_code == 403


def test_sign_in_without_the_forms_csrf_token_is_refused(web) -> None:
    _login_form(web.client)
    refused = web.client.post("/login", data={"token": web.token("admin"), "csrf_token": "x"}, follow_redirects=False)
    assert refused.status_code == 403


def test_a_next_that_leaves_the_site_goes_home(web) -> None:
    csrf = _login_form(web.client)
    done = web.client.post("/login", data={"token": web.token("admin"), "csrf_token": csrf,
                                           "next": "//evil.example/x"}, follow_redirects=False)
    assert done.headers["location"] == "/"


def test_a_form_post_without_the_sessions_csrf_token_is_refused(web) -> None:
    csrf = _login_form(web.client)
    web.client.post("/login", data={"token": web.token("admin"), "csrf_token": csrf}, follow_redirects=False)
    assert web.client.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert web.client.post("/logout", data={"csrf_token": "0" * 40}, follow_redirects=False).status_code == 403
    assert web.client.get("/v1/alerts").status_code == 200  # still signed in
    session = web.client.cookies.get(SESSION_COOKIE)
    out = web.client.post("/logout", data={"csrf_token": csrf_for(web.app_key, session)}, follow_redirects=False)
    assert out.status_code == 303
    assert web.client.get("/v1/alerts").status_code == 401


def test_revoking_the_token_ends_its_sessions(web) -> None:
    token_id, secret = create_token(web.engine, "soon gone", "admin")
    csrf = _login_form(web.client)
    web.client.post("/login", data={"token": secret, "csrf_token": csrf}, follow_redirects=False)
    assert web.client.get("/v1/alerts").status_code == 200
    revoke_token(web.engine, token_id)
    assert web.client.get("/v1/alerts").status_code == 401


def test_a_forged_session_cookie_is_401(web) -> None:
    token_id, _ = create_token(web.engine, "admin", "admin")
    web.client.cookies.set(SESSION_COOKIE, f"{token_id}.9999999999.{'0' * 64}")
    assert web.client.get("/v1/alerts").status_code == 401


def test_the_one_time_link_signs_in_once(web) -> None:
    token_id, _ = create_token(web.engine, "first-start admin", "admin")
    code = create_login_link(web.engine, token_id)
    first = web.client.get(f"/login/{code}", follow_redirects=False)
    assert first.status_code == 303 and SESSION_COOKIE in first.headers["set-cookie"]
    web.client.cookies.clear()
    assert web.client.get(f"/login/{code}", follow_redirects=False).status_code == 403


def test_a_browser_without_a_session_gets_a_401_page_with_a_sign_in_link(web) -> None:
    page = web.client.get("/v1/alerts", headers={"accept": "text/html"})
    assert page.status_code == 401  # the API answers JSON even to a browser
    assert page.headers["content-type"].startswith("application/json")


def test_every_response_carries_the_security_headers(web) -> None:
    responses = [web.client.get("/healthz"), web.client.get("/login"), web.client.get("/v1/alerts"),
                 web.client.get("/nowhere", headers={"accept": "text/html"}), web.client.get("/openapi.json")]
    for response in responses:
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff"
        csp = headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-frame-options"] == "DENY" and headers["referrer-policy"] == "no-referrer"
        assert "server" not in headers
        if headers["content-type"].startswith(("text/", "application/json")):
            assert "charset=utf-8" in headers["content-type"]


def test_text_from_the_data_is_escaped_on_the_sign_in_page(web) -> None:
    page = web.client.get('/login?next=/x"><script>alert(1)</script>')
    assert "<script>alert(1)" not in page.text
