"""The `otklik` command: demo, serve, worker, migrate, backup, restore, create-user, kb."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


def _serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    from otklik.platform.config import get_settings

    # X-Forwarded-For/-Proto only from the proxies the operator names: otherwise any client on the machine
    # (uvicorn's default trusts 127.0.0.1) could choose its address per request and slip the sign-in throttle
    trusted = get_settings().trusted_proxies.strip()
    from otklik.platform import logs

    # logging set up in every web process by uvicorn (plain or OTKLIK_LOG_FORMAT=json); uvicorn's access log
    # is off: it prints raw paths and query strings (webhook secrets), the app's own one prints route templates
    uvicorn.run("otklik.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=os.environ.get("OTKLIK_LOG_LEVEL", "info"), proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or None, ws="websockets-sansio", log_config=logs.dict_config(),
                access_log=False)


def cmd_migrate(args: argparse.Namespace) -> int:
    from otklik.migrations import upgrade

    upgrade(revision=args.revision)
    print(f"database migrated to {args.revision}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from otklik.platform.config import get_settings

    settings = get_settings()
    if args.migrate:
        cmd_migrate(argparse.Namespace(revision="head"))
    port = args.port or settings.port
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # several processes answer /metrics in turn: each writes its samples where any of them reads them all
        import shutil

        folder = settings.data_dir / "metrics" / str(port)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    print(f"Otklik on http://{args.host or settings.host}:{port}  (API docs: /api/docs)", flush=True)
    _serve(args.host or settings.host, port, args.workers)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from otklik.app import load_channels
    from otklik.assistant import jobs as assistant_jobs
    from otklik.conversations import jobs
    from otklik.platform import logs
    from otklik.platform.config import get_settings
    from otklik.platform.jobs import Periodic, run_consumer

    logs.configure()  # OTKLIK_LOG_FORMAT=json: one JSON object a line
    load_channels()
    settings = get_settings()
    from otklik.platform import metrics

    metrics.install()  # with PROMETHEUS_MULTIPROC_DIR shared with the web processes, their /metrics counts ours
    Periodic(jobs.sweep_outbox, settings.outbox_sweep_seconds).start()
    Periodic(assistant_jobs.sweep_pending, 60.0).start()  # customer messages a crash left undecided
    Periodic(jobs.sweep_sla, settings.sla_sweep_seconds).start()  # SLA warnings and breaches, each fired once
    from otklik.service_levels import jobs as rule_jobs

    rule_jobs.install()
    Periodic(rule_jobs.sweep_time_rules, 60.0).start()  # time-based automation rules («pending for 3 days»)
    from otklik.notifications import jobs as notification_jobs

    notification_jobs.install()  # SLA warnings fired here reach agents' Telegram too
    Periodic(notification_jobs.sweep, 30.0).start()  # held notification digests, sends a crash interrupted
    from otklik.reports import jobs as report_jobs

    Periodic(report_jobs.sweep_rollup, 60.0).start()  # the reports' daily rollup: lost refreshes, missing days
    from otklik.orders import loyalty_jobs

    Periodic(loyalty_jobs.sweep, 60.0).start()  # referral-reward webhooks due, lost leases; daily period tiers
    from otklik.privacy.service import sweep_retention

    Periodic(sweep_retention, 3600.0).start()  # closed conversations past the workspace's retention period
    from otklik.bookings import jobs as booking_jobs

    Periodic(booking_jobs.sweep, 60.0).start()  # visits: missed at the day's end, reminders, «Всё ли удобно?»
    from otklik.channels.registry import start_background

    start_background()  # channel pollers (Telegram long polling) and the sweep of unfinished inbound events
    print(f"otklik worker: queue={settings.queue_backend}, {args.workers} threads", flush=True)
    run_consumer(workers=args.workers)
    return 0


def cmd_smtpd(args: argparse.Namespace) -> int:
    import signal
    import threading

    import otklik.reports.rollup  # noqa: F401 - inbound mail changes facts: the reports' rollup marks them
    from otklik.channels.email.smtp_in import SmtpdSettings, make_controller
    from otklik.channels.registry import load_channels
    from otklik.platform import logs

    logs.configure()  # OTKLIK_LOG_FORMAT=json: one JSON object a line
    load_channels()
    settings = SmtpdSettings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port, "max_bytes": args.max_bytes}.items()
                 if v is not None}
    controller = make_controller(settings, **overrides)
    controller.start()
    print(f"otklik smtpd: inbound mail on {controller.hostname}:{controller.port}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    from otklik.accounts import service
    from otklik.accounts.models import Role
    from otklik.platform.db import session_scope

    password = args.password or os.environ.get("OTKLIK_NEW_PASSWORD") or getpass.getpass("Password: ")
    with session_scope() as session:
        workspace = service.get_workspace_by_slug(session, args.workspace)
        if workspace is None:
            workspace = service.create_workspace(session, slug=args.workspace, name=args.workspace_name
                                                 or args.workspace)
            print(f"created workspace {workspace.slug}")
        actor = service.Actor.system(workspace.id)
        user = service.create_user(session, actor, email=args.email, name=args.name or args.email,
                                   role=Role(args.role), password=password)
        print(f"created {user.role} {user.email} in workspace {workspace.slug}")
        if args.token:
            raw, _ = service.create_api_token(session, service.actor_for(user), name="cli")
            print(f"API token (shown once): {raw}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from otklik.demo import seed_demo, team_sign_ins
    from otklik.migrations import upgrade
    from otklik.platform.config import get_settings

    settings = get_settings()
    upgrade()
    login = seed_demo(reset=args.reset)
    port = args.port or settings.port
    base = f"http://{settings.host}:{port}"
    print("\n" + "=" * 64)
    print(f" Otklik demo: {base}   API docs: {base}/api/docs")
    print(f" Workspace: {login['workspace']}   Sign in: {login['email']} / {login['password']}")
    print(" The rest of the team, same password:")
    for email, name, role in team_sign_ins():
        print(f"   {email}  ({name}, {role})")
    print(f" API token: {login['token']}")
    print(f" Widget key: {login['widget_key']}")
    print(f" Demo shop page with the chat widget: {base}/widget/demo?key={login['widget_key']}")
    print(f" Help center: {base}/help/{login['workspace']}/")
    print(f" Second workspace, a clinic whose KB is plain help pages (no question variants): "
          f"{login['second_workspace']}")
    print(f"   Sign in: {login['second_email']} / {login['password']}")
    print(f"   Chat widget: {base}/widget/demo?key={login['second_widget_key']}   Help center: "
          f"{base}/help/{login['second_workspace']}/")
    print("=" * 64 + "\n", flush=True)
    if args.no_serve:
        return 0
    _serve(settings.host, port)
    return 0


def cmd_reports_rollup(args: argparse.Namespace) -> int:
    from otklik.reports.rollup import rebuild_history

    for line in rebuild_history(args.workspace, args.start, args.end):
        print(line, flush=True)
    return 0


def cmd_kb(args: argparse.Namespace) -> int:
    from pathlib import Path

    from otklik.knowledge import transfer

    if args.kb_command == "import":
        path = Path(args.file)
        result = transfer.import_for_workspace(args.workspace, path.name, path.read_bytes())
        print(f"knowledge base of {args.workspace}: {result.created} created, {result.updated} updated, "
              f"{result.unchanged} unchanged")
        return 0
    data = transfer.export_for_workspace(args.workspace, args.format)
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
    else:
        Path(args.output).write_bytes(data)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from otklik.platform.backup import BackupError, create_backup
    from otklik.platform.config import get_settings

    settings = get_settings()
    try:
        manifest = create_backup(Path(args.path), database_url=settings.database_url,
                                 attachments_dir=settings.attachments_dir,
                                 secret_key=settings.secret_key.get_secret_value(), logical=args.logical)
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"backup written to {args.path}: {manifest['database']} database at revision {manifest['revision']}, "
          f"{sum(manifest['tables'].values())} rows in {len(manifest['tables'])} tables, {manifest['files']} files")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from otklik.migrations import upgrade
    from otklik.platform.backup import BackupError, restore_backup
    from otklik.platform.config import get_settings

    settings = get_settings()
    try:
        manifest = restore_backup(Path(args.path), database_url=settings.database_url,
                                  attachments_dir=settings.attachments_dir,
                                  secret_key=settings.secret_key.get_secret_value(),
                                  upgrade=lambda url, revision: upgrade(url, revision=revision))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"restored the backup of {manifest['created_at']} ({sum(manifest['tables'].values())} rows, "
          f"{manifest['restored_files']} files); the database is migrated to this release's schema")
    return 0


def cmd_orders_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from otklik.orders.csv_import import import_for_workspace

    result = import_for_workspace(args.workspace, Path(args.file).read_bytes())
    print(f"orders of {args.workspace}: {result['created']} created, {result['updated']} updated, "
          f"{result['unchanged']} unchanged, {result['error']} with errors")
    for item in result["items"]:
        if item.get("error"):
            print(f"  row {item['index'] + 2}: {item['error']['message']}", file=sys.stderr)
    return 0 if not result["error"] else 1


def cmd_eval(args: argparse.Namespace) -> int:
    from otklik.assistant.evaluation import run

    return run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="otklik", description="Otklik: omnichannel customer support.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="migrate, load the demo shop workspace and serve it")
    p.add_argument("--port", type=int, default=None, help="port (default OTKLIK_PORT or 8000)")
    p.add_argument("--reset", action="store_true", help="delete and re-create the demo workspace")
    p.add_argument("--no-serve", action="store_true", help="only load the demo data")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", help="run the web server (API, WebSocket; the embedded worker unless disabled)")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument("--migrate", action="store_true", help="apply migrations first")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="run a background worker (outbound delivery) on the configured queue")
    p.add_argument("--workers", type=int, default=4, help="worker threads")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("smtpd", help="run the inbound SMTP endpoint for the email channel (forwarding addresses)")
    p.add_argument("--host", default=None, help="listen address (default OTKLIK_SMTPD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default OTKLIK_SMTPD_PORT or 2525)")
    p.add_argument("--max-bytes", type=int, default=None, help="largest mail accepted (default 25 MiB)")
    p.set_defaults(func=cmd_smtpd)

    p = sub.add_parser("eval", help="measure the assistant on JSONL data sets (intents, kb, sentiment, abuse)")
    from otklik.assistant.evaluation import add_arguments as add_eval_arguments

    add_eval_arguments(p.add_subparsers(dest="eval_command", required=True))
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("backup", help="back up the database, the attachment files and the key's fingerprint "
                                      "(safe while the server runs)")
    p.add_argument("path", help="a new folder, or a .tar / .tar.gz file")
    p.add_argument("--logical", action="store_true",
                   help="table-by-table export instead of the SQLite file / pg_dump (restores into either database)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="restore a backup into an empty database (OTKLIK_DATABASE_URL)")
    p.add_argument("path", help="the folder or file `otklik backup` wrote")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("create-user", help="create a user (and the workspace if it does not exist)")
    p.add_argument("--workspace", required=True, help="workspace slug")
    p.add_argument("--workspace-name", default=None)
    p.add_argument("--email", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--role", choices=["admin", "supervisor", "agent"], default="agent")
    p.add_argument("--password", default=None, help="(or OTKLIK_NEW_PASSWORD, or asked interactively)")
    p.add_argument("--token", action="store_true", help="also create an API token for the user")
    p.set_defaults(func=cmd_create_user)

    p = sub.add_parser("kb", help="knowledge base: import or export articles (JSONL, Markdown)")
    kb = p.add_subparsers(dest="kb_command", required=True)
    k = kb.add_parser("import", help="import a .jsonl, .md or .zip of Markdown files (by id: update or create)")
    k.add_argument("file")
    k.add_argument("--workspace", required=True, help="workspace slug")
    k.set_defaults(func=cmd_kb)
    k = kb.add_parser("export", help="export every article as JSONL or a zip of Markdown files")
    k.add_argument("--workspace", required=True, help="workspace slug")
    k.add_argument("--format", choices=["jsonl", "markdown"], default="jsonl")
    k.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    k.set_defaults(func=cmd_kb)
    p = sub.add_parser("reports-rollup", help="(re)build the reports' daily rollup from the conversations (history, "
                                              "or after a time-zone change)")
    p.add_argument("--workspace", default=None, help="workspace slug (default: every workspace)")
    p.add_argument("--from", dest="start", default=None, help="first day, YYYY-MM-DD (default: the first one)")
    p.add_argument("--to", dest="end", default=None, help="last day, YYYY-MM-DD (default: today)")
    p.set_defaults(func=cmd_reports_rollup)
    p = sub.add_parser("orders-import", help="import orders from a CSV file (columns in README «Orders»)")
    p.add_argument("file", help="a UTF-8 CSV file with a header row")
    p.add_argument("--workspace", required=True, help="workspace slug")
    p.set_defaults(func=cmd_orders_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from otklik.platform.errors import DomainError

    try:
        return int(args.func(args) or 0)
    except DomainError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
