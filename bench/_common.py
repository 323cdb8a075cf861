"""Shared plumbing for the benchmark scripts: a fresh database, the server as a subprocess, percentiles.

Nothing here asserts a timing; every script prints one JSON line of figures on stdout (progress on stderr).
"""

from __future__ import annotations

import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
OTKLIK = str(VENV_BIN / "otklik")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_BENCH_DB = "otklik_bench"
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{PG_BENCH_DB}"
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-password-123"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# -- statistics -------------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile (the same definition as the peer's bench.py)."""
    k = max(0, math.ceil(p / 100 * len(sorted_values)) - 1)
    return sorted_values[k]


def summarize(latencies: list[float], wall: float | None = None, *, items_per_request: int = 1,
              errors: int = 0, first_error: str | None = None) -> dict[str, Any]:
    lat = sorted(latencies)
    if not lat:
        return {"requests": 0, "errors": errors, "first_error": first_error}
    out: dict[str, Any] = {"requests": len(lat), "errors": errors}
    if wall is not None:
        out["wall_s"] = round(wall, 2)
        out["requests_per_s"] = round(len(lat) / wall, 1)
        if items_per_request != 1:
            out["messages_per_s"] = round(len(lat) * items_per_request / wall, 1)
    out.update(p50_ms=round(percentile(lat, 50) * 1000, 1), p99_ms=round(percentile(lat, 99) * 1000, 1),
               max_ms=round(lat[-1] * 1000, 1))
    if first_error:
        out["first_error"] = first_error
    return out


# -- environment ------------------------------------------------------------------------------------------

def raise_nofile(limit: int = 4096) -> int:
    """`ulimit -n` for this process and its children (as far as the hard limit allows)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine_note() -> dict[str, Any]:
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_1m_at_start": load, "git_head": _git_head(), "src_dirty": _src_dirty(), "src_sha1": src_fingerprint()}


def _git_head() -> str | None:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return res.stdout.strip() or None


def _src_dirty() -> bool:
    res = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True)
    return bool(res.stdout.strip())


def src_fingerprint() -> str:
    """The code measured: src/ is edited while benchmarks run, so each result names the exact tree."""
    import hashlib

    h = hashlib.sha1()
    for path in sorted((ROOT / "src").rglob("*.py")):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


class BenchEnv:
    """A fresh database and temp dirs; `env` is what the server subprocess and the CLI get."""

    def __init__(self, db: str, *, redis_url: str | None = None, keep: bool = False):
        if db not in ("sqlite", "postgres"):
            raise SystemExit("--db is sqlite or postgres")
        self.db = db
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix=f"otklik-bench-{db}-", dir="/tmp"))
        if db == "sqlite":
            self.database_url = f"sqlite:///{self.tmp}/otklik.db"
        else:
            self.database_url = PG_URL
            reset_postgres()
        self.env = dict(os.environ)
        self.env.update(
            OTKLIK_DATABASE_URL=self.database_url,
            OTKLIK_QUEUE_PATH=str(self.tmp / "queue.db"),
            OTKLIK_DATA_DIR=str(self.tmp / "data"),
            # uvicorn's access log off (warning level): one log line per request is not what we measure.
            OTKLIK_LOG_LEVEL=os.environ.get("OTKLIK_LOG_LEVEL", "warning"),
        )
        self.env.pop("OTKLIK_QUEUE", None)
        if redis_url:
            self.env["OTKLIK_REDIS_URL"] = redis_url  # shared: never flushed (others may use it)
        else:
            self.env.pop("OTKLIK_REDIS_URL", None)
        self.server: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        # SIGTERM unwinds like an exception, so `finally: close()` stops the server subprocess too.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def apply_to_this_process(self) -> None:
        """For in-process use (TestClient, direct loads): must run before otklik is imported."""
        for key in ("OTKLIK_DATABASE_URL", "OTKLIK_QUEUE_PATH", "OTKLIK_DATA_DIR", "OTKLIK_REDIS_URL"):
            if key in self.env:
                os.environ[key] = self.env[key]
            else:
                os.environ.pop(key, None)

    def cli(self, *args: str) -> str:
        res = subprocess.run([OTKLIK, *args], env=self.env, cwd=self.tmp, capture_output=True, text=True)
        if res.returncode != 0:
            raise SystemExit(f"otklik {' '.join(args[:1])} failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def migrate(self) -> None:
        self.cli("migrate")

    def create_admin_token(self, workspace: str = "bench") -> str:
        out = self.cli("create-user", "--workspace", workspace, "--email", ADMIN_EMAIL, "--role", "admin",
                       "--password", ADMIN_PASSWORD, "--token")
        m = re.search(r"API token \(shown once\): (\S+)", out)
        if not m:
            raise SystemExit(f"no token in create-user output:\n{out}")
        return m[1]

    def start_server(self, *, workers: int = 1, port: int | None = None) -> str:
        port = port or free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.server_log = open(self.tmp / "server.log", "wb")  # noqa: SIM115
        self.server = subprocess.Popen(
            [OTKLIK, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=self.env, cwd=self.tmp, stdout=self.server_log, stderr=subprocess.STDOUT)
        import httpx

        deadline = time.time() + 60
        while time.time() < deadline:
            if self.server.poll() is not None:
                raise SystemExit(f"server exited; see {self.tmp / 'server.log'}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return self.base_url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop_server()
        raise SystemExit(f"server did not come up; see {self.tmp / 'server.log'}")

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.terminate()
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
            self.server = None

    def close(self) -> None:
        self.stop_server()
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)


def _pg_connect(url: str, autocommit: bool = True):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url, autocommit=autocommit)


def reset_postgres() -> None:
    """A dedicated, empty database `otklik_bench` (never the shared `test` database the test suite uses)."""
    with _pg_connect(PG_ADMIN_URL) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_BENCH_DB,)).fetchone()
        if not exists:
            conn.execute(f"CREATE DATABASE {PG_BENCH_DB}")
    with _pg_connect(PG_URL) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def db_url_for(db: str) -> str:
    return PG_URL if db == "postgres" else "sqlite"
