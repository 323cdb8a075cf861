"""Real mail peers for the email channel's tests: an aiosmtpd server that receives our outbound mail (with
AUTH and optional STARTTLS, able to refuse on demand), a private Dovecot IMAP server, and helpers."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

FIXTURES = Path(__file__).parent / "fixtures" / "email"


def fixture(name: str, **replace: str) -> bytes:
    data = (FIXTURES / name).read_bytes()
    for key, value in replace.items():
        data = data.replace(f"__{key}__".encode(), value.encode())
    return data


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_email_account(workspace_id: int, actor, *, addresses: list[str], password: str = "app-password",
                       **config) -> int:
    """An email channel account created the way the settings page creates it (config validated, secrets encrypted)."""
    from otklik.channels.admin import AccountCreate, create_account
    from otklik.channels.base import add_plugin
    from otklik.channels.email.inbound import address_book
    from otklik.channels.email.plugin import PLUGIN
    from otklik.platform.db import session_scope

    add_plugin(PLUGIN)
    with session_scope() as session:
        account = create_account(session, actor, AccountCreate(
            kind="email", name=f"mail-{workspace_id}", config={"addresses": addresses, **config},
            secrets={"smtp_password": password, "imap_password": password}))
        account_id = account.id
    address_book.invalidate()
    return account_id


class MailSink:
    """An SMTP server (aiosmtpd) standing in for the provider's submission server and the customer's MX."""

    def __init__(self, *, username: str | None = "support@shop.example", password: str = "app-password",
                 tls: bool = False, cert_dir: Path | None = None):
        self.messages: list[dict] = []
        self.refuse_rcpt: list[str] = []  # replies for the next RCPT commands, e.g. "451 4.3.0 try later"
        self.refuse_data: list[str] = []
        self.logins: list[str] = []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                with sink.lock:
                    if sink.refuse_rcpt:
                        return sink.refuse_rcpt.pop(0)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    if sink.refuse_data:
                        return sink.refuse_data.pop(0)
                    raw = envelope.original_content or envelope.content
                    sink.messages.append({
                        "mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos), "raw": raw,
                        "message": email.message_from_bytes(raw, policy=email.policy.default),
                        "tls": session.ssl is not None, "auth": session.authenticated})
                return "250 2.0.0 queued"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == username
                  and auth_data.password.decode() == password)
            if ok:
                sink.logins.append(auth_data.login.decode())
            return AuthResult(success=ok)

        kwargs: dict = {}
        if username:
            kwargs.update(authenticator=authenticator, auth_required=True, auth_require_tls=tls)
        if tls:
            import ssl

            assert cert_dir is not None
            cert, key = self_signed(cert_dir)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
            kwargs.update(tls_context=context, require_starttls=True)
            self.ca_file = cert
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        return list(self.messages)


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 (also the CA that verifies it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


class Dovecot:
    """A private Dovecot instance: temp config, a passwd-file user, maildir in a temp dir, 127.0.0.1:<free port>,
    plaintext auth allowed (loopback only)."""

    USER = "support@shop.example"
    PASSWORD = "imap-secret"

    def __init__(self, *, tls: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="otklik-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.ssl_port = free_port() if tls else 0
        ssl_conf = "ssl = no"
        if tls:
            self.ca_file, key = self_signed(self.dir)
            ssl_conf = f"ssl = yes\nssl_cert = <{self.ca_file}\nssl_key = <{key}"
        (self.dir / "run").mkdir()
        (self.dir / "state").mkdir()
        (self.dir / "mail").mkdir()
        (self.dir / "passwd").write_text(f"{self.USER}:{{PLAIN}}{self.PASSWORD}\n")
        mail_user = "dovecot" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
        login_user = "dovenull" if os.geteuid() == 0 else mail_user
        if os.geteuid() == 0:
            shutil.chown(self.dir / "mail", mail_user, mail_user)
        self.config = self.dir / "dovecot.conf"
        self.config.write_text(f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_conf}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.dir}/mail/%u
default_login_user = {login_user}
default_internal_user = {mail_user}
default_internal_group = {mail_user}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_user} home={self.dir}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
  }}
}}
service anvil {{
  chroot =
}}
""")
        self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("dovecot did not start")

    def client(self):
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=10)
        client.login(self.USER, self.PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            client.append(folder, raw)
        finally:
            client.logout()

    def doveadm(self, *args: str) -> str:
        return subprocess.run(["doveadm", "-c", str(self.config), *args], check=True, capture_output=True,
                              text=True).stdout

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
