"""Real mail servers on loopback for the email tests: Dovecot (IMAP) and aiosmtpd (SMTP).

Dovecot runs from a throwaway config and mailbox per test. Where it is not installed
the IMAP tests skip with how to install it, unless GATEWAY_REQUIRE_IMAP=1 (set in CI)
makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
INSTALL_HINT = "install Dovecot (Debian: apt-get install dovecot-imapd) to run the IMAP tests"

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%n
first_valid_uid = 1
mail_privileged_group =
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%n
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Dovecot:
    root: Path
    port: int
    user: str = "support@example.com"
    password: str = "mailbox-secret"
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_file = self.root / "dovecot.log"
                log = log_file.read_text() if log_file.exists() else ""
                stderr = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"Dovecot did not start: {stderr}\n{log}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server, as a crash or a maintenance window does (the mail stays)."""
        if self.process is not None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(5)
            self.process = None

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a mail into the mailbox, as the MTA would (over IMAP APPEND)."""
        import imaplib

        with imaplib.IMAP4("127.0.0.1", self.port) as imap:
            imap.login(self.user, self.password)
            imap.append(folder, "", imaplib.Time2Internaldate(time.time()), raw)

    def flags(self, folder: str = "INBOX") -> list[tuple[str, str]]:
        """(Message-ID, flags) of each mail in ``folder``."""
        import imaplib

        found = []
        with imaplib.IMAP4("127.0.0.1", self.port) as imap:
            imap.login(self.user, self.password)
            _, count = imap.select(folder)
            if int(count[0] or 0) == 0:
                return []
            _, data = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            for item in data:
                if isinstance(item, tuple):
                    head = item[0].decode()
                    msgid = item[1].decode().split(":", 1)[-1].strip()
                    found.append(
                        (msgid, head[head.find("FLAGS") : head.find(")", head.find("FLAGS")) + 1])
                    )
        return found

    def messages(self, folder: str = "INBOX") -> list[bytes]:
        """The raw mails in ``folder`` (none when it does not exist)."""
        import imaplib

        with imaplib.IMAP4("127.0.0.1", self.port) as imap:
            imap.login(self.user, self.password)
            status, count = imap.select(folder, readonly=True)
            if status != "OK" or int(count[0] or 0) == 0:
                return []
            _, data = imap.fetch("1:*", "(BODY.PEEK[])")
        return [item[1] for item in data if isinstance(item, tuple)]


def dovecot_available() -> bool:
    return Path(DOVECOT).exists()


@contextlib.contextmanager
def run_dovecot() -> Iterator[Dovecot]:
    if not dovecot_available():
        if os.environ.get("GATEWAY_REQUIRE_IMAP") == "1":
            pytest.fail(f"Dovecot is required here (GATEWAY_REQUIRE_IMAP=1): {INSTALL_HINT}")
        pytest.skip(INSTALL_HINT)
    owner = pwd.getpwnam("dovecot") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    root = Path(tempfile.mkdtemp(prefix="gw-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail", "home"):
        (root / sub).mkdir()
    for sub in ("mail", "home"):
        os.chown(root / sub, owner.pw_uid, owner.pw_gid)
    server = Dovecot(root, free_port())
    (root / "users").write_text(f"{server.user}:{{PLAIN}}{server.password}::::::\n")
    (root / "dovecot.conf").write_text(
        CONFIG.format(root=root, port=server.port, uid=owner.pw_uid, gid=owner.pw_gid)
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class SmtpSink:
    """aiosmtpd receiving what the gateway sends; ``reject`` makes it answer with a code."""

    port: int
    received: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    reject: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 try later"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        if self.reject:
            return self.reject.pop(0)
        raw: bytes = envelope.original_content or envelope.content  # type: ignore[attr-defined]
        self.received.append(message_from_bytes(raw, policy=policy.default))  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))  # type: ignore[attr-defined]
        return "250 OK"


@contextlib.asynccontextmanager
async def run_smtp() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink(free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        await asyncio.to_thread(controller.stop)
