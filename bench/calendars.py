"""Business-time arithmetic speed (issue 13's goal: add/between >= 100,000 calls/s in one process).

Calls `add` and `between` on warm calendars (Moscow 5/2 with a lunch break and RU holidays, shortened days on;
Berlin 24/7 with DE holidays) with starts spread over 2026-2027 and minutes 0..10,000 (a week of working
time and more), and the whole API path (`GET /calendars/{id}/add`) through the ASGI app in process for scale.

    .venv/bin/python bench/calendars.py [--calls 300000] [--json bench/results/calendars.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from otklik.calendars.engine import BusinessCalendar, CalendarSpec

    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=300_000)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    lunch = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    always = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    calendars = {
        "moscow_5x2_lunch_RU": BusinessCalendar(CalendarSpec.from_mapping("Europe/Moscow", lunch, "RU",
                                                                          shortened_preholiday=True)),
        "berlin_24x7_DE": BusinessCalendar(CalendarSpec.from_mapping("Europe/Berlin", always, "DE")),
    }
    rng = random.Random(13)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    starts = [base + dt.timedelta(seconds=rng.randrange(0, 2 * 365 * 86400)) for _ in range(10_000)]
    minutes = [rng.randrange(0, 10_000) for _ in range(10_000)]
    ends = [s + dt.timedelta(minutes=rng.randrange(0, 20_000)) for s in starts]
    out: dict[str, object] = {"calls": args.calls, "python": sys.version.split()[0]}
    for name, cal in calendars.items():
        cal.add(starts[0], 1)  # warm: the years are expanded once per calendar
        cal.between(starts[0], ends[0])
        for y in (2025, 2026, 2027, 2028):
            cal.add(dt.datetime(y, 6, 1, tzinfo=dt.UTC), 0)
        t = time.perf_counter()
        for i in range(args.calls):
            cal.add(starts[i % 10_000], minutes[i % 10_000])
        add_rate = args.calls / (time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(args.calls):
            cal.between(starts[i % 10_000], ends[i % 10_000])
        between_rate = args.calls / (time.perf_counter() - t)
        t = time.perf_counter()
        fresh = BusinessCalendar(cal.spec)
        fresh.add(starts[0], 1)
        expand_ms = (time.perf_counter() - t) * 1000
        out[name] = {"add_per_s": round(add_rate), "between_per_s": round(between_rate),
                     "cold_expand_3_years_ms": round(expand_ms, 1)}
        print(f"{name}: add {add_rate:,.0f}/s, between {between_rate:,.0f}/s, cold expansion of 3 years "
              f"{expand_ms:.1f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
