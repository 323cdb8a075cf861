"""Markdown tables from bench/results/*.json (the figures in BENCHMARKS.md are pasted from this output).

    .venv/bin/python bench/report.py [results dir, default bench/results] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

HERE = Path(__file__).resolve().parent


def load(d: Path, name: str) -> dict[str, Any] | None:
    p = d / f"{name}.json"
    if not p.exists() or not p.stat().st_size:
        return None
    return json.loads(p.read_text())


def fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:,.1f}" if v < 100 else f"{v:,.0f}"
    return f"{v}{unit}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    r = a / b
    if r < 0.1:
        return f"{r:.3f} (1/{1 / r:,.0f})"
    return f"{r:.2f}" if r < 10 else f"{r:.0f}"


def code(env: dict[str, Any]) -> str:
    return f"{env.get('git_head')}{'+dirty' if env.get('src_dirty') else ''} ({env.get('src_sha1')})"


def ingest(d: Path) -> None:
    print("| db | phase | requests | messages/s | p50 ms | p99 ms | max ms | errors | code |")
    print("|---|---|---|---|---|---|---|---|---|")
    for db in ("sqlite", "postgres"):
        r = load(d, f"ingest-{db}")
        if not r:
            continue
        for phase, label in (("new", "single, new customer"), ("followup", "single, existing customer"),
                             ("batch", "batch of 100")):
            x = r[phase]
            rate = x.get("messages_per_s", x.get("requests_per_s"))
            print(f"| {db} | {label} | {x['requests']} | {fmt(rate)} | {fmt(x.get('p50_ms'))} | "
                  f"{fmt(x.get('p99_ms'))} | {fmt(x.get('max_ms'))} | {x['errors']} | {code(r['env'])} |")


def peer(d: Path, peer_dir: Path) -> None:
    print("| db | what | Otklik | django-helpdesk | Otklik/peer |")
    print("|---|---|---|---|---|")
    for db in ("sqlite", "postgres"):
        o, p, i = load(d, f"ingest-{db}"), load(peer_dir, f"peer-{db}"), load(d, f"inbox-{db}")
        if not (o and p):
            continue
        for (oname, oph), (pname, pph) in (((" message from a new customer (creates customer + conversation)", "new"),
                                            ("create ticket", "create_ticket")),
                                           ((" message from an existing customer", "followup"),
                                            ("create follow-up", "create_followup"))):
            ox, px = o[oph], p[pph]
            print(f"| {db} | ingestion rate, conc. 8: {oname.strip()} vs {pname} | {fmt(ox['requests_per_s'])}/s "
                  f"| {fmt(px['per_s'])}/s | {ratio(ox['requests_per_s'], px['per_s'])} (higher is better) |")
            print(f"| {db} | ingestion p50 / p99 latency, same | {fmt(ox['p50_ms'])} / {fmt(ox['p99_ms'])} ms | "
                  f"{fmt(px['p50_ms'])} / {fmt(px['p99_ms'])} ms | {ratio(ox['p50_ms'], px['p50_ms'])} / "
                  f"{ratio(ox['p99_ms'], px['p99_ms'])} (lower is better) |")
        if not i:
            continue
        lat = i["latency"]
        for oname, pname in (("open_waiting", "list_staff"), ("inbox_all", "list_staff"),
                             ("open_waiting", "list_api"), ("msg_search_common", "search_staff"),
                             ("conv_search_common", "search_staff")):
            ox, px = lat[oname], p[pname]
            print(f"| {db} | p50 / p99: Otklik `{oname}` vs peer `{pname}` | {fmt(ox['p50_ms'])} / "
                  f"{fmt(ox['p99_ms'])} ms | {fmt(px['p50_ms'])} / {fmt(px['p99_ms'])} ms (n={px['requests']}) | "
                  f"{ratio(ox['p50_ms'], px['p50_ms'])} / {ratio(ox['p99_ms'], px['p99_ms'])} (lower is better) |")


def inbox(d: Path, baseline: Path | None) -> None:
    s, p = load(d, "inbox-sqlite"), load(d, "inbox-postgres")
    b = load(baseline, "inbox-sqlite") if baseline else None
    if not (s or p):
        return
    first = s or p
    assert first
    cols = "| scenario | request | goal p99 | SQLite p50 / p99 ms | PostgreSQL p50 / p99 ms |"
    print(cols + (" SQLite at b071d1e p50 / p99 |" if b else ""))
    print("|---|---|---|---|---|" + ("---|" if b else ""))
    for name, x in first["latency"].items():
        cells = []
        for r in (s, p, b) if b else (s, p):
            y = r["latency"].get(name) if r else None
            if not y:
                cells.append("-")
                continue
            miss = "" if y["goal_met"] else " **MISS**"
            cells.append(f"{fmt(y['p50_ms'])} / {fmt(y['p99_ms'])}{miss}" + (f" (n={y['requests']})"
                                                                              if y["requests"] < 200 else ""))
        print(f"| {name} | `{unquote(x['example']).replace('/api/v1', '')}` | {x['goal_p99_ms']} | " + " | ".join(cells) + " |")
    for r in (s, p):
        if r:
            print(f"\n{r['db']}: load {r['load']}; code {code(r['env'])}; load avg at start "
                  f"{r['env']['load_1m_at_start']:.2f}")
    if first.get("data"):
        print(f"\ndata: {first['data']}")


def ws(d: Path) -> None:
    print("| db / bus | clients | connect+auth all | deliveries (20 rounds) | delivery p50 | p99 | max | "
          "last client, median round | POST p50 / p99 | missing | code |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in ("ws-sqlite-inprocess", "ws-sqlite-redis", "ws-postgres-redis"):
        r = load(d, name)
        if not r:
            continue
        x = r["delivery"]
        print(f"| {r['db']} / {r['bus']} | {r['clients_connected']} | {r['connect_all_s']} s | {x['deliveries']} | "
              f"{fmt(x['p50_ms'])} ms | {fmt(x['p99_ms'])} ms | {fmt(x['max_ms'])} ms | "
              f"{fmt(r['delivery_last_client_ms_p50_over_rounds'])} ms | {fmt(r['post_request']['p50_ms'])} / "
              f"{fmt(r['post_request']['p99_ms'])} ms | {r['missing_deliveries']} | {code(r['env'])} |")


def queries(d: Path) -> None:
    s, p = load(d, "queries-sqlite"), load(d, "queries-postgres")
    if not (s and p):
        return
    print("| request | SQLite statements | of which BEGIN/SAVEPOINT/RELEASE | PostgreSQL statements | items |")
    print("|---|---|---|---|---|")
    for k, v in s["detail"].items():
        pv = p["detail"][k]
        print(f"| {k} | {v['statements']} | {v['by_kind'].get('tx', 0)} | {pv['statements']} | {v['items']} |")
    print(f"\ncode: SQLite {code(s['env'])}, PostgreSQL {code(p['env'])}")


def plans(d: Path) -> None:
    r = load(d, "sqlite-plans")
    if not r:
        return
    print("| statement | variant | ms (best of 5) | rows | same ids | plan |")
    print("|---|---|---|---|---|---|")
    for name, case in r["cases"].items():
        for k, v in case.items():
            same = {True: "yes", False: "NO", None: ""}[v.get("same_ids_as_current")]
            extra = f" (count {v['value']})" if "value" in v else ""
            print(f"| {name} | {k}{extra} | {v['ms']} | {v['rows']} | {same} | {' / '.join(v['plan'])} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", type=Path, default=HERE / "results")
    ap.add_argument("--baseline", type=Path, default=HERE / "results" / "b071d1e")
    args = ap.parse_args()
    for title, fn in (("Ingestion", lambda: ingest(args.dir)), ("Peer", lambda: peer(args.dir, args.dir)),
                      ("Inbox", lambda: inbox(args.dir, args.baseline)), ("WebSocket", lambda: ws(args.dir)),
                      ("Queries", lambda: queries(args.dir)), ("SQLite plans (raw statements)",
                                                                lambda: plans(args.dir))):
        print(f"\n### {title}\n")
        fn()
    if args.baseline.exists():
        print("\n### Ingestion at b071d1e\n")
        ingest(args.baseline)
        print("\n### Peer ratios at b071d1e\n")
        peer(args.baseline, args.dir)
        print("\n### WebSocket at b071d1e\n")
        ws(args.baseline)


if __name__ == "__main__":
    main()
