"""Real-world-shaped mail, generated: what a support mailbox receives in a month.

Customers in many charsets (declared, encoded-word, undeclared 8-bit, RFC 6532
UTF-8 headers), HTML-only mail, broken MIME, mail with no Message-ID or no From, a
large attachment; and robots: delivery reports (RFC 3464) that name a mail of ours or
none, bounces in plain text, read receipts (RFC 8098), auto-replies, list mail,
no-reply and postmaster senders. Each comes with what the gateway must do with it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.header import Header
from email.message import EmailMessage

SUPPORT = "support@example.com"

#: a name, a subject and a body per language, with a charset that can write them
SAMPLES = [
    ("utf-8", "Ольга Иванова", "Где мой заказ?", "Заказ 15 не пришёл, помогите."),
    ("cp1251", "Иван Петров", "Возврат", "Верните деньги за заказ 7."),
    ("koi8-r", "Сергей Смирнов", "Счёт", "Пришлите счёт, пожалуйста."),
    ("koi8-u", "Тарас Шевчук", "Питання щодо ґудзика", "Де мій ґудзик? Їжак чекає."),
    ("iso-8859-1", "José Müller", "Bestellung über", "Grüße, wo ist meine Bestellung?"),
    ("iso-8859-2", "Łukasz Żółw", "Zamówienie", "Gdzie jest moje zamówienie?"),
    ("utf-8", "Zoë 李", "注文について", "荷物はいつ届きますか？"),
    ("shift_jis", "山田 太郎", "配送", "配送状況を教えてください。"),
    ("gb2312", "王 伟", "订单", "我的订单在哪里？"),
    ("utf-8", "Ana García", "Pedido", "¿Dónde está mi pedido? Gracias."),
]


@dataclass(frozen=True)
class Sample:
    raw: bytes
    #: "customer": read and shown, may be greeted; "robot": shown, never answered;
    #: "nobody": no sender to show it as, skipped (marked read all the same)
    kind: str
    #: the address a reply would go to (robots: must get none)
    sender: str
    #: a text operators must see (a part of it), where there is one to check
    shows: str | None = None


def _plain(
    sender: str,
    name: str,
    subject: str,
    body: str,
    charset: str,
    number: int,
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{Header(name, charset).encode()} <{sender}>"
    message["To"] = SUPPORT
    message["Subject"] = Header(subject, charset).encode()
    message["Message-ID"] = f"<c{number}@corpus.example>"
    for key, value in (headers or {}).items():
        message[key] = value
    message.set_content(body, charset=charset, cte="8bit" if charset != "utf-8" else None)
    return message.as_bytes()


def _raw_8bit(sender: str, name: str, subject: str, body: str, charset: str, n: int) -> bytes:
    """Headers in 8-bit with no charset said (what some clients and scripts send)."""
    head = (
        f'From: "{name}" <{sender}>\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n'
        f"Message-ID: <r{n}@corpus.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    return head.encode(charset) + body.encode(charset) + b"\r\n"


def _report(
    n: int, reporter: str, report_type: str, status: str, original: str | None, human: str
) -> bytes:
    original_part = (
        f"--R{n}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original}\r\nFrom: {SUPPORT}\r\nSubject: Re: order\r\n\r\n"
        if original
        else ""
    )
    return (
        f"From: {reporter}\r\nTo: {SUPPORT}\r\nSubject: Report {n}\r\n"
        f"Message-ID: <rep{n}@mx.corpus.example>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="R{n}"\r\n\r\n'
        f"--R{n}\r\nContent-Type: text/plain\r\n\r\n{human}\r\n"
        f"--R{n}\r\nContent-Type: message/{report_type}\r\n\r\n{status}\r\n"
        f"{original_part}--R{n}--\r\n"
    ).encode()


def corpus(seed: int = 33) -> list[Sample]:
    rng = random.Random(seed)
    out: list[Sample] = []
    n = 0

    def take(sample: Sample) -> None:
        nonlocal n
        out.append(sample)
        n += 1

    # customers, header words encoded as RFC 2047 says, bodies in their charset
    for round_ in range(3):
        for charset, name, subject, body in SAMPLES:
            sender = f"cust{n}@corpus.example"
            raw = _plain(sender, name, f"{subject} {round_}", body, charset, n)
            take(Sample(raw, "customer", sender, body))
    # undeclared 8-bit headers (and RFC 6532 UTF-8 ones)
    for charset, name, subject, body in SAMPLES[:5] * 3:
        sender = f"raw{n}@corpus.example"
        take(Sample(_raw_8bit(sender, name, subject, body, charset, n), "customer", sender, body))
    # HTML only
    for _ in range(6):
        sender = f"html{n}@corpus.example"
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, SUPPORT, "HTML"
        message["Message-ID"] = f"<h{n}@corpus.example>"
        message.set_content(
            f"<html><body><p>Order <b>{n}</b> is late</p><script>x()</script></body></html>",
            subtype="html",
        )
        take(Sample(message.as_bytes(), "customer", sender, f"Order {n} is late"))
    # broken MIME: an unterminated multipart, bad base64, a wrong charset, nonsense type
    broken = [
        'Content-Type: multipart/mixed; boundary="never"\r\n\r\n--never\r\n'
        "Content-Type: text/plain\r\n\r\nhalf a mail",
        "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%not base64",
        "Content-Type: text/plain; charset=no-such-charset\r\n\r\nplain words",
        "Content-Type: text/\r\n\r\nno subtype",
        'Content-Type: multipart/alternative; boundary=""\r\n\r\nempty boundary',
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        "\r\n\r\n=ZZ broken =E2=82 qp",
    ]
    for _ in range(2):
        for tail in broken:
            sender = f"broken{n}@corpus.example"
            head = f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: broken {n}\r\n"
            head += f"Message-ID: <b{n}@corpus.example>\r\nMIME-Version: 1.0\r\n"
            take(Sample((head + tail + "\r\n").encode(), "customer", sender))
    # no Message-ID; no From at all
    for _ in range(5):
        sender = f"noid{n}@corpus.example"
        raw = f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: no id\r\n\r\nquestion {n}\r\n"
        take(Sample(raw.encode(), "customer", sender, f"question {n}"))
    for _ in range(5):
        raw = f"To: {SUPPORT}\r\nSubject: from nobody\r\nMessage-ID: <nf{n}@x>\r\n\r\nhi\r\n"
        take(Sample(raw.encode(), "nobody", ""))
    # a large attachment
    for _ in range(2):
        sender = f"big{n}@corpus.example"
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, SUPPORT, "scan"
        message["Message-ID"] = f"<big{n}@corpus.example>"
        message.set_content("The scan is attached.")
        message.add_attachment(
            rng.randbytes(3 * 2**20), maintype="application", subtype="pdf", filename="scan.pdf"
        )
        take(Sample(message.as_bytes(), "customer", sender, "The scan is attached."))
    # robots: delivery reports naming a mail of ours we never sent, or none
    for number in range(10):
        daemon = f"MAILER-DAEMON@mx{number}.corpus.example"
        original = f"<unknown{number}@example.com>" if number % 2 else None
        status = "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; x@y\r\nStatus: 5.1.1"
        raw = _report(n, daemon, "delivery-status", status, original, "Could not deliver.")
        take(Sample(raw, "robot", daemon.lower()))
    # a bounce in plain text, from postmaster, with an empty Return-Path
    for number in range(4):
        postmaster = f"postmaster@relay{number}.corpus.example"
        raw = (
            f"Return-Path: <>\r\nFrom: {postmaster}\r\nTo: {SUPPORT}\r\n"
            f"Subject: Delivery failure\r\nMessage-ID: <pm{n}@relay>\r\n\r\n"
            "Your message could not be delivered.\r\n"
        )
        take(Sample(raw.encode(), "robot", postmaster))
    # read receipts
    for number in range(8):
        reader = f"reader{number}@corpus.example"
        status = (
            "Reporting-UA: mail.corpus.example\r\n"
            "Disposition: manual-action/MDN-sent-manually; displayed"
        )
        take(
            Sample(
                _report(n, reader, "disposition-notification", status, None, "Read."),
                "robot",
                reader,
            )
        )
    # auto-replies, each with its own sign
    signs: list[dict[str, str]] = [
        {"Auto-Submitted": "auto-replied"},
        {"X-Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"X-Auto-Response-Suppress": "All"},
        {"Precedence": "auto_reply"},
    ]
    for sign in signs * 2:
        sender = f"away{n}@corpus.example"
        raw = _plain(sender, "Away", "Out of office", "I am away until Monday.", "utf-8", n, sign)
        take(Sample(raw, "robot", sender, "I am away"))
    # list mail and newsletters
    for number in range(8):
        sender = f"news{number}@lists.corpus.example"
        sign = (
            {"List-Id": "<news.corpus.example>"}
            if number % 2
            else {"List-Unsubscribe": "<mailto:unsubscribe@lists.corpus.example>"}
        )
        raw = _plain(sender, "News", "Our news", "This week's news.", "utf-8", n, sign)
        take(Sample(raw, "robot", sender))
    # robots by name
    for local in ("noreply", "no-reply", "do-not-reply", "donotreply", "bounce+x7"):
        sender = f"{local}@shop.corpus.example"
        raw = _plain(sender, "Shop", "Your receipt", "Thank you for your order.", "utf-8", n)
        take(Sample(raw, "robot", sender))
    return out
