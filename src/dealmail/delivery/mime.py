"""MIME from a per-campaign skeleton: boundaries and fixed headers once, per message substitution.

`email.message.EmailMessage` costs ~5 ms to build and serialise this structure; filling bytes
templates costs ~0.05 ms and gives the same parse (checked in tests with the stdlib parser):
multipart/alternative(text/plain, multipart/related(text/html, image/png)).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from email.utils import formataddr

CRLF = "\r\n"
PNG_FILENAME = "coupon-qr.png"


def crlf_lines(text: str) -> bytes:
    """UTF-8 with CRLF line ends and a final CRLF (what SMTP and DKIM expect)."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    if not normalised.endswith("\n"):
        normalised += "\n"
    return normalised.replace("\n", CRLF).encode("utf-8")


def quoted_printable(text: str) -> bytes:
    # The data always holds a CRLF, so binascii keeps CRLF for its soft line breaks too.
    return binascii.b2a_qp(crlf_lines(text), quotetabs=False, istext=True, header=False)


def base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines ending in CRLF."""
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


ENCODED_WORD_BYTES = 45  # 60 base64 characters: each encoded word stays under 75 characters


def encode_header_value(value: str) -> str:
    """ASCII as is; anything else as RFC 2047 base64 encoded words folded with CRLF.

    Written out because `email.header.Header` weighs q against b character by character
    (~0.25 ms for a subject); this splits the UTF-8 only between characters (~0.01 ms).
    """
    if value.isascii():
        return value
    words: list[str] = []
    chunk = bytearray()
    for char in value:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > ENCODED_WORD_BYTES:
            words.append(base64.b64encode(chunk).decode("ascii"))
            chunk = bytearray()
        chunk += encoded
    if chunk:
        words.append(base64.b64encode(chunk).decode("ascii"))
    return f"{CRLF} ".join(f"=?utf-8?b?{word}?=" for word in words)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_safe(value: str) -> str:
    """One line: control characters (CR, LF, NUL...) become spaces, runs of space collapse."""
    return " ".join(_CONTROL.sub(" ", value).split())


def address(name: str | None, email: str) -> str:
    """`Name <email>`: an ASCII name quoted as needed, any other as encoded words."""
    if _CONTROL.search(email) or " " in email:
        raise ValueError(f"refusing an address with spaces or control characters: {email!r}")
    name = header_safe(name or "")
    if not name:
        return email
    if name.isascii():
        return formataddr((name, email))
    return f"{encode_header_value(name)} <{email}>"


def new_boundary(kind: str) -> str:
    # "=_" can occur neither in base64 nor in quoted-printable text: no part can contain it.
    return f"=_dm_{kind}_{secrets.token_hex(12)}"


@dataclass(frozen=True)
class MimeSkeleton:
    """Everything about a campaign's messages that does not change from one customer to the next."""

    fixed_headers: tuple[tuple[str, str], ...]  # From, Reply-To, List-Unsubscribe-Post...
    alternative_start: bytes
    text_to_html: bytes  # closes the text part, opens the HTML part
    html_to_image: bytes  # closes the HTML part, opens the image part (up to Content-ID)
    image_end: bytes
    plain_html_to_end: bytes  # for messages without a coupon
    plain_text_to_html: bytes
    related_content_type: str
    alternative_content_type: str


def build_skeleton(fixed_headers: list[tuple[str, str]]) -> MimeSkeleton:
    alt = new_boundary("alt")
    rel = new_boundary("rel")
    text_headers = (
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    html_headers = (
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    alternative_start = (
        f"This is a multipart message in MIME format.\r\n\r\n--{alt}\r\n{text_headers}"
    )
    text_to_html = (
        f"\r\n--{alt}\r\n"
        f'Content-Type: multipart/related; boundary="{rel}"; type="text/html"\r\n\r\n'
        f"--{rel}\r\n{html_headers}"
    )
    html_to_image = (
        f"\r\n--{rel}\r\n"
        f'Content-Type: image/png; name="{PNG_FILENAME}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: inline; filename="{PNG_FILENAME}"\r\n'
        "Content-ID: <"
    )
    return MimeSkeleton(
        fixed_headers=tuple(fixed_headers),
        alternative_start=alternative_start.encode(),
        text_to_html=text_to_html.encode(),
        html_to_image=html_to_image.encode(),
        image_end=f"\r\n--{rel}--\r\n\r\n--{alt}--\r\n".encode(),
        plain_text_to_html=f"\r\n--{alt}\r\n{html_headers}".encode(),
        plain_html_to_end=f"\r\n--{alt}--\r\n".encode(),
        related_content_type=f'multipart/related; boundary="{rel}"',
        alternative_content_type=f'multipart/alternative; boundary="{alt}"',
    )


def assemble_body(
    skeleton: MimeSkeleton,
    *,
    html: str,
    text: str,
    png: bytes | None,
    content_id: str | None,
) -> bytes:
    """The message body (after the blank line): alternative(text, related(html, png))."""
    parts = [skeleton.alternative_start, quoted_printable(text)]
    if png is None or content_id is None:
        parts += [skeleton.plain_text_to_html, quoted_printable(html), skeleton.plain_html_to_end]
    else:
        parts += [
            skeleton.text_to_html,
            quoted_printable(html),
            skeleton.html_to_image,
            content_id.encode("ascii"),
            b">\r\n\r\n",
            base64_lines(png),
            skeleton.image_end,
        ]
    return b"".join(parts)


def serialise_headers(headers: list[tuple[str, str]]) -> bytes:
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("utf-8")
