"""What people write never reaches the log at info level: not from the gateway's own
code, not from the libraries it uses (aiosmtpd logs each mail's sender, slack-bolt
a refused request's body). `gateway run` as a user runs it, its log read after.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from sandbox.telegram import TelegramSandbox
from tests.mail_servers import free_port, run_smtp
from tests.telegram_support import eventually
from tests.test_crash import Process, people_in, texts_in, write_config

MAIL = """
[email]
address = "support@example.com"
inbound = "smtp"
listen_host = "127.0.0.1"
listen_port = {listen}
spool_dir = "{spool}"
smtp_host = "127.0.0.1"
smtp_port = {sink}
smtp_security = "none"
"""


async def test_no_customer_text_or_address_in_the_log_at_info(
    sqlite_url: str, tmp_path: Path
) -> None:
    sandbox = TelegramSandbox()
    await sandbox.start()
    people = people_in(sandbox)
    forum = people["forum"]["id"]
    listen = free_port()
    async with run_smtp() as sink:
        config = write_config(tmp_path, sandbox, people, sqlite_url)
        config.write_text(
            config.read_text()
            + MAIL.format(listen=listen, spool=tmp_path / "spool", sink=sink.port)
        )
        log = tmp_path / "gw.log"
        gateway = Process(config, log)
        try:
            await gateway.start(sandbox)
            olga = sandbox.add_user("Olga Private")
            sandbox.send(olga, "my parcel XK4242 is late")
            mail = EmailMessage()
            mail["From"] = "Pat Hidden <pat.hidden@example.org>"
            mail["To"] = "support@example.com"
            mail["Subject"] = "invoice INV5151Q"
            mail.set_content("please resend invoice INV5151Q")
            await aiosmtplib.send(mail, hostname="127.0.0.1", port=listen)
            await eventually(
                lambda: (
                    {"my parcel XK4242 is late"} <= set(texts_in(sandbox, forum))
                    and any("INV5151Q" in t for t in texts_in(sandbox, forum))
                )
            )
            await eventually(lambda: any("pat.hidden" in str(m["To"]) for m in sink.received))
        finally:
            await gateway.kill()
            await sandbox.stop()
    written = log.read_text()
    assert "telegram" in written  # the log was written
    for private in ("XK4242", "INV5151Q", "pat.hidden", "Pat Hidden", "Olga Private"):
        assert private not in written, private
