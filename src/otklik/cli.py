"""The `otklik` command: demo, serve, worker, migrate, create-user."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys


def _serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    uvicorn.run("otklik.app:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=os.environ.get("OTKLIK_LOG_LEVEL", "info"), proxy_headers=True, ws="websockets-sansio")


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
    print(f"Otklik on http://{args.host or settings.host}:{port}  (API docs: /api/docs)", flush=True)
    _serve(args.host or settings.host, port, args.workers)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from otklik.app import load_channels
    from otklik.conversations import jobs
    from otklik.platform.config import get_settings
    from otklik.platform.jobs import Periodic, run_consumer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_channels()
    settings = get_settings()
    Periodic(jobs.sweep_outbox, settings.outbox_sweep_seconds).start()
    print(f"otklik worker: queue={settings.queue_backend}, {args.workers} threads", flush=True)
    run_consumer(workers=args.workers)
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
    from otklik.demo import seed_demo
    from otklik.migrations import upgrade
    from otklik.platform.config import get_settings

    settings = get_settings()
    upgrade()
    login = seed_demo(reset=args.reset)
    port = args.port or settings.port
    print("\n" + "=" * 64)
    print(f" Otklik demo: http://{settings.host}:{port}   API docs: http://{settings.host}:{port}/api/docs")
    print(f" Workspace: {login['workspace']}   Sign in: {login['email']} / {login['password']}")
    print(f" API token: {login['token']}")
    print("=" * 64 + "\n", flush=True)
    if args.no_serve:
        return 0
    _serve(settings.host, port)
    return 0


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

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("create-user", help="create a user (and the workspace if it does not exist)")
    p.add_argument("--workspace", required=True, help="workspace slug")
    p.add_argument("--workspace-name", default=None)
    p.add_argument("--email", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--role", choices=["admin", "supervisor", "agent"], default="agent")
    p.add_argument("--password", default=None, help="(or OTKLIK_NEW_PASSWORD, or asked interactively)")
    p.add_argument("--token", action="store_true", help="also create an API token for the user")
    p.set_defaults(func=cmd_create_user)
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
