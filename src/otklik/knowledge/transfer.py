"""Import and export of a knowledge base: JSONL (one article a line) and Markdown files with front matter.

JSONL row: `{"id", "title", "body", "language", "category", "tags", "questions", "published", "translation_of"}`;
only `title` and `body` are required; `id` is the article's stable slug (made from the title when absent),
`translation_of` the `id` of the original article. Markdown: one file per article,

    ---
    id: delivery-cost-times
    title: Сроки и стоимость доставки
    language: ru
    tags: [доставка, стоимость]
    ---
    The body in Markdown…

either one `.md` file or a `.zip` of them. An import is all or nothing: every row is checked first and the
errors (with line numbers or file names) come back as one 422; then rows whose `id` exists are updated (a new
version when something changed) and the others created.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.knowledge import service
from otklik.knowledge.markdown import SLUG_RE, slugify
from otklik.knowledge.models import Article
from otklik.platform.errors import InvalidInput, TooLarge
from otklik.platform.jsonbody import MalformedJSON, loads

MAX_ROWS = 5000
MAX_ZIP_FILES = 5000
MAX_UNPACKED_BYTES = 50 * 1_048_576
_SLUG = re.compile(SLUG_RE)
_LANG = re.compile(r"^[a-z]{2}$")
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
STORE_KB = Path(__file__).resolve().parent / "data" / "store_kb_ru.jsonl"  # the demo shop «Домосфера»
KEYS = {"id", "title", "body", "language", "category", "tags", "questions", "published", "translation_of"}


@dataclass
class Row:
    where: str
    slug: str | None
    title: str
    body: str
    language: str = "ru"
    category: str | None = None
    tags: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    published: bool = True
    translation_of: str | None = None


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    ids: list[str] = field(default_factory=list)


def _str_list(value: Any, name: str, errors: list[str], where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: {name} must be a list of strings")
        return []
    if len(value) > 50 or any(len(v) > 500 for v in value):
        errors.append(f"{where}: {name} may have at most 50 items of at most 500 characters")
        return []
    return value


def _row(data: Any, where: str, errors: list[str]) -> Row | None:
    if not isinstance(data, dict):
        errors.append(f"{where}: expected a JSON object")
        return None
    unknown = sorted(set(data) - KEYS)
    if unknown:
        errors.append(f"{where}: unknown keys {', '.join(unknown[:5])}")
    title, body = data.get("title"), data.get("body")
    if not isinstance(title, str) or not title.strip() or len(title) > 300:
        errors.append(f"{where}: title must be a non-empty string of at most 300 characters")
    if not isinstance(body, str) or not body.strip() or len(body) > 200_000:
        errors.append(f"{where}: body must be a non-empty string of at most 200000 characters")
    slug = data.get("id")
    if slug is not None and (not isinstance(slug, str) or not _SLUG.match(slug)):
        errors.append(f"{where}: id must be lowercase latin letters, digits, '.', '_' or '-' (at most 120)")
    language = data.get("language", "ru")
    if not isinstance(language, str) or not _LANG.match(language):
        errors.append(f"{where}: language must be a two-letter code such as ru or en")
    category = data.get("category")
    if category is not None and (not isinstance(category, str) or len(category) > 64):
        errors.append(f"{where}: category must be a string of at most 64 characters")
    published = data.get("published", True)
    if not isinstance(published, bool):
        errors.append(f"{where}: published must be true or false")
    translation_of = data.get("translation_of")
    if translation_of is not None and (not isinstance(translation_of, str) or not _SLUG.match(translation_of)):
        errors.append(f"{where}: translation_of must be the id of another article")
    tags = _str_list(data.get("tags"), "tags", errors, where)
    questions = _str_list(data.get("questions"), "questions", errors, where)
    if not isinstance(title, str) or not isinstance(body, str):
        return None
    return Row(where=where, slug=slug if isinstance(slug, str) else None, title=title, body=body,
               language=language if isinstance(language, str) else "ru",
               category=category if isinstance(category, str) else None, tags=tags, questions=questions,
               published=published if isinstance(published, bool) else True,
               translation_of=translation_of if isinstance(translation_of, str) else None)


def parse_jsonl(raw: bytes, errors: list[str]) -> list[Row]:
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("the file is not UTF-8 text", fields=[{"field": "file", "message": "not UTF-8"}]
                           ) from None
    rows = []
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = loads(line, what=f"line {n}", max_bytes=len(line))  # the file is size-checked where it is read
        except MalformedJSON as exc:  # not JSON, too deep, a lone surrogate: reported, the other lines go in
            errors.append(f"line {n}: {exc.fields[0]['message'].removeprefix('is ')}")
            continue
        row = _row(data, f"line {n}", errors)
        if row is not None:
            rows.append(row)
    return rows


def parse_markdown(text: str, where: str, errors: list[str]) -> Row | None:
    match = _FRONT.match(text)
    meta: Any = {}
    body = text
    if match:
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError:
            errors.append(f"{where}: the front matter is not valid YAML")
            return None
        body = text[match.end():]
        if isinstance(meta, dict):
            meta = {k: (str(v) if k in {"id", "translation_of", "category", "title"} and isinstance(v, int | float)
                        else v) for k, v in meta.items()}
    if not isinstance(meta, dict):
        errors.append(f"{where}: the front matter must be key: value lines")
        return None
    if "title" not in meta:  # a file without front matter: the first "# heading" is the title
        heading = re.match(r"\s*#\s+(.+)\n", body)
        if heading:
            meta["title"] = heading.group(1).strip()
            body = body[heading.end():]
    meta["body"] = body.strip()
    return _row(meta, where, errors)


def parse_zip(raw: bytes, errors: list[str]) -> list[Row]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise InvalidInput("the file is not a valid zip archive",
                           fields=[{"field": "file", "message": "bad zip"}]) from None
    members = [m for m in archive.infolist() if not m.is_dir() and m.filename.lower().endswith(".md")
               and not m.filename.split("/")[-1].startswith(".")]
    if len(members) > MAX_ZIP_FILES:
        raise TooLarge(f"the archive may hold at most {MAX_ZIP_FILES} Markdown files")
    if sum(m.file_size for m in members) > MAX_UNPACKED_BYTES:
        raise TooLarge("the archive unpacks to more than 50 MB")
    rows = []
    for member in members:
        data = archive.read(member)[:MAX_UNPACKED_BYTES]
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            errors.append(f"{member.filename}: not UTF-8 text")
            continue
        row = parse_markdown(text, member.filename, errors)
        if row is not None:
            if row.slug is None:
                row.slug = slugify(member.filename.rsplit("/", 1)[-1].removesuffix(".md"))
            rows.append(row)
    if not members:
        errors.append("the archive holds no .md files")
    return rows


def parse_file(filename: str, raw: bytes) -> list[Row]:
    """Rows of an uploaded file, by its name: .jsonl/.ndjson/.json, .md, or .zip; 422 with every error."""
    errors: list[str] = []
    name = filename.lower()
    if name.endswith(".zip"):
        rows = parse_zip(raw, errors)
    elif name.endswith((".md", ".markdown")):
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("the file is not UTF-8 text") from None
        row = parse_markdown(text, filename, errors)
        rows = [row] if row else []
    elif name.endswith((".jsonl", ".ndjson", ".json")):
        rows = parse_jsonl(raw, errors)
    else:
        raise InvalidInput("send a .jsonl, .md or .zip file", fields=[{"field": "file",
                                                                         "message": "unsupported file type"}])
    if not rows and not errors:
        errors.append("the file holds no articles")
    if len(rows) > MAX_ROWS:
        raise TooLarge(f"at most {MAX_ROWS} articles per import")
    seen: set[str] = set()
    for row in rows:
        if row.slug is not None:
            if row.slug in seen:
                errors.append(f"{row.where}: the id {row.slug!r} appears twice")
            seen.add(row.slug)
    if errors:
        raise InvalidInput(f"{len(errors)} problem(s) in the file; nothing was imported: " + "; ".join(errors[:3]),
                           fields=[{"field": "file", "message": e} for e in errors[:50]])
    return rows


def import_rows(session: Session, actor: Actor, rows: list[Row]) -> ImportResult:
    """Create or update the rows' articles (by id), then link translations; all in the caller's transaction."""
    actor.require(Role.supervisor)
    result = ImportResult()
    by_slug: dict[str, Article] = {}
    known = {a.slug: a for a in session.scalars(select(Article).where(Article.workspace_id == actor.workspace_id))}
    errors: list[str] = []
    for row in rows:
        target = row.translation_of
        if target and target not in known and target not in {r.slug for r in rows}:
            errors.append(f"{row.where}: translation_of {target!r} is neither in the file nor in the workspace")
        if target and target == row.slug:
            errors.append(f"{row.where}: an article cannot be a translation of itself")
    if errors:
        raise InvalidInput(f"{len(errors)} problem(s) in the file; nothing was imported: " + "; ".join(errors[:3]),
                           fields=[{"field": "file", "message": e} for e in errors[:50]])
    for row in rows:
        fields: dict[str, Any] = {"title": row.title.strip(), "body": row.body, "language": row.language,
                  "category": row.category, "tags": row.tags, "questions": row.questions, "published": row.published}
        existing = known.get(row.slug) if row.slug else None
        if existing is None:
            article = service.create_article(session, actor, slug=row.slug, **fields)
            result.created += 1
        else:
            version = existing.version
            article = service.update_article(session, actor, existing.id, fields, note="imported")
            if article.version != version:
                result.updated += 1
            else:
                result.unchanged += 1
        by_slug[article.slug] = article
        known[article.slug] = article
        result.ids.append(article.slug)
    for row in rows:
        if row.slug is None:
            continue
        article = by_slug[row.slug]
        original = known[row.translation_of].id if row.translation_of else None
        if article.translation_of_id != original:
            service.update_article(session, actor, article.id, {"translation_of_id": original})
    return result


def import_file(session: Session, actor: Actor, filename: str, raw: bytes) -> ImportResult:
    actor.require(Role.supervisor)
    return import_rows(session, actor, parse_file(filename, raw))


# -- export --------------------------------------------------------------------------------------------

def article_record(article: Article, slugs: dict[int, str]) -> dict[str, Any]:
    record: dict[str, Any] = {"id": article.slug, "title": article.title, "body": article.body,
                              "language": article.language, "category": article.category, "tags": article.tags,
                              "questions": article.questions, "published": article.published}
    if article.translation_of_id:
        record["translation_of"] = slugs.get(article.translation_of_id)
    return record


def _all(session: Session, actor: Actor, language: str | None) -> tuple[list[Article], dict[int, str]]:
    articles = service.list_articles(session, actor, language=language, limit=MAX_ROWS * 10)
    slugs = dict(session.execute(select(Article.id, Article.slug).where(
        Article.workspace_id == actor.workspace_id)).tuples().all())
    # originals first, so that a file imports in one pass
    articles.sort(key=lambda a: (a.translation_of_id is not None, a.id))
    return articles, slugs


def export_jsonl(session: Session, actor: Actor, *, language: str | None = None) -> str:
    articles, slugs = _all(session, actor, language)
    return "".join(json.dumps(article_record(a, slugs), ensure_ascii=False) + "\n" for a in articles)


def to_markdown(record: dict[str, Any]) -> str:
    meta = {k: v for k, v in record.items() if k != "body" and v not in (None, [])}
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, default_flow_style=None, width=1000)
    return f"---\n{front}---\n\n{record['body'].strip()}\n"


def export_markdown_zip(session: Session, actor: Actor, *, language: str | None = None) -> bytes:
    articles, slugs = _all(session, actor, language)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for article in articles:
            archive.writestr(f"{article.language}/{article.slug}.md", to_markdown(article_record(article, slugs)))
    return buffer.getvalue()


def import_for_workspace(workspace_slug: str, filename: str, raw: bytes) -> ImportResult:
    """`otklik kb import FILE --workspace SLUG`: import as the system, in one transaction."""
    from otklik.accounts import service as accounts
    from otklik.platform.db import session_scope

    with session_scope() as session:
        workspace = accounts.get_workspace_by_slug(session, workspace_slug)
        if workspace is None:
            raise InvalidInput(f"no workspace {workspace_slug!r}")
        return import_file(session, Actor.system(workspace.id), filename, raw)


def export_for_workspace(workspace_slug: str, fmt: str = "jsonl") -> bytes:
    from otklik.accounts import service as accounts
    from otklik.platform.db import session_scope

    with session_scope(write=False) as session:
        workspace = accounts.get_workspace_by_slug(session, workspace_slug)
        if workspace is None:
            raise InvalidInput(f"no workspace {workspace_slug!r}")
        actor = Actor.system(workspace.id)
        if fmt == "markdown":
            return export_markdown_zip(session, actor)
        return export_jsonl(session, actor).encode()


CLINIC_KB = Path(__file__).resolve().parent / "data" / "clinic_kb_ru.jsonl"  # the second demo: a plain KB
CLINIC_REASONS = Path(__file__).resolve().parent / "data" / "clinic_reasons.jsonl"  # and its contact reasons


def clinic_kb_rows() -> list[Row]:
    """The second demo workspace's KB: a clinic chain's 44 help pages (+4 English), title and body only, no
    question variants: what a business that imports its own help center has (bench/data/kbs/clinic)."""
    return parse_file(CLINIC_KB.name, CLINIC_KB.read_bytes())


def store_kb_rows() -> list[Row]:
    """The demo store's knowledge base (55 Russian articles, 16 English translations)."""
    return parse_file(STORE_KB.name, STORE_KB.read_bytes())
