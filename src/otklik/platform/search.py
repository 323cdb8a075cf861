"""Full-text match over pre-stemmed `search_terms` columns, one interface for SQLite FTS5 and PostgreSQL.

SQLite: an external-content FTS5 table per searchable table, kept in sync by triggers (see migrations).
PostgreSQL: a generated `tsvector` column (`simple` config over our stems) with a GIN index.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, literal, literal_column, text
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.orm import Session

from otklik.platform.text import query_terms

_FTS_TABLES = {"messages": "messages_fts", "customers": "customers_fts"}


def match_clause(session: Session, table: str, id_column: Any, query: str, *, prefix_last: bool = True
                 ) -> ColumnElement[bool] | None:
    """A WHERE clause restricting `id_column` to rows of `table` matching every term of `query`.

    Returns None when the query has no searchable words (the caller answers with a 422).
    """
    terms = query_terms(query)
    if not terms:
        return None
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        parts = [f'"{t}"' for t in terms]
        if prefix_last:
            parts[-1] += "*"
        fts = _FTS_TABLES[table]  # a fixed name, never user input
        return id_column.in_(
            text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :fts_q").bindparams(fts_q=" ".join(parts))  # noqa: S608
        )
    parts = [f"'{t}'" for t in terms]
    if prefix_last:
        parts[-1] += ":*"
    vector: ColumnElement[Any] = literal_column(f"{table}.search_vector")
    return vector.op("@@")(text("to_tsquery('simple', :fts_q)").bindparams(fts_q=" & ".join(parts)))


def newest_matches(session: Session, stmt: Select[Any], table: str, id_column: Any, query: str, *,
                   before_id: int | None = None, prefix_last: bool = True) -> Select[Any] | None:
    """`stmt` restricted to rows matching `query`, newest (highest id) first.

    On SQLite the FTS index drives the query in descending rowid order, so a LIMIT stops after the first
    matches instead of materialising every match of a common word (hundreds of thousands of rows).
    """
    terms = query_terms(query)
    if not terms:
        return None
    if session.get_bind().dialect.name != "sqlite":
        clause = match_clause(session, table, id_column, query, prefix_last=prefix_last)
        assert clause is not None
        if before_id is not None:
            stmt = stmt.where(id_column < before_id)
        return stmt.where(clause).order_by(id_column.desc())
    name = _FTS_TABLES[table]
    fts = sa_table(name, sa_column("rowid"), sa_column(name))
    parts = [f'"{t}"' for t in terms]
    if prefix_last:
        parts[-1] += "*"
    stmt = stmt.join(fts, fts.c.rowid == id_column).where(fts.c[name].op("MATCH")(" ".join(parts)))
    if before_id is not None:
        stmt = stmt.where(fts.c.rowid < before_id)
    return stmt.order_by(fts.c.rowid.desc())


def is_common(session: Session, table: str, query: str, *, workspace_id: int, cap: int = 5000) -> bool:
    """Whether `query` matches more than `cap` rows of the workspace (SQLite only; counting stops at the cap).

    Counted within the workspace: a word common elsewhere but rare here must not pick the walk plan."""
    terms = query_terms(query)
    if not terms or session.get_bind().dialect.name != "sqlite":
        return False
    name = _FTS_TABLES[table]  # fixed names, never user input
    parts = [f'"{t}"' for t in terms]
    parts[-1] += "*"
    count = session.scalar(text(
        # CROSS JOIN fixes the order: the index drives; the other order tests MATCH on every message.
        f"SELECT count(*) FROM (SELECT 1 FROM {name} CROSS JOIN {table} ON {table}.id = {name}.rowid "  # noqa: S608
        f"WHERE {name} MATCH :q AND {table}.workspace_id = :ws LIMIT :cap)"
    ).bindparams(q=" ".join(parts), ws=workspace_id, cap=cap + 1))
    return bool(count and count > cap)


def contains_terms(search_terms_column: Any, query: str) -> ColumnElement[bool] | None:
    """The same match as the FTS index (every stem, the last one as a prefix), as LIKE over the stored
    terms: cheap per row, for walking rows in sort order when a word is too common for the index to help."""
    terms = query_terms(query)
    if not terms:
        return None
    padded = literal(" ") + search_terms_column + literal(" ")
    patterns = [f"% {t} %" for t in terms[:-1]] + [f"% {terms[-1]}%"]
    return and_(*(padded.like(p) for p in patterns))
