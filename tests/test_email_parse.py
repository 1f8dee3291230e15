"""Mail parsing: every charset, HTML-only mail, quotes, loops, bounces, broken MIME."""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage

from adapters.email.parse import html_to_text, parse, strip_quotes


def raw_mail(
    body: str,
    *,
    charset: str = "utf-8",
    subject: str = "Hello",
    sender: str = "Olga <olga@example.org>",
    extra: dict[str, str] | None = None,
) -> bytes:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "support@example.com"
    mail["Subject"] = subject
    mail["Message-ID"] = "<m1@example.org>"
    for key, value in (extra or {}).items():
        mail[key] = value
    mail.set_content(body, charset=charset)
    return mail.as_bytes()


def encoded(text: str, charset: str) -> str:
    return Header(text, charset).encode()


def test_cyrillic_charsets_in_bodies_subjects_and_names() -> None:
    for charset, text in (
        ("koi8-r", "Здравствуйте, заказ не пришёл"),
        ("koi8-u", "Вітаю, замовлення не прийшло, ґудзик і їжак"),
        ("cp1251", "Добрый день, верните деньги"),
    ):
        raw = (
            f"From: {encoded('Ольга Петренко', charset)} <olga@example.org>\r\n"
            f"To: support@example.com\r\nSubject: {encoded('Заказ пять', charset)}\r\n"
            f"Message-ID: <{charset}@example.org>\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset={charset}\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n"
        ).encode() + text.encode(charset)
        mail = parse(raw)
        assert mail.text == text, charset
        assert mail.subject == "Заказ пять"
        assert mail.sender_name == "Ольга Петренко"
        assert mail.sender_address == "olga@example.org"
        assert not mail.damaged


def test_a_mislabelled_charset_is_read_without_crashing() -> None:
    raw = (
        b"From: a@example.org\r\nSubject: x\r\nMessage-ID: <x@e>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Привет".encode("cp1251")
    )
    assert parse(raw).text == "Привет"
    raw = raw.replace(b"charset=utf-8", b"charset=x-no-such-charset")
    assert parse(raw).text == "Привет"


def test_html_only_mail_becomes_readable_text_with_links() -> None:
    html = (
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head><body>"
        "<p>Hello&nbsp;team,</p><div>see <a href='https://example.org/t/1'>the ticket</a></div>"
        "</body></html>"
    )
    mail = EmailMessage()
    mail["From"] = "a@example.org"
    mail["Subject"] = "x"
    mail.set_content(html, subtype="html")
    text = parse(mail.as_bytes()).text
    assert "alert" not in text and "color" not in text and "<" not in text
    assert "Hello team," in text
    assert "the ticket (https://example.org/t/1)" in text
    assert html_to_text("<b>unclosed <i>tags") == "unclosed tags"


def test_multipart_prefers_plain_and_lists_attachments_and_inline_images() -> None:
    mail = EmailMessage()
    mail["From"] = "a@example.org"
    mail["Subject"] = "photos"
    mail.set_content("the plain version")
    mail.add_alternative("<p>the <b>html</b> version</p>", subtype="html")
    mail.get_payload()[1].add_related(b"\x89PNG...", maintype="image", subtype="png", cid="<logo>")
    mail.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="bill.pdf")
    parsed = parse(mail.as_bytes())
    assert parsed.text == "the plain version"
    assert [(p.name, p.mime) for p in parsed.parts][-1] == ("bill.pdf", "application/pdf")
    assert any(p.mime == "image/png" for p in parsed.parts)


def test_quoted_history_and_signature_are_stripped_for_operators() -> None:
    body = (
        "Thanks, that worked!\n\n-- \nOlga\nACME Ltd\n\n"
        "On Mon, 2 Nov 2026 at 10:00, Support <support@example.com> wrote:\n> old text\n"
    )
    mail = parse(raw_mail(body))
    assert mail.text == "Thanks, that worked!"
    assert "old text" in mail.full_text
    assert strip_quotes("new\n> quoted\nmore new") == "new\nmore new"


def test_threading_headers_and_the_subject_token() -> None:
    mail = parse(
        raw_mail(
            "reply",
            subject="Re: Order late [#42]",
            extra={
                "In-Reply-To": "<ours-2@example.com>",
                "References": "<a@x> <ours-2@example.com>",
            },
        )
    )
    assert mail.token == 42
    assert mail.references == ("<a@x>", "<ours-2@example.com>")


def test_machines_are_recognised() -> None:
    assert not parse(raw_mail("hi")).automated
    for extra in (
        {"Auto-Submitted": "auto-replied"},
        {"Precedence": "bulk"},
        {"List-Id": "<news.example.org>"},
        {"Return-Path": "<>"},
    ):
        assert parse(raw_mail("I am away", extra=extra)).automated, extra
    assert parse(
        raw_mail("x", sender="support@example.com"), own_address="support@example.com"
    ).automated


def test_a_bounce_names_the_mail_that_failed() -> None:
    report = (
        b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@example.com\r\nSubject: Undelivered\r\n"
        b"Message-ID: <bounce-1@mx>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour mail could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822; gone@example.org\r\n"
        b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n"
        b"--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"Message-ID: <ours-7@example.com>\r\nSubject: Re: help\r\n\r\n--B--\r\n"
    )
    mail = parse(report)
    assert mail.bounce and mail.automated
    assert mail.bounced_id == "<ours-7@example.com>"
    assert "user unknown" in mail.bounce_reason


def test_broken_mime_is_read_as_far_as_it_goes() -> None:
    raw = (
        b"From: broken@example.org\r\nSubject: =?utf-8?B?!!!notbase64?=\r\n"
        b'Content-Type: multipart/mixed; boundary="never-closed"\r\n\r\n'
        b"--never-closed\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n%%%not base64%%%\r\n"
    )
    mail = parse(raw)
    assert mail.sender_address == "broken@example.org"
    assert mail.damaged


def test_the_writers_language_from_the_header_or_the_script() -> None:
    assert parse(raw_mail("Hello")).language is None  # the default language then
    assert parse(raw_mail("Где мой заказ?")).language == "ru"
    assert parse(raw_mail("Де моє замовлення? Їжак")).language == "uk"
    german = raw_mail("Hallo").replace(b"MIME-Version", b"Content-Language: de-DE\nMIME-Version")
    assert parse(german).language == "de"
