"""The IMAP poller against a real Dovecot: mail put in with IMAP APPEND, fetched by UID, marked \\Seen; IDLE
pickup; a restart never re-imports; a UIDVALIDITY change re-scans without duplicates."""

from __future__ import annotations

import shutil
import threading
import time

import pytest
from sqlalchemy import select

from otklik.channels.email import imap
from otklik.channels.email.models import EmailMailbox
from otklik.conversations.models import Message
from otklik.platform.db import session_scope
from tests.channels.email_peers import Dovecot, fixture, make_email_account
from tests.conftest import make_workspace

pytestmark = pytest.mark.skipif(shutil.which("dovecot") is None, reason="Dovecot is not installed (.ci/run installs it)")


@pytest.fixture
def dovecot():
    server = Dovecot()
    yield server
    server.stop()


@pytest.fixture
def account(dovecot):
    ws = make_workspace("imap")
    account_id = make_email_account(
        ws.id, ws.actor(), addresses=[f"support-{ws.id}@shop.example"], password=Dovecot.PASSWORD,
        imap_host="127.0.0.1", imap_port=dovecot.port, imap_security="none", imap_username=Dovecot.USER)
    return ws, account_id


def stored(ws_id: int) -> list[Message]:
    with session_scope(write=False) as session:
        return list(session.scalars(select(Message).where(Message.workspace_id == ws_id).order_by(Message.id)))


def seen_flags(dovecot: Dovecot) -> list[bool]:
    client = dovecot.client()
    try:
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
        return [b"\\Seen" in f for _, f in sorted(flags.items())]
    finally:
        client.logout()


def test_poll_imports_marks_seen_and_restart_does_not_reimport(dovecot, account):
    ws, account_id = account
    dovecot.append(fixture("koi8r_plain.eml"))
    dovecot.append(fixture("attachments.eml"))
    assert imap.MailboxPoller(account_id).sync_once() == 2  # a new mailbox imports its unread mail
    texts = [m.body_text for m in stored(ws.id)]
    assert len(texts) == 2 and texts[0].startswith("Здравствуйте!") and "Прикладываю счёт" in texts[1]
    assert stored(ws.id)[0].meta["email"]["source"] == "imap"
    assert seen_flags(dovecot) == [True, True]

    # a restart (a new poller, a new process) starts from the stored UID: nothing again, then only the new one
    assert imap.MailboxPoller(account_id).sync_once() == 0
    assert len(stored(ws.id)) == 2
    dovecot.append(fixture("thread_1.eml"))
    assert imap.MailboxPoller(account_id).sync_once() == 1
    assert len(stored(ws.id)) == 3
    with session_scope(write=False) as session:
        state = session.scalar(select(EmailMailbox).where(EmailMailbox.account_id == account_id))
        assert state.last_uid == 3 and state.imported == 3 and state.last_error is None


def test_read_mail_of_a_new_mailbox_is_not_imported(dovecot, account):
    ws, account_id = account
    dovecot.append(fixture("koi8r_plain.eml"))
    client = dovecot.client()
    client.select_folder("INBOX")
    client.add_flags(client.search(["ALL"]), [b"\\Seen"])  # read by a person before the channel existed
    client.logout()
    dovecot.append(fixture("thread_1.eml"))
    imap.MailboxPoller(account_id).sync_once()
    assert [m.body_text for m in stored(ws.id)] == ["Не могу войти в личный кабинет."]


def test_uidvalidity_change_rescans_without_duplicates(dovecot, account):
    ws, account_id = account
    dovecot.append(fixture("thread_1.eml"))
    imap.MailboxPoller(account_id).sync_once()
    assert len(stored(ws.id)) == 1
    # the server rebuilt the folder: every UID means something else now
    dovecot.doveadm("mailbox", "update", "-u", Dovecot.USER, "--uid-validity", "4242", "INBOX")
    dovecot.append(fixture("thread_2.eml"))
    imap.MailboxPoller(account_id).sync_once()
    texts = [m.body_text for m in stored(ws.id)]
    assert texts == ["Не могу войти в личный кабинет.", "Пароль сбрасывал, не помогло."]
    with session_scope(write=False) as session:
        state = session.scalar(select(EmailMailbox).where(EmailMailbox.account_id == account_id))
        assert state.uidvalidity == 4242


def test_idle_picks_up_new_mail(dovecot, account, monkeypatch):
    ws, account_id = account
    monkeypatch.setattr(imap, "IDLE_CHUNK_SECONDS", 0.5)
    stop = threading.Event()
    poller = imap.MailboxPoller(account_id, stop)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while poller.client is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # connected and in IDLE
        dovecot.append(fixture("yandex_reply.eml"))
        deadline = time.monotonic() + 10
        while not stored(ws.id) and time.monotonic() < deadline:
            time.sleep(0.1)
        [message] = stored(ws.id)
        assert message.body_text == "Когда будет возврат?"
        # a second poller (another process) cannot take the mailbox while the first holds its lease
        assert imap.MailboxPoller(account_id).sync_once() == 0
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(stored(ws.id)) == 1


def test_wrong_password_is_reported_not_raised(dovecot):
    ws = make_workspace("imapbad")
    account_id = make_email_account(
        ws.id, ws.actor(), addresses=[f"support-{ws.id}@shop.example"], password="wrong",
        imap_host="127.0.0.1", imap_port=dovecot.port, imap_security="none", imap_username=Dovecot.USER)
    stop = threading.Event()
    poller = imap.MailboxPoller(account_id, stop)
    thread = threading.Thread(target=poller.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    error = None
    while error is None and time.monotonic() < deadline:
        with session_scope(write=False) as session:
            error = session.scalar(select(EmailMailbox.last_error).where(EmailMailbox.account_id == account_id))
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=10)
    assert error == "IMAP login failed: check the user name and password"


def test_connection_test_and_status_for_the_admin(dovecot, account):
    from otklik.channels.admin import get_account, test_account
    from otklik.channels.base import VendorError

    ws, account_id = account
    dovecot.append(fixture("thread_1.eml"))
    assert test_account(ws.actor(), account_id).message.startswith("IMAP: вход выполнен, писем в папке: 1, с IDLE")
    imap.MailboxPoller(account_id).sync_once()
    with session_scope(write=False) as session:
        state = get_account(session, ws.actor(), account_id).state
    assert state["imap"]["imported"] == 1 and state["imap"]["error"] is None
    bad = make_workspace("imaptest")
    bad_id = make_email_account(bad.id, bad.actor(), addresses=[f"s-{bad.id}@shop.example"], password="nope",
                                imap_host="127.0.0.1", imap_port=dovecot.port, imap_security="none",
                                imap_username=Dovecot.USER)
    with pytest.raises(VendorError, match="не принял"):
        test_account(bad.actor(), bad_id)


def test_imap_over_tls_with_a_verified_certificate_and_move_after_storing(monkeypatch):
    server = Dovecot(tls=True)
    try:
        client = server.client()
        client.create_folder("Обработано")
        client.logout()
        ws = make_workspace("imaptls")
        account_id = make_email_account(
            ws.id, ws.actor(), addresses=[f"support-{ws.id}@shop.example"], password=Dovecot.PASSWORD,
            imap_host="127.0.0.1", imap_port=server.ssl_port, imap_security="ssl", imap_username=Dovecot.USER,
            imap_move_to="Обработано")
        monkeypatch.setenv("SSL_CERT_FILE", server.ca_file)  # trust the test CA the way an operator would
        server.append(fixture("cp1251_labelled_koi8.eml"))
        assert imap.MailboxPoller(account_id).sync_once() == 1
        assert stored(ws.id)[0].body_text.startswith("Добрый вечер.")
        client = server.client()
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
        assert client.select_folder("Обработано")[b"EXISTS"] == 1
        client.logout()
        # without the CA the certificate is refused, and nothing is imported
        monkeypatch.delenv("SSL_CERT_FILE")
        server.append(fixture("thread_1.eml"))
        import ssl

        with pytest.raises(ssl.SSLError):
            imap.MailboxPoller(account_id).sync_once()
        assert len(stored(ws.id)) == 1
    finally:
        server.stop()
