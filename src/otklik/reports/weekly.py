"""The weekly report by e-mail (issue 15): the summary figures of the past Monday–Sunday (the workspace's days)
beside the week before, sent by the worker through the platform mailer (`OTKLIK_SMTP_*`) to the supervisors and
admins who opted in and to the workspace's own list of addresses.

Each week goes to each address once: a delivery row (workspace, week, address) is claimed in its own transaction
before the message leaves, so a second sweep or a second worker finds it taken. A refused or unreachable SMTP
server marks it failed and later sweeps try again (3 tries); a worker killed between the claim and the send leaves
it «sending» and the week is not sent twice (at most once, never twice). Never computes a figure itself: the
figures are `reports.service.summary`'s.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import ROLE_RANK, Role, User, Workspace
from otklik.accounts.service import Actor, record_audit
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.errors import field_error
from otklik.reports import service as reports
from otklik.reports.models import WeeklyReportDelivery, WeeklyReportOptIn, WeeklyReportSettings

log = logging.getLogger(__name__)
SEND_FROM = dt.timedelta(hours=8)  # Monday 08:00, the workspace's time: the report is there when the week starts
MAX_TRIES = 3
MAX_ADDRESSES = 50
EMAIL = re.compile(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+")
SEND_WEEKDAY = 0  # Monday

TEXTS = {
    "ru": {"subject": "Отклик: неделя {start}–{end}, {workspace}",
           "title": "Еженедельный отчёт «{workspace}» за {start}–{end} (рядом — неделя {prev_start}–{prev_end})",
           "conversations": "Обращений", "first": "Первый ответ, медиана", "first_p90": "Первый ответ, p90",
           "resolution": "Решение, медиана", "sla": "SLA выполнен", "csat": "CSAT (доля оценок 4–5)",
           "nps": "NPS", "ces": "CES, среднее", "fcr": "Решено с первого обращения",
           "repeat": "Повторные обращения за 7 дней", "bot": "Решено ИИ без человека",
           "answers": "ответов", "was": "было", "full": "Отчёт целиком", "none": "—",
           "footer": "Письмо приходит по понедельникам. Отписаться: Настройки → Опросы и отчёты.",
           "min": "мин", "h": "ч", "s": "с"},
    "en": {"subject": "Otklik: week {start}–{end}, {workspace}",
           "title": "Weekly report of «{workspace}» for {start}–{end} (beside it: the week {prev_start}–{prev_end})",
           "conversations": "Conversations", "first": "First response, median", "first_p90": "First response, p90",
           "resolution": "Resolution, median", "sla": "SLA met", "csat": "CSAT (share of 4–5)",
           "nps": "NPS", "ces": "CES, mean", "fcr": "First-contact resolution",
           "repeat": "Repeat contacts within 7 days", "bot": "Solved by the assistant alone",
           "answers": "answers", "was": "was", "full": "The full report", "none": "—",
           "footer": "Sent on Mondays. To stop it: Settings → Surveys and reports.",
           "min": "min", "h": "h", "s": "s"},
}


def week_due(zone_now: dt.datetime) -> dt.date:
    """The Monday of the week whose report is due at this local moment: the last complete Monday–Sunday once
    Monday 08:00 has passed, the one before until then."""
    shifted = (zone_now - SEND_FROM).date()
    return shifted - dt.timedelta(days=shifted.weekday() + 7)


# -- settings and recipients ------------------------------------------------------------------------------

def settings_of(session: Session, workspace_id: int) -> WeeklyReportSettings:
    row = session.get(WeeklyReportSettings, workspace_id)
    return row if row is not None else WeeklyReportSettings(workspace_id=workspace_id, addresses="")


def parse_addresses(raw: str) -> list[str]:
    """One address a line (or separated by commas): each must look like an e-mail; duplicates dropped."""
    out: list[str] = []
    for part in re.split(r"[\s,;]+", raw or ""):
        if not part:
            continue
        if len(part) > 254 or not EMAIL.fullmatch(part):
            raise field_error("addresses", f"not an e-mail address: {part[:60]}")
        if part.lower() not in (a.lower() for a in out):
            out.append(part)
    if len(out) > MAX_ADDRESSES:
        raise field_error("addresses", f"at most {MAX_ADDRESSES} addresses")
    return out


def update_settings(session: Session, actor: Actor, *, addresses: str) -> WeeklyReportSettings:
    actor.require(Role.admin)
    clean = parse_addresses(addresses)
    row = session.get(WeeklyReportSettings, actor.workspace_id)
    if row is None:
        row = WeeklyReportSettings(workspace_id=actor.workspace_id, addresses="")
        session.add(row)
    row.addresses = "\n".join(clean)
    row.updated_at = utcnow()
    record_audit(session, actor, entity_type="weekly_report", entity_id=actor.workspace_id, action="updated",
                 after={"addresses": len(clean)})
    session.flush()
    return row


def subscribed(session: Session, actor: Actor) -> bool:
    row = session.get(WeeklyReportOptIn, actor.user_id) if actor.user_id else None
    return row is not None and row.workspace_id == actor.workspace_id


def subscribe(session: Session, actor: Actor, on: bool) -> bool:
    """A supervisor or admin asks for (or stops) the weekly report at their own address."""
    actor.require(Role.supervisor)
    assert actor.user_id is not None
    row = session.get(WeeklyReportOptIn, actor.user_id)
    if on and row is None:
        session.add(WeeklyReportOptIn(user_id=actor.user_id, workspace_id=actor.workspace_id))
    elif not on and row is not None:
        session.delete(row)
    session.flush()
    return on


def recipients(session: Session, workspace_id: int) -> list[tuple[str, str]]:
    """(address, language): the opted-in active supervisors and admins, then the workspace's list (in the
    workspace's language); one entry per address."""
    out: dict[str, tuple[str, str]] = {}
    for email, language, role in session.execute(
            select(User.email, User.language, User.role).join(WeeklyReportOptIn, WeeklyReportOptIn.user_id == User.id)
            .where(WeeklyReportOptIn.workspace_id == workspace_id, User.workspace_id == workspace_id,
                   User.is_active.is_(True)).order_by(User.id)):
        if ROLE_RANK[Role(role)] >= ROLE_RANK[Role.supervisor]:
            out.setdefault(email.lower(), (email, language or "ru"))
    workspace_language = session.scalar(select(Workspace.language).where(Workspace.id == workspace_id)) or "ru"
    for email in parse_addresses(settings_of(session, workspace_id).addresses):
        out.setdefault(email.lower(), (email, workspace_language))
    return list(out.values())


def settings_data(session: Session, actor: Actor) -> dict[str, Any]:
    return {"addresses": parse_addresses(settings_of(session, actor.workspace_id).addresses),
            "subscribed": subscribed(session, actor),
            "recipients": [email for email, _ in recipients(session, actor.workspace_id)],
            "mail_configured": bool(get_settings().smtp_host)}


# -- the report ---------------------------------------------------------------------------------------------

def figures(session: Session, workspace_id: int, week_start: dt.date) -> dict[str, Any]:
    """The summary of the week starting `week_start` (Monday) and of the week before."""
    end = week_start + dt.timedelta(days=6)
    prev_start = week_start - dt.timedelta(days=7)
    this = reports.summary(session, workspace_id, reports.Filters(week_start, end))
    before = reports.summary(session, workspace_id, reports.Filters(prev_start, week_start - dt.timedelta(days=1)))
    return {"week": {"from": week_start.isoformat(), "to": end.isoformat()},
            "previous": {"from": prev_start.isoformat(), "to": (week_start - dt.timedelta(days=1)).isoformat()},
            "this": this, "before": before}


def _duration(seconds: int | None, t: dict[str, str]) -> str:
    if seconds is None:
        return t["none"]
    if seconds < 60:
        return f"{seconds} {t['s']}"
    minutes = round(seconds / 60)
    return f"{minutes} {t['min']}" if minutes < 60 else f"{minutes // 60} {t['h']} {minutes % 60} {t['min']}"


def _share(value: float | None, t: dict[str, str]) -> str:
    return t["none"] if value is None else f"{round(value * 100)} %"


def _plain(value: Any, t: dict[str, str]) -> str:
    return t["none"] if value is None else str(value)


def compose(workspace: str, data: dict[str, Any], language: str, base_url: str) -> tuple[str, str]:
    """(subject, plain text) of the report in the recipient's language (Russian when it is neither)."""
    t = TEXTS[language if language in TEXTS else "ru"]
    this, before = data["this"], data["before"]

    def day(value: str) -> str:
        return dt.date.fromisoformat(value).strftime("%d.%m.%Y")

    names = {"workspace": workspace, "start": day(data["week"]["from"]), "end": day(data["week"]["to"]),
             "prev_start": day(data["previous"]["from"]), "prev_end": day(data["previous"]["to"])}
    rows: list[tuple[str, str, str]] = [
        (t["conversations"], str(this["conversations"]), str(before["conversations"])),
        (t["first"], _duration(this["first_response_median_s"], t), _duration(before["first_response_median_s"], t)),
        (t["first_p90"], _duration(this["first_response_p90_s"], t), _duration(before["first_response_p90_s"], t)),
        (t["resolution"], _duration(this["resolution_median_s"], t), _duration(before["resolution_median_s"], t)),
        (t["sla"], _share(this["sla_met_rate"], t), _share(before["sla_met_rate"], t)),
        (t["csat"], f"{_share(this['csat'], t)} ({this['csat_responses']} {t['answers']})",
         f"{_share(before['csat'], t)} ({before['csat_responses']} {t['answers']})"),
        (t["nps"], f"{_plain(this['nps'], t)} ({this['nps_responses']} {t['answers']})",
         f"{_plain(before['nps'], t)} ({before['nps_responses']} {t['answers']})"),
        (t["ces"], _plain(this["ces_avg"], t), _plain(before["ces_avg"], t)),
        (t["fcr"], _share(this["fcr_rate"], t), _share(before["fcr_rate"], t)),
        (t["repeat"], _share(this["repeat_contact_rate"], t), _share(before["repeat_contact_rate"], t)),
        (t["bot"], _share(this["bot_containment_rate"], t), _share(before["bot_containment_rate"], t)),
    ]
    lines = [t["title"].format(**names), ""]
    lines += [f"{label}: {now} ({t['was']} {was})" for label, now, was in rows]
    link = f"{base_url.rstrip('/')}/reports?from={data['week']['from']}&to={data['week']['to']}"
    lines += ["", f"{t['full']}: {link}", "", t["footer"]]
    return t["subject"].format(**names), "\n".join(lines) + "\n"


# -- sending ------------------------------------------------------------------------------------------------

def _claim(session: Session, workspace_id: int, week: dt.date, email: str, now: dt.datetime) -> bool:
    """Take the (workspace, week, address) delivery for this worker: True when it is ours to send."""
    row = session.scalar(select(WeeklyReportDelivery).where(
        WeeklyReportDelivery.workspace_id == workspace_id, WeeklyReportDelivery.week_start == week,
        WeeklyReportDelivery.email == email).with_for_update())
    if row is None:
        try:
            with session.begin_nested():
                session.add(WeeklyReportDelivery(workspace_id=workspace_id, week_start=week, email=email,
                                                 status="sending", attempts=1, error="", claimed_at=now))
        except IntegrityError:
            return False  # another worker claimed it a moment ago
        return True
    if row.status == "failed" and row.attempts < MAX_TRIES:
        row.status, row.attempts, row.claimed_at = "sending", row.attempts + 1, now
        return True
    return False


def _finish(workspace_id: int, week: dt.date, email: str, error: str | None) -> None:
    def work(session: Session) -> None:
        row = session.scalar(select(WeeklyReportDelivery).where(
            WeeklyReportDelivery.workspace_id == workspace_id, WeeklyReportDelivery.week_start == week,
            WeeklyReportDelivery.email == email))
        if row is not None:
            row.status = "failed" if error else "sent"
            row.error = (error or "")[:300]
            row.sent_at = None if error else utcnow()

    run_transaction(work)


def send_workspace(workspace_id: int, *, now: dt.datetime | None = None) -> int:
    """Send the due week's report of one workspace to each recipient not sent yet; returns how many left."""
    from otklik.platform import mailer

    now = now or utcnow()
    settings = get_settings()
    if not mailer.mail_configured(settings):
        return 0
    with session_scope(write=False) as session:
        zone = reports.workspace_zone(session, workspace_id)
        week = week_due(now.astimezone(zone))
        done = {email for email, status, attempts in session.execute(
            select(WeeklyReportDelivery.email, WeeklyReportDelivery.status, WeeklyReportDelivery.attempts).where(
                WeeklyReportDelivery.workspace_id == workspace_id, WeeklyReportDelivery.week_start == week))
                if status != "failed" or attempts >= MAX_TRIES}
        people = [(email, language) for email, language in recipients(session, workspace_id) if email not in done]
        if not people:
            return 0  # everyone has this week's: the sweep every 10 minutes computes no figures
        name = session.scalar(select(Workspace.name).where(Workspace.id == workspace_id)) or ""
        data = figures(session, workspace_id, week)
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    sent = 0
    for email, language in people:
        def claim(session: Session, email: str = email) -> bool:
            return _claim(session, workspace_id, week, email, now)

        if not run_transaction(claim):
            continue
        subject, text = compose(name, data, language, base)
        try:
            mailer.send_mail(to=email, subject=subject, text=text, settings=settings)
        except Exception as exc:  # the SMTP server refused or could not be reached: a later sweep tries again
            log.warning("weekly report to %s not sent: %s", mailer._mask(email), type(exc).__name__)
            _finish(workspace_id, week, email, f"{type(exc).__name__}: {exc}")
            continue
        _finish(workspace_id, week, email, None)
        sent += 1
    return sent


def deliveries(session: Session, actor: Actor, limit: int = 20) -> list[dict[str, Any]]:
    actor.require(Role.supervisor)
    rows = session.scalars(select(WeeklyReportDelivery).where(WeeklyReportDelivery.workspace_id == actor.workspace_id)
                           .order_by(WeeklyReportDelivery.id.desc()).limit(limit))
    return [{"week_start": r.week_start.isoformat(), "email": r.email, "status": r.status, "attempts": r.attempts,
             "sent_at": r.sent_at.isoformat() if r.sent_at else None} for r in rows]
