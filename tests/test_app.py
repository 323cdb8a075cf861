"""The app's public surface: docs work offline, the CLI documents every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_docs_are_served_without_a_cdn(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "/api/docs/assets/swagger-ui-bundle.js" in page.text
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    schema = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/conversations" in schema["paths"] and "/api/v1/inbound" in schema["paths"]


def test_health_and_landing(client):
    assert client.get("/healthz").json()["status"] == "ok"
    assert "Otklik" in client.get("/").text


def test_every_cli_command_has_help():
    otklik = str(Path(sys.executable).with_name("otklik"))
    for command in ("demo", "serve", "worker", "migrate", "create-user"):
        out = subprocess.run([otklik, command, "--help"], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0 and "usage: otklik" in out.stdout, (command, out.stderr)
