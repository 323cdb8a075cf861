"""The SQLite statements behind the misses in inbox.py, timed as the product sends them and as proposed.

Run on a database that `bench/inbox.py --db sqlite --keep` loaded (its path is in the log):
    .venv/bin/python bench/sqlite_plans.py /tmp/otklik-bench-sqlite-XXXX/otklik.db
Read-only (mode=ro, so no ANALYZE statistics are added; the product never adds any), except --try-index,
which creates the index proposed for priority sorting, times the statement, and drops it again.
Each statement: best of --repeat runs (warm cache), rows returned, and EXPLAIN QUERY PLAN. "current" is the
statement the product sends today (captured from the app, columns trimmed to the ones that matter for the
plan) at commit b071d1e; "proposed" is the change suggested in BENCHMARKS.md, which must return the same
ids. (Message search has since been changed in src/ to the proposed form, commit a095599.)
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from typing import Any

MSG_COLS = "messages.id, messages.conversation_id, messages.body_text, messages.body_html, messages.created_at"
CONV_COLS = "conversations.id, conversations.subject, conversations.last_message_at"


def timed(db: sqlite3.Connection, sql: str, params: tuple[Any, ...], repeat: int) -> dict[str, Any]:
    rows = db.execute(sql, params).fetchall()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = db.execute(sql, params).fetchall()
        best = min(best, time.perf_counter() - t0)
    plan = [r[3] for r in db.execute("EXPLAIN QUERY PLAN " + sql, params)]
    return {"ms": round(best * 1000, 2), "rows": len(rows), "ids": [r[0] for r in rows], "plan": plan}


def fts_query(words: list[str]) -> str:
    parts = [f'"{w}"' for w in words]
    parts[-1] += "*"
    return " ".join(parts)


def like_params(words: list[str]) -> tuple[str, ...]:
    # ' ' || search_terms || ' ' LIKE '% term %' (whole stem) / '% term%' (the last one: prefix), as FTS does
    return tuple([f"% {w} %" for w in words[:-1]] + [f"% {words[-1]}%"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("db")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--try-index", action="store_true",
                    help="also create the index proposed for priority sorting (writes to the database), time, drop")
    args = ap.parse_args()
    db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    db.execute("PRAGMA cache_size=-65536")
    out: dict[str, Any] = {"sqlite": sqlite3.sqlite_version,
                           "has_sqlite_stat1": bool(db.execute(
                               "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone())}
    max_conv = db.execute("SELECT max(id) FROM conversations").fetchone()[0]
    cases: dict[str, dict[str, Any]] = {}

    # 1. GET /conversations/{id}/messages (service.list_messages)
    for cid in (max_conv // 2, max_conv - 3):
        cur = (f"SELECT {MSG_COLS} FROM messages WHERE messages.conversation_id = ? AND messages.workspace_id = ? "
               "ORDER BY messages.id LIMIT ? OFFSET ?")
        new = (f"SELECT {MSG_COLS} FROM messages WHERE messages.conversation_id = ? "
               "ORDER BY messages.id LIMIT ? OFFSET ?")
        cases[f"list_messages[conversation {cid}]"] = {
            "current": timed(db, cur, (cid, 1, 101, 0), args.repeat),
            "proposed: no workspace_id term": timed(db, new, (cid, 101, 0), args.repeat)}

    # 2. GET /messages/search?q= (service.search_messages)
    for words in (["заказ"], ["достав"], ["возврат", "деньг"], ["гарант"]):
        q = fts_query(words)
        cur = (f"SELECT {MSG_COLS} FROM messages WHERE messages.workspace_id = ? AND messages.id IN "
               "(SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?) ORDER BY messages.id DESC LIMIT ? OFFSET ?")
        new = (f"SELECT {MSG_COLS} FROM messages_fts JOIN messages ON messages.id = messages_fts.rowid "
               "WHERE messages_fts MATCH ? AND messages.workspace_id = ? ORDER BY messages_fts.rowid DESC LIMIT ?")
        cases[f"search_messages[{' '.join(words)}]"] = {
            "current": timed(db, cur, (1, q, 21, 0), args.repeat),
            "proposed: FTS drives, ORDER BY messages_fts.rowid": timed(db, new, (q, 1, 21), args.repeat)}

    # 3. GET /conversations?q= (service.list_conversations with filters.q)
    for words, status in ((["заказ"], None), (["курьер"], None), (["возврат", "деньг"], None), (["заказ"], "open"),
                          (["гарант"], None)):
        q = fts_query(words)
        st = " AND conversations.status IN (?)" if status else ""
        sp = (status,) if status else ()
        cur = (f"SELECT {CONV_COLS} FROM conversations WHERE conversations.workspace_id = ? AND "
               f"conversations.merged_into_id IS NULL{st} AND conversations.id IN (SELECT messages.conversation_id "
               "FROM messages WHERE messages.workspace_id = ? AND messages.id IN (SELECT rowid FROM messages_fts "
               "WHERE messages_fts MATCH ?)) ORDER BY conversations.last_message_at DESC, conversations.id DESC "
               "LIMIT ? OFFSET ?")
        like = " AND ".join(["(' ' || messages.search_terms || ' ') LIKE ?"] * len(words))
        walk = (f"SELECT {CONV_COLS} FROM conversations WHERE conversations.workspace_id = ? AND "
                f"conversations.merged_into_id IS NULL{st} AND EXISTS (SELECT 1 FROM messages WHERE "
                f"messages.conversation_id = conversations.id AND {like}) "
                "ORDER BY conversations.last_message_at DESC, conversations.id DESC LIMIT ?")
        probe = "SELECT count(*) FROM (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ? LIMIT 5001)"
        name = f"list_conversations[q={' '.join(words)}{', status=' + status if status else ''}]"
        cases[name] = {
            "current": timed(db, cur, (1, *sp, 1, q, 26, 0), args.repeat),
            "proposed step 1: capped match count": timed(db, probe, (q,), args.repeat),
            "proposed step 2 (> 5000 matches): walk conversations in sort order, LIKE on search_terms":
                timed(db, walk, (1, *sp, *like_params(words), 26), args.repeat)}
        cases[name]["proposed step 1: capped match count"]["value"] = db.execute(probe, (q,)).fetchone()[0]

    # 3b. The walk's worst case: a query the capped count calls common (FTS counts all workspaces) that no
    # conversation of this workspace contains, so every conversation is visited.
    like = "(' ' || messages.search_terms || ' ') LIKE ?"
    walk = (f"SELECT {CONV_COLS} FROM conversations WHERE conversations.workspace_id = ? AND "
            f"conversations.merged_into_id IS NULL AND EXISTS (SELECT 1 FROM messages WHERE "
            f"messages.conversation_id = conversations.id AND {like}) "
            "ORDER BY conversations.last_message_at DESC, conversations.id DESC LIMIT ?")
    cases["list_conversations[walk, worst case: no conversation matches]"] = {
        "proposed step 2 walk": timed(db, walk, (1, "% zzzqqq%", 26), 1)}

    # 4. GET /conversations?priority=urgent&sort=priority
    cur = (f"SELECT {CONV_COLS} FROM conversations WHERE conversations.workspace_id = ? AND "
           "conversations.merged_into_id IS NULL AND conversations.priority IN (?) "
           "ORDER BY conversations.priority DESC, conversations.id DESC LIMIT ? OFFSET ?")
    cases["urgent_by_priority"] = {"current": timed(db, cur, (1, 3, 26, 0), args.repeat)}
    if args.try_index:  # writes to the (throwaway) database: the index proposed for this request
        rw = sqlite3.connect(args.db)
        t0 = time.perf_counter()
        rw.execute("CREATE INDEX ix_conv_ws_prio ON conversations (workspace_id, priority, id)")
        built = time.perf_counter() - t0
        case = cases["urgent_by_priority"]
        case[f"proposed: index (workspace_id, priority, id), built in {built:.2f} s"] = timed(
            rw, cur, (1, 3, 26, 0), args.repeat)
        rw.execute("DROP INDEX ix_conv_ws_prio")
        rw.close()

    for case in cases.values():
        if "current" not in case:
            continue
        ids = case["current"]["ids"]
        for k, v in case.items():
            if k.startswith("proposed") and "count" not in k:
                v["same_ids_as_current"] = v["ids"] == ids
    for case in cases.values():
        for v in case.values():
            v.pop("ids")
    out["cases"] = cases
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
