"""Composed messages: MIME parses back, CID resolves, DKIM verifies, the QR decodes to the URL."""

from __future__ import annotations

import email
import email.policy
import io
import re
from email.message import EmailMessage

import dkim as dkimpy
import numpy as np
import pytest
import zxingcpp
from PIL import Image

from campaign_support import SECRET, make_composer, make_key, make_recipient
from dealmail.coupons.qr import QUIET_ZONE_MODULES, qr_png
from dealmail.coupons.tokens import derive_token
from dealmail.delivery import dkim
from dealmail.delivery.mime import quoted_printable
from dealmail.engagement.unsubscribe_links import (
    sign_unsubscribe,
    unsubscribe_mailto,
    verify_unsubscribe,
)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def normalised(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def dns_for(key: dkim.DkimKey):  # type: ignore[no-untyped-def]
    record = dkim.public_key_record(key.private_key).encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == f"{key.selector}._domainkey.{key.domain}.".encode()
        return record

    return dnsfunc


def decode_qr(png: bytes) -> str:
    result = zxingcpp.read_barcode(Image.open(io.BytesIO(png)))
    assert result is not None
    return str(result.text)


def test_mime_parses_into_alternative_text_related_html_png_with_cid_resolving() -> None:
    message = make_composer().compose(make_recipient())
    parsed = parse(message.raw)
    assert parsed.get_content_type() == "multipart/alternative"
    text_part, related = parsed.get_payload()  # type: ignore[misc]
    assert text_part.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image_part = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    assert image_part.get_content_type() == "image/png"
    html = html_part.get_content()
    assert normalised(html) == normalised(message.html)
    cids = re.findall(r'src="cid:([^"]+)"', html)
    assert cids == [image_part["Content-ID"].strip("<>")]
    assert image_part.get_content_disposition() == "inline"
    assert image_part.get_content() == message.inline_images[0].data
    assert normalised(text_part.get_content()) == normalised(message.text)
    assert "data:" not in html  # never a data: image in a sent email


def test_headers_subject_date_message_id_and_list_unsubscribe() -> None:
    composer = make_composer()
    first = composer.compose(make_recipient(1))
    second = composer.compose(make_recipient(2))
    parsed = parse(first.raw)
    assert parsed["Subject"] == "Jürgen, your pastry deal ☕"
    assert b"=?utf-8?" in first.raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 on the wire
    assert str(parsed["From"]) == "Bäckerei Sonne <hello@sonne.example>"
    assert str(parsed["To"]) == "Jürgen Müller <customer1@example.org>"
    assert parsed["Reply-To"] == "help@sonne.example"
    assert parsed["Date"].datetime is not None
    assert parsed["Message-ID"] == first.message_id != second.message_id
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Feedback-ID"].endswith(":dealmail:sonne.example")
    urls = re.findall(r"<([^>]+)>", str(parsed["List-Unsubscribe"]))
    https = [u for u in urls if u.startswith("https://")]
    mailto = [u for u in urls if u.startswith("mailto:")]
    assert len(https) == 1
    assert len(mailto) == 1
    signed = https[0].rsplit("/u/", 1)[1]
    assert https[0] == f"https://deals.sonne.example/u/{signed}"
    assert mailto[0] == unsubscribe_mailto("sonne.example", signed)
    target = verify_unsubscribe(SECRET, signed)
    assert target is not None
    assert (target.customer_id, target.campaign_id) == (101, 7)
    assert https[0] in first.html  # the visible link in the body is the same one
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.envelope_from == "hello@sonne.example"
    assert first.recipients == ("customer1@example.org",)
    for line in first.raw.split(b"\r\n"):
        assert len(line) <= 998
    assert b"\n" not in first.raw.replace(b"\r\n", b"")  # CRLF only


def test_dkim_signature_verifies_with_dkimpy_and_covers_list_unsubscribe() -> None:
    key = make_key()
    message = make_composer(key=key).compose(make_recipient())
    assert message.raw.startswith(b"DKIM-Signature: ")
    assert dkimpy.verify(message.raw, dnsfunc=dns_for(key))
    signature = parse(message.raw)["DKIM-Signature"]
    tags = dict(
        part.strip().split("=", 1) for part in re.sub(r"\s+", "", str(signature)).split(";")
    )
    signed = tags["h"].split(":")
    assert "list-unsubscribe" in signed
    assert "list-unsubscribe-post" in signed
    assert {"from", "to", "subject", "date", "message-id"} <= set(signed)
    assert tags["a"] == "rsa-sha256"
    assert tags["c"] == "relaxed/relaxed"
    assert tags["d"] == "sonne.example"
    assert tags["s"] == "s1"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: nope"),
        (b"Subject: =?utf-8?", b"Subject: =?UTF-8?"),
        (b"Fresh bread", b"Fresh bred!"),
    ],
)
def test_dkim_fails_after_tampering(old: bytes, new: bytes) -> None:
    key = make_key()
    message = make_composer(key=key).compose(make_recipient())
    body_tampered = message.raw
    if old == b"Fresh bread":
        # In the QP body "fresh bread is waiting." appears in the text part.
        old, new = b"fresh bread", b"fresh bred!"
    assert old in body_tampered
    assert not dkimpy.verify(body_tampered.replace(old, new, 1), dnsfunc=dns_for(key))


@pytest.mark.parametrize(
    "body",
    [
        b"a  b \t c  \r\n\r\nline\t\r\n\r\n\r\n",
        b"x \t \t y     z\r\n \r\n",
        b"a \r\n\t\r\nb",
        b"\r\n\r\n",
        b"",
        b"plain\r\n",
    ],
)
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    from dkim.canonicalization import Relaxed

    assert dkim.relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_relaxed_header_matches_dkimpy() -> None:
    from dkim.canonicalization import Relaxed

    headers = [(b"Subject", b" Hello   there,\r\n\t folded  ")]
    assert Relaxed.canonicalize_headers(headers) == [(b"subject", b"Hello there, folded\r\n")]
    assert dkim.relaxed_header("Subject", " Hello   there,\r\n\t folded  ") == (
        "subject:Hello there, folded"
    )


def test_qr_decodes_to_the_coupon_url() -> None:
    composer = make_composer()
    recipient = make_recipient()
    message = composer.compose(recipient)
    assert recipient.coupon_nonce is not None
    token = derive_token(SECRET, recipient.coupon_nonce)
    expected = f"https://deals.sonne.example/c/{token}"
    assert decode_qr(message.inline_images[0].data) == expected
    assert expected in message.text


def test_qr_is_level_m_with_quiet_zone_and_phone_size() -> None:
    url = "https://deals.sonne.example/c/" + "A" * 22
    image = qr_png(url)
    decoded = zxingcpp.read_barcode(Image.open(io.BytesIO(image.png)))
    assert decoded is not None
    assert decoded.text == url
    assert decoded.ec_level == "M"
    pixels = np.asarray(Image.open(io.BytesIO(image.png)).convert("L"))
    assert pixels.shape == (image.size, image.size)
    assert 200 <= image.size <= 320
    scale = image.size // image.modules
    border = QUIET_ZONE_MODULES * scale
    assert pixels[:border].min() == 255
    assert pixels[:, :border].min() == 255
    assert pixels[-border:].min() == 255
    assert pixels[:, -border:].min() == 255
    assert pixels[border, border] == 0  # the finder pattern starts right after the quiet zone


def test_message_without_deal_has_no_coupon_or_image() -> None:
    message = make_composer(with_deal=False).compose(make_recipient())
    parsed = parse(message.raw)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert message.inline_images == ()
    assert "cid:" not in message.html


def test_test_coupon_message_says_so() -> None:
    message = make_composer().compose(make_recipient(coupon_is_test=True))
    assert "TEST MESSAGE" in message.html
    assert "TEST MESSAGE" in message.text


def test_quoted_printable_round_trips_long_lines_and_spaces() -> None:
    text = "x" * 300 + "  trailing  \nzwei  Leerzeichen äöü\n"
    encoded = quoted_printable(text)
    assert max(len(line) for line in encoded.split(b"\r\n")) <= 76
    import quopri

    assert quopri.decodestring(encoded).decode().replace("\r\n", "\n") == text


def test_unsubscribe_signatures_cannot_be_forged_or_enumerated() -> None:
    signed = sign_unsubscribe(SECRET, 42, 7)
    assert verify_unsubscribe(SECRET, signed) is not None
    assert verify_unsubscribe(SECRET, signed.upper()) is not None  # mail systems fold case
    customer, campaign, signature = signed.split("-")
    assert verify_unsubscribe(SECRET, f"43-{campaign}-{signature}") is None
    assert verify_unsubscribe(SECRET, f"{customer}-8-{signature}") is None
    assert verify_unsubscribe(b"another secret key of enough length!!", signed) is None
    assert verify_unsubscribe(SECRET, "42-7-") is None
    assert verify_unsubscribe(SECRET, "../../etc/passwd") is None
    assert re.fullmatch(r"[a-z0-9-]+", signed)


@pytest.mark.parametrize(
    "value",
    ["Jürgen, your pastry deal ☕", "ü" * 100, "日本語のテキスト" * 10, "abc" + "😀" * 30],
)
def test_encoded_words_round_trip_and_stay_short(value: str) -> None:
    from email.header import decode_header, make_header

    from dealmail.delivery.mime import encode_header_value

    encoded = encode_header_value(value)
    assert str(make_header(decode_header(encoded.replace("\r\n", "")))) == value
    assert all(len(line) <= 76 for line in encoded.split("\r\n"))


@pytest.mark.parametrize(
    ("first", "last"), [("Pat", "O'Brien, Jr."), ("Zoë", "Ångström"), ('Al "Big"', "Smith")]
)
def test_to_header_names_parse_back(first: str, last: str) -> None:
    message = make_composer().compose(make_recipient(first_name=first, last_name=last))
    to = parse(message.raw)["To"]
    assert to.addresses[0].display_name == f"{first} {last}"
    assert to.addresses[0].addr_spec == "customer1@example.org"


def test_header_injection_through_names_or_addresses_is_impossible() -> None:
    composer = make_composer()
    message = composer.compose(
        make_recipient(first_name="Eve\r\nBcc: victim@example.org", last_name="X\nY")
    )
    head = message.raw.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nBcc:" not in head
    assert parse(message.raw)["To"].addresses[0].display_name == "Eve Bcc: victim@example.org X Y"
    with pytest.raises(ValueError, match="control characters"):
        composer.compose(make_recipient(email="a@example.org\r\nBcc: victim@example.org"))


def test_subject_from_customer_data_stays_one_line() -> None:
    composer = make_composer()
    message = composer.compose(make_recipient(first_name="Eve\x00\r\nBcc: victim@example.org"))
    assert message.subject == "Eve Bcc: victim@example.org, your pastry deal ☕"
    assert b"\r\nBcc:" not in message.raw.split(b"\r\n\r\n", 1)[0]
