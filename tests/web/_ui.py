"""Helpers for the UI tests: a browser-like client signed in through the real sign-in form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD

CSRF = re.compile(r'name="csrf-token" content="([^"]*)"')


class Browser:
    """A TestClient with its own cookie jar, signed in as one user; `.csrf` is that session's token."""

    def __init__(self, app, email: str | None = None, *, language: str = "ru-RU,ru;q=0.9"):
        self.http = TestClient(app, headers={"accept-language": language})
        self.csrf = ""
        if email:
            self.sign_in(email)

    def sign_in(self, email: str, password: str = PASSWORD):
        page = self.http.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = self.http.post("/login", data={"email": email, "password": password, "csrf_token": token},
                           follow_redirects=False)
        assert r.status_code == 303, r.text
        self.csrf = CSRF.search(self.http.get("/inbox").text).group(1)
        return r

    def get(self, url: str, **kw):
        return self.http.get(url, **kw)

    def post(self, url: str, data: dict | None = None, *, csrf: bool = True, htmx: bool = True, **kw):
        headers = dict(kw.pop("headers", {}) or {})
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        if htmx:
            headers["HX-Request"] = "true"
        return self.http.post(url, data=data or {}, headers=headers, follow_redirects=False, **kw)
