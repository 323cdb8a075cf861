"""Email channel figures: inbound SMTP endpoint throughput and time to acknowledge, outbound delivery throughput.

inbound   `otklik smtpd` runs as a subprocess on a fresh database; --connections smtplib clients (threads)
          each keep one SMTP connection open and send --messages / --connections mails through it. The time to
          acknowledge is one `sendmail()` on the open connection (MAIL, RCPT, DATA ... until the 250, which
          our endpoint answers only after the commit). Mails are a realistic mix (KOI8-R, windows-1251 Outlook
          reply, HTML-only, a 3-message thread shape) with unique Message-IDs, from --customers senders.
outbound  --replies agent replies are written to the outbox (delivery paused), then the outbox worker path
          (`outbox.deliver`: claim, build MIME, Message-ID index, SMTP with a pooled connection, finish) runs
          over them with --workers threads against an aiosmtpd Sink server in a subprocess.

    .venv/bin/python bench/email_smtp.py                       # SQLite
    .venv/bin/python bench/email_smtp.py --database-url postgresql://postgres@127.0.0.1:5432/otklik_bench_email
"""

from __future__ import annotations

import argparse
import json
import os
import random
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port, log, summarize

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "channels" / "fixtures" / "email"
MIX = ["koi8r_plain.eml", "cp1251_outlook_reply.eml", "html_only.eml", "thread_1.eml", "gmail_reply.eml",
       "yandex_reply.eml"]


def wait_port(port: int, timeout: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def setup(database_url: str) -> tuple[int, str]:
    from otklik.accounts import service as accounts
    from otklik.channels.admin import AccountCreate, create_account
    from otklik.channels.base import add_plugin
    from otklik.channels.email.plugin import PLUGIN
    from otklik.migrations import upgrade
    from otklik.platform.db import session_scope

    upgrade(database_url)
    add_plugin(PLUGIN)
    with session_scope() as session:
        workspace, admin = accounts.bootstrap_workspace(session, slug=f"mail-bench-{os.getpid()}", name="Магазин",
                                                        admin_email="bench@example.com",
                                                        admin_password="bench-password-123")
        create_account(session, accounts.actor_for(admin), AccountCreate(
            kind="email", name="bench", config={"addresses": ["support@shop.example"], "smtp_host": "127.0.0.1",
                                                "smtp_port": 1, "smtp_security": "none", "max_per_minute": 10000},
            secrets={"smtp_password": "x"}))
        return workspace.id, "support@shop.example"


def mails(n: int, customers: int) -> list[bytes]:
    templates = [(FIXTURES / name).read_bytes().replace(b"__OUR_MESSAGE_ID__", b"old@shop.example") for name in MIX]
    out = []
    for i in range(n):
        raw = random.choice(templates)
        # a unique Message-ID and one of --customers senders per mail
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = [line for line in head.split(b"\r\n") if not line.lower().startswith((b"message-id:", b"from:"))]
        lines.insert(0, f"Message-ID: <bench-{i}-{random.getrandbits(40):x}@client.example>".encode())
        lines.insert(0, f"From: Customer {i % customers} <customer{i % customers}@client.example>".encode())
        out.append(b"\r\n".join(lines) + b"\r\n\r\n" + body)
    return out


def inbound(args: argparse.Namespace, env: dict[str, str]) -> dict:
    port = free_port()
    server = subprocess.Popen([str(Path(sys.executable).parent / "otklik"), "smtpd", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        batch = mails(args.messages, args.customers)
        with smtplib.SMTP("127.0.0.1", port) as warm:  # load the address book once
            warm.sendmail("w@client.example", ["support@shop.example"], batch.pop())
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(chunk: list[bytes]) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
                for raw in chunk:
                    began = time.perf_counter()
                    try:
                        conn.sendmail("customer@client.example", ["support@shop.example"], raw)
                    except smtplib.SMTPException as exc:
                        with lock:
                            errors.append(str(exc)[:200])
                        continue
                    with lock:
                        latencies.append(time.perf_counter() - began)

        chunks = [batch[i::args.connections] for i in range(args.connections)]
        threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        return {"phase": "inbound_smtp", "connections": args.connections,
                **summarize(latencies, wall, errors=len(errors), first_error=errors[0] if errors else None)}
    finally:
        server.terminate()
        server.wait(10)


def outbound(args: argparse.Namespace, workspace_id: int) -> dict:
    from sqlalchemy import select, update

    from otklik.accounts.service import Actor
    from otklik.channels.models import ChannelAccount
    from otklik.conversations import outbox
    from otklik.conversations import service as conversations
    from otklik.conversations.models import Conversation, OutboxItem
    from otklik.platform.db import session_scope

    port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        with session_scope() as session:
            account = session.scalar(select(ChannelAccount).where(ChannelAccount.workspace_id == workspace_id))
            account.config = {**account.config, "smtp_port": port}
            conversation_ids = list(session.scalars(select(Conversation.id).where(
                Conversation.workspace_id == workspace_id)))
        paused = outbox.enqueue_after_commit
        outbox.enqueue_after_commit = lambda session, outbox_id: None  # type: ignore[assignment]
        try:
            for i in range(args.replies):
                with session_scope() as session:
                    conversations.reply(session, Actor.system(workspace_id), random.choice(conversation_ids),
                                        text=f"Ответ номер {i}: заказ передан в доставку, трек придёт письмом.")
        finally:
            outbox.enqueue_after_commit = paused  # type: ignore[assignment]
        with session_scope() as session:
            session.execute(update(OutboxItem).values(next_attempt_at=OutboxItem.created_at))
            ids = list(session.scalars(select(OutboxItem.id).where(OutboxItem.workspace_id == workspace_id,
                                                                   OutboxItem.status == "pending")))
        latencies: list[float] = []
        results: dict[str, int] = {}
        lock = threading.Lock()

        def worker(chunk: list[int]) -> None:
            for outbox_id in chunk:
                began = time.perf_counter()
                result = outbox.deliver(outbox_id)
                with lock:
                    latencies.append(time.perf_counter() - began)
                    results[result] = results.get(result, 0) + 1

        threads = [threading.Thread(target=worker, args=(ids[i::args.workers],)) for i in range(args.workers)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        return {"phase": "outbound_smtp", "workers": args.workers, "results": results,
                **summarize(latencies, wall, errors=sum(v for k, v in results.items() if k != "sent"))}
    finally:
        sink.terminate()
        sink.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--replies", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="otklik-bench-email-"))
    database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
    if database_url.startswith("postgresql"):
        import psycopg

        name = database_url.rsplit("/", 1)[1]
        with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "OTKLIK_DATABASE_URL": database_url, "OTKLIK_DATA_DIR": str(tmp / "data"),
           "OTKLIK_SMTPD_PER_CLIENT_PER_MINUTE": "1000000",  # one bench client IP sends everything
           "OTKLIK_QUEUE": "memory", "OTKLIK_LOG_LEVEL": "warning"}
    env.pop("OTKLIK_REDIS_URL", None)
    os.environ.update(env)
    workspace_id, _ = setup(database_url)
    log(f"database {database_url.split('://')[0]}; inbound: {args.messages} mails over {args.connections} connections")
    print(json.dumps({"db": database_url.split("://")[0], **inbound(args, env)}), flush=True)
    log(f"outbound: {args.replies} replies, {args.workers} worker threads")
    print(json.dumps({"db": database_url.split("://")[0], **outbound(args, workspace_id)}), flush=True)


if __name__ == "__main__":
    main()
