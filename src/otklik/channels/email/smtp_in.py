"""The inbound SMTP endpoint (aiosmtpd): mail forwarded to a support address lands in the inbox.

Recipients map to workspaces by the addresses configured in each email channel; anything else is refused
at RCPT (550), so this is never an open relay. DATA is answered 250 only after the mail is committed to the
database: a sending server that sees no 250 keeps the mail and retries, and the retry is de-duplicated by
Message-ID. Run it with `otklik smtpd`, or inside `otklik serve` with OTKLIK_SMTPD_ENABLED=true.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import ssl
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.orm import Session

from otklik.channels.email.inbound import IngestResult, RejectedMail, address_book, ingest, store_many
from otklik.channels.email.parsing import ParsedEmail, parse_email
from otklik.platform.db import run_transaction
from otklik.platform.errors import RateLimited
from otklik.platform.ratelimit import SlidingWindow

log = logging.getLogger(__name__)


class SmtpdSettings(BaseSettings):
    """`OTKLIK_SMTPD_*`: where the endpoint listens and what it accepts."""

    model_config = SettingsConfigDict(env_prefix="OTKLIK_SMTPD_", env_file=".env", extra="ignore")

    enabled: bool = False             # also start it inside `otklik serve`
    host: str = "127.0.0.1"
    port: int = 2525
    hostname: str = ""                # the name in the greeting (default: this machine's FQDN)
    max_bytes: int = 25 * 1_048_576   # SIZE: larger mail is refused with 552
    max_recipients: int = 50
    per_client_per_minute: int = 600  # mails from one client IP; over it: 450, the client retries later
    tls_cert: str | None = None       # PEM files: offer STARTTLS
    tls_key: str | None = None


class InboundHandler:
    """aiosmtpd handler: RCPT routes to a workspace, DATA stores the mail and answers after commit."""

    def __init__(self, settings: SmtpdSettings):
        self.settings = settings
        self.limiter = SlidingWindow(settings.per_client_per_minute, 60.0)

    async def handle_MAIL(self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        try:
            self.limiter.hit(peer)
        except RateLimited:
            return "450 4.7.1 too many messages from your address; try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: SmtpSession, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.settings.max_recipients:
            return "452 4.5.3 too many recipients"
        route = await asyncio.to_thread(address_book.route, address)
        if route is None:
            return f"550 5.1.1 <{address[:200]}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        routes: dict[int, int] = getattr(envelope, "otklik_routes", {})
        routes.setdefault(route[0], route[1])
        envelope.otklik_routes = routes  # type: ignore[attr-defined]
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        routes: dict[int, int] = getattr(envelope, "otklik_routes", {})
        if not raw or not routes:
            return "554 5.5.1 no valid recipients"
        try:
            results = await asyncio.wrap_future(committer.submit(raw, list(routes)))
        except RejectedMail as exc:
            return exc.reply
        except Exception:
            log.exception("inbound mail could not be stored")
            return "451 4.3.0 temporary failure storing the message; try again later"
        outcome = ", ".join(sorted({r.outcome for r in results}))
        return f"250 2.0.0 OK {outcome}"


def store_for_workspaces(raw: bytes, workspace_ids: list[int]) -> list[IngestResult]:
    """Store a mail once per workspace it was addressed to (parsed once), in its own transaction."""
    parsed = parse_email(raw)
    return [ingest(raw, workspace_id, source="smtp", parsed=parsed) for workspace_id in workspace_ids]


@dataclass
class _Job:
    raw: bytes
    workspace_ids: list[int]
    future: Future[list[IngestResult]]


class GroupCommitter:
    """Mails that arrive while the previous transaction runs are stored together in the next one.

    One writer thread, one `receive_many()` per workspace per batch: under load the queue drains in batches
    instead of one transaction per mail, which keeps both throughput and the time to acknowledge in check.
    Every mail is still acknowledged only after the commit that holds it. If a batch fails as a whole, its
    mails are stored one by one, so one bad mail never costs the others.
    """

    def __init__(self, max_batch: int = 50):
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, raw: bytes, workspace_ids: list[int]) -> Future[list[IngestResult]]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="otklik-smtpd-writer", daemon=True)
                self._thread.start()
        job = _Job(raw, workspace_ids, Future())
        self._queue.put(job)
        return job.future

    def _loop(self) -> None:
        while True:
            jobs = [self._queue.get()]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._store(jobs)
            except BaseException as exc:  # never leave a client waiting
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    def _store(self, jobs: list[_Job]) -> None:
        parsed = [parse_email(job.raw) for job in jobs]
        outcomes: list[list[IngestResult | BaseException]] = [[] for _ in jobs]
        by_workspace: dict[int, list[int]] = {}
        for j, job in enumerate(jobs):
            for workspace_id in job.workspace_ids:
                by_workspace.setdefault(workspace_id, []).append(j)
        for workspace_id, members in by_workspace.items():
            mails = [parsed[j] for j in members]
            try:
                results = run_transaction(partial(_store_batch, workspace_id, mails))
                for j, result in zip(members, results, strict=True):
                    outcomes[j].append(result)
            except Exception:
                log.warning("a batch of %d mails failed; storing them one by one", len(members), exc_info=True)
                for j in members:
                    try:
                        outcomes[j].append(ingest(jobs[j].raw, workspace_id, source="smtp", parsed=parsed[j]))
                    except Exception as exc:
                        outcomes[j].append(exc)
        for job, outcome in zip(jobs, outcomes, strict=True):
            failure = next((o for o in outcome if isinstance(o, RejectedMail)), None) or next(
                (o for o in outcome if isinstance(o, BaseException)), None)
            if failure is not None:
                job.future.set_exception(failure)
            else:
                job.future.set_result([o for o in outcome if isinstance(o, IngestResult)])


def _store_batch(workspace_id: int, mails: list[ParsedEmail], session: Session
                 ) -> list[IngestResult | RejectedMail]:
    return store_many(session, workspace_id, mails, source="smtp")


committer = GroupCommitter()


def _tls_context(settings: SmtpdSettings) -> ssl.SSLContext | None:
    if not (settings.tls_cert and settings.tls_key):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def make_controller(settings: SmtpdSettings | None = None, **overrides: Any) -> Controller:
    """An aiosmtpd controller (not started). Call `.start()` / `.stop()`."""
    settings = settings or SmtpdSettings()
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every peer and command at INFO
    if overrides:
        settings = settings.model_copy(update=overrides)
    return Controller(
        InboundHandler(settings), hostname=settings.host, port=settings.port,
        server_hostname=settings.hostname or None, data_size_limit=settings.max_bytes,
        enable_SMTPUTF8=True, tls_context=_tls_context(settings), ident="Otklik ESMTP", timeout=120,
    )


def start_if_configured() -> Controller | None:
    """Started by `otklik serve` when OTKLIK_SMTPD_ENABLED is set."""
    settings = SmtpdSettings()
    if not settings.enabled:
        return None
    controller = make_controller(settings)
    try:
        controller.start()
    except Exception:
        log.exception("the inbound SMTP endpoint could not start on %s:%s", settings.host, settings.port)
        return None
    log.info("inbound SMTP endpoint on %s:%s", settings.host, settings.port)
    return controller
