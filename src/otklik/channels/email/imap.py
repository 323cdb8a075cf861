"""The IMAP poller: one thread per mailbox, IDLE when the server has it, polling otherwise.

Position is kept by UID with UIDVALIDITY: the last stored UID is committed in the same transaction as the
mail, so a restart neither re-imports nor skips anything; when UIDVALIDITY changes (the server rebuilt the
folder), unread and recent mail is fetched again and Message-ID de-duplication drops what we already have.
A lease on the mailbox row keeps two processes from polling the same box. Mail is marked \\Seen (or moved)
only after it is stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import socket
import ssl
import threading
import time
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.channels.email.inbound import IngestResult, RejectedMail, store_parsed
from otklik.channels.email.models import EmailMailbox
from otklik.channels.email.parsing import parse_email
from otklik.channels.models import ChannelAccount
from otklik.platform.db import affected, run_transaction, session_scope, utcnow

log = logging.getLogger(__name__)
KIND = "email"
LEASE_SECONDS = 90
IDLE_CHUNK_SECONDS = 5.0       # how often a thread in IDLE checks its stop flag and renews its lease
IDLE_RESTART_SECONDS = 25 * 60  # RFC 2177: re-issue IDLE before the server's 30 minute timeout
POLL_SECONDS = 60.0            # servers without IDLE
BATCH = 20
MAX_MESSAGE_BYTES = 40 * 1_048_576
OWNER = f"{socket.gethostname()[:40]}:{os.getpid()}"


def _load(account_id: int) -> tuple[ChannelAccount, dict[str, Any], dict[str, str]] | None:
    from otklik.channels.secrets import decrypt_secrets

    with session_scope(write=False) as session:
        account = session.get(ChannelAccount, account_id)
        if account is None or not account.enabled or account.kind != KIND:
            return None
        session.expunge(account)
    config = dict(account.config or {})
    if not config.get("imap_host"):
        return None
    return account, config, decrypt_secrets(account.secret)


def fingerprint(config: dict[str, Any], secret: str | None) -> str:
    return hashlib.sha256((json.dumps(config, sort_keys=True, default=str) + (secret or "")).encode()).hexdigest()


def connect(config: dict[str, Any], password: str) -> IMAPClient:
    host = str(config["imap_host"])
    security = config.get("imap_security", "ssl")
    port = int(config.get("imap_port") or (993 if security == "ssl" else 143))
    context = ssl.create_default_context()
    if not config.get("verify_tls", True):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    client = IMAPClient(host, port=port, ssl=security == "ssl", ssl_context=context, timeout=30)
    try:
        if security == "starttls":
            client.starttls(context)
        client.login(str(config.get("imap_username") or ""), password)
    except BaseException:
        with contextlib.suppress(Exception):  # closing a socket that is already broken
            client.shutdown()
        raise
    return client


class MailboxPoller:
    """Imports one account's IMAP folder. `run()` loops until `stop` is set; `sync_once()` does one pass."""

    def __init__(self, account_id: int, stop: threading.Event | None = None, *, owner: str | None = None):
        self.account_id = account_id
        self.stop = stop or threading.Event()
        self.owner = owner or f"{OWNER}:{id(self):x}"
        self.client: IMAPClient | None = None

    # -- lease and state ----------------------------------------------------------------------------------
    def _acquire(self, workspace_id: int, folder: str) -> bool:
        now = utcnow()
        for _ in range(2):
            try:
                with session_scope() as session:
                    row = session.scalar(select(EmailMailbox.id).where(EmailMailbox.account_id == self.account_id,
                                                                       EmailMailbox.folder == folder))
                    if row is None:
                        session.add(EmailMailbox(workspace_id=workspace_id, account_id=self.account_id,
                                                 folder=folder, last_uid=0, imported=0, updated_at=now))
                        session.flush()
                    got = affected(session.execute(update(EmailMailbox).where(
                        EmailMailbox.account_id == self.account_id, EmailMailbox.folder == folder,
                        or_(EmailMailbox.lease_owner.is_(None), EmailMailbox.lease_owner == self.owner,
                            EmailMailbox.lease_until < now)).values(
                        lease_owner=self.owner, lease_until=now + dt.timedelta(seconds=LEASE_SECONDS))))
                    return got == 1
            except IntegrityError:
                continue
        return False

    def _release(self, folder: str) -> None:
        with session_scope() as session:
            session.execute(update(EmailMailbox).where(
                EmailMailbox.account_id == self.account_id, EmailMailbox.folder == folder,
                EmailMailbox.lease_owner == self.owner).values(lease_owner=None, lease_until=None))

    def _note(self, folder: str, error: str | None) -> None:
        """Record the outcome of a pass; the admin sees it in the account's `state` on the settings page."""
        now = utcnow()
        with session_scope() as session:
            session.execute(update(EmailMailbox).where(
                EmailMailbox.account_id == self.account_id, EmailMailbox.folder == folder).values(
                last_error=error[:2000] if error else None, last_poll_at=now, updated_at=now))
            mailbox = session.scalar(select(EmailMailbox).where(EmailMailbox.account_id == self.account_id,
                                                                EmailMailbox.folder == folder))
            account = session.get(ChannelAccount, self.account_id)
            if account is not None and mailbox is not None:
                report = {"folder": folder, "error": mailbox.last_error, "imported": mailbox.imported,
                          "checked_at": now.isoformat(timespec="seconds")}
                previous = (account.state or {}).get("imap") or {}
                # rewrite the row only when something an admin would notice changed, not on every IDLE wake-up
                if {**previous, "checked_at": None} != {**report, "checked_at": None} or not previous:
                    account.state = {**(account.state or {}), "imap": report}

    def _state(self, folder: str) -> EmailMailbox:
        with session_scope(write=False) as session:
            state = session.scalar(select(EmailMailbox).where(EmailMailbox.account_id == self.account_id,
                                                              EmailMailbox.folder == folder))
            assert state is not None
            session.expunge(state)
            return state

    # -- one pass -----------------------------------------------------------------------------------------
    def sync(self, client: IMAPClient, workspace_id: int, config: dict[str, Any], folder: str,
             selected: dict[bytes, Any]) -> int:
        """Import what is new in the selected folder; returns how many mails were stored."""
        uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        uidnext = int(selected.get(b"UIDNEXT", 0) or 0)
        state = self._state(folder)
        if state.uidvalidity != uidvalidity:
            if state.uidvalidity is None:
                uids = client.search(["UNSEEN"])  # a new mailbox: what nobody has read yet
            else:
                # The server renumbered the folder: fetch unread and recent mail again, Message-ID drops repeats
                since = (state.last_poll_at or utcnow()) - dt.timedelta(days=2)
                uids = sorted(set(client.search(["UNSEEN"])) | set(client.search(["SINCE", since.date()])))
                log.warning("mailbox %s: UIDVALIDITY changed; re-scanning %d mails", self.account_id, len(uids))
            start_uid = max(uidnext - 1, 0)
            with session_scope() as session:
                session.execute(update(EmailMailbox).where(EmailMailbox.id == state.id).values(
                    uidvalidity=uidvalidity, last_uid=0, updated_at=utcnow()))
            stored = self._import(client, state.id, workspace_id, config, sorted(uids))
            with session_scope() as session:
                row = session.get(EmailMailbox, state.id)
                assert row is not None
                row.last_uid = max(row.last_uid, start_uid)
            return stored
        uids = [u for u in client.search(["UID", f"{state.last_uid + 1}:*"]) if u > state.last_uid]
        return self._import(client, state.id, workspace_id, config, sorted(uids))

    def _import(self, client: IMAPClient, state_id: int, workspace_id: int, config: dict[str, Any],
                uids: list[int]) -> int:
        stored = 0
        for start in range(0, len(uids), BATCH):
            batch = uids[start:start + BATCH]
            sizes = client.fetch(batch, ["RFC822.SIZE"])
            small = [u for u in batch if int(sizes.get(u, {}).get(b"RFC822.SIZE", 0)) <= MAX_MESSAGE_BYTES]
            bodies = client.fetch(small, ["BODY.PEEK[]"]) if small else {}
            done: list[int] = []
            for uid in batch:
                if self.stop.is_set():
                    break
                raw = bodies.get(uid, {}).get(b"BODY[]")
                error = None
                if raw is None:
                    error = f"UID {uid}: larger than {MAX_MESSAGE_BYTES} bytes or gone; left in the mailbox"
                    self._advance(state_id, uid)
                else:
                    try:
                        result = self._store(state_id, workspace_id, uid, bytes(raw))
                        stored += result.outcome == "stored"
                        done.append(uid)
                    except RejectedMail as exc:
                        error = f"UID {uid}: {exc.reply}; left unread in the mailbox"
                        self._advance(state_id, uid)
                if error:
                    log.warning("mailbox %s: %s", self.account_id, error)
                    self._note(str(config.get("imap_folder") or "INBOX"), error)
            if done:
                self._acknowledge(client, config, done)
            if self.stop.is_set():
                break
        return stored

    def _store(self, state_id: int, workspace_id: int, uid: int, raw: bytes) -> IngestResult:
        parsed = parse_email(raw)

        def work(session: Session) -> IngestResult:
            result = store_parsed(session, workspace_id, parsed, source="imap")
            row = session.get(EmailMailbox, state_id)
            assert row is not None
            row.last_uid = max(row.last_uid, uid)
            row.imported += result.outcome == "stored"
            row.updated_at = utcnow()
            return result

        return run_transaction(work)

    def _advance(self, state_id: int, uid: int) -> None:
        with session_scope() as session:
            row = session.get(EmailMailbox, state_id)
            if row is not None:
                row.last_uid = max(row.last_uid, uid)

    def _acknowledge(self, client: IMAPClient, config: dict[str, Any], uids: list[int]) -> None:
        target = str(config.get("imap_move_to") or "").strip()
        if target:
            if client.has_capability("MOVE"):
                client.move(uids, target)
            else:
                client.copy(uids, target)
                client.delete_messages(uids)
                client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()
        else:
            client.add_flags(uids, [b"\\Seen"])

    # -- the loop -----------------------------------------------------------------------------------------
    def sync_once(self) -> int:
        """Connect, import what is new, disconnect (one pass, without IDLE)."""
        loaded = _load(self.account_id)
        if loaded is None:
            return 0
        account, config, secrets = loaded
        folder = str(config.get("imap_folder") or "INBOX")
        if not self._acquire(account.workspace_id, folder):
            return 0
        client = None
        try:
            client = connect(config, secrets.get("imap_password", ""))
            selected = client.select_folder(folder)
            stored = self.sync(client, account.workspace_id, config, folder, selected)
            self._note(folder, None)
            return stored
        finally:
            self._release(folder)
            if client is not None:
                with contextlib.suppress(Exception):  # the server may have gone already
                    client.logout()

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            folder = "INBOX"
            try:
                loaded = _load(self.account_id)
                if loaded is None:
                    return
                account, config, secrets = loaded
                folder = str(config.get("imap_folder") or "INBOX")
                if not self._acquire(account.workspace_id, folder):
                    self.stop.wait(LEASE_SECONDS / 3)  # another process polls this mailbox
                    continue
                self._session(account.workspace_id, config, secrets, folder)
                failures = 0
            except LoginError:
                failures += 1
                self._safe_note(folder, "IMAP login failed: check the user name and password")
            except (TimeoutError, IMAPClientError, OSError, ssl.SSLError) as exc:
                failures += 1
                self._safe_note(folder, f"IMAP connection failed: {type(exc).__name__}: {exc}"[:500])
            except Exception as exc:
                failures += 1
                log.exception("mailbox %s: poller failed", self.account_id)
                self._safe_note(folder, f"{type(exc).__name__}: {exc}"[:500])
            finally:
                if self.client is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection
                        self.client.shutdown()
                    self.client = None
            if failures:
                self.stop.wait(min(300.0, 2.0 ** min(failures, 8)))
        try:
            self._release(folder)
        except Exception:
            log.warning("mailbox %s: could not release its lease", self.account_id)

    def _safe_note(self, folder: str, error: str) -> None:
        log.warning("mailbox %s: %s", self.account_id, error)
        try:
            self._note(folder, error)
        except Exception:
            log.warning("mailbox %s: could not record the error", self.account_id)

    def _session(self, workspace_id: int, config: dict[str, Any], secrets: dict[str, str], folder: str) -> None:
        client = self.client = connect(config, secrets.get("imap_password", ""))
        selected = client.select_folder(folder)
        self.sync(client, workspace_id, config, folder, selected)
        self._note(folder, None)
        idle = client.has_capability("IDLE")
        renewed = time.monotonic()
        while not self.stop.is_set():
            if idle:
                client.idle()
                began = time.monotonic()
                activity = False
                while not self.stop.is_set() and time.monotonic() - began < IDLE_RESTART_SECONDS:
                    responses = client.idle_check(timeout=IDLE_CHUNK_SECONDS)
                    if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        activity = True
                        break
                    if time.monotonic() - renewed > LEASE_SECONDS / 3:
                        if not self._acquire(workspace_id, folder):
                            client.idle_done()
                            return
                        renewed = time.monotonic()
                client.idle_done()
                if not activity and self.stop.is_set():
                    return
            else:
                if self.stop.wait(POLL_SECONDS):
                    return
                client.noop()
                if not self._acquire(workspace_id, folder):
                    return
            selected = client.select_folder(folder)
            self.sync(client, workspace_id, config, folder, selected)
            self._note(folder, None)


class Supervisor:
    """Keeps one poller thread per enabled account with an IMAP server; restarts one whose settings changed."""

    def __init__(self) -> None:
        self._threads: dict[int, tuple[threading.Thread, threading.Event, str]] = {}
        self._checked = 0.0
        self._lock = threading.Lock()

    def reconcile(self, *, every: float = 10.0) -> None:
        with self._lock:
            if time.monotonic() - self._checked < every:
                return
            self._checked = time.monotonic()
            with session_scope(write=False) as session:
                rows = session.execute(select(ChannelAccount.id, ChannelAccount.config, ChannelAccount.secret)
                                       .where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))).all()
            wanted = {account_id: fingerprint(config or {}, secret) for account_id, config, secret in rows
                      if (config or {}).get("imap_host")}
            for account_id, (thread, stop, print_) in list(self._threads.items()):
                if wanted.get(account_id) != print_ or not thread.is_alive():
                    stop.set()
                    del self._threads[account_id]
            for account_id, print_ in wanted.items():
                if account_id not in self._threads:
                    stop = threading.Event()
                    poller = MailboxPoller(account_id, stop)
                    thread = threading.Thread(target=poller.run, name=f"otklik-imap-{account_id}", daemon=True)
                    thread.start()
                    self._threads[account_id] = (thread, stop, print_)

    def stop_all(self) -> None:
        with self._lock:
            for _thread, stop, _ in self._threads.values():
                stop.set()
            self._threads.clear()


supervisor = Supervisor()


def poll_mailboxes() -> None:
    """The plugin's poller: called every few seconds by the channels' background runner."""
    supervisor.reconcile()
