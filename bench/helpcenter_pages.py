"""Help-center page times, in process (no network), on the demo store KB: home, an article, a search.

    .venv/bin/python bench/helpcenter_pages.py [requests per page, default 200]

Uses a throw-away SQLite database unless OTKLIK_DATABASE_URL is set. Prints p50/p95 milliseconds per page.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time

if "OTKLIK_DATABASE_URL" not in os.environ:
    os.environ["OTKLIK_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/hc.db"
os.environ.setdefault("OTKLIK_EMBEDDED_WORKER", "false")


def main() -> int:
    from fastapi.testclient import TestClient

    from otklik.accounts import service as accounts
    from otklik.app import create_app
    from otklik.knowledge import transfer
    from otklik.migrations import upgrade
    from otklik.platform.db import session_scope

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    upgrade(os.environ["OTKLIK_DATABASE_URL"])
    slug = f"hc-bench-{os.getpid()}"
    with session_scope() as session:
        _, admin = accounts.bootstrap_workspace(session, slug=slug, name="bench", admin_email="a@example.com",
                                                 admin_password="bench-password-123")
        transfer.import_rows(session, accounts.actor_for(admin), transfer.store_kb_rows())
    pages = {"home": f"/help/{slug}/", "article": f"/help/{slug}/a/delivery-cost-times",
             "search": f"/help/{slug}/search?q=сколько+стоит+доставка+холодильника"}
    out = {}
    with TestClient(create_app()) as client:
        for name, url in pages.items():
            client.get(url)  # warm caches
            times = []
            for _ in range(n):
                started = time.perf_counter()
                assert client.get(url).status_code == 200
                times.append(1000 * (time.perf_counter() - started))
            times.sort()
            out[name] = {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * n) - 1], 2)}
    print(json.dumps({"requests_per_page": n, **out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
