"""Credentials that must never be printed or stored: registered once, redacted everywhere.

An RDB storage URL (`postgresql://user:password@host/db`) is the one secret a suite holds.
Optuna gets the real URL; every message (UserError, log line, warning, traceback kept in the run
directory) and every stored copy of the suite (suite.yaml, the study's suite record, report.html)
goes through `redact`, which replaces each registered secret by `***`.
"""

from __future__ import annotations

import re

MASK = "***"
_SECRETS: set[str] = set()
# scheme://user:password@host...: the password is everything between the first ':' after '//' and the last '@'
_URL_PASSWORD = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)(?P<password>.*)(?P<tail>@[^@]*)$")


def register(secret: str) -> None:
    """Redact `secret` from every later message (strings shorter than 3 characters are not
    registered: masking them would mangle ordinary text)."""
    if secret and len(secret) >= 3:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """`text` with every registered secret (and any URL password) replaced by ***."""
    text = str(text)
    for s in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(s, MASK)
    return text


def url_password(url: str) -> str | None:
    m = _URL_PASSWORD.match(url or "")
    return m.group("password") if m and m.group("password") else None


def redact_url(url: str) -> str:
    """`scheme://user:***@host/db` (a URL without a password, or whose password is a ${VAR}
    reference, is returned as is)."""
    m = _URL_PASSWORD.match(url or "")
    if not m or not m.group("password") or m.group("password").startswith("${"):
        return url
    return f"{m.group('head')}{MASK}{m.group('tail')}"


def register_url(url: str) -> str:
    """Register the password of `url` (if any) and return the redacted URL."""
    password = url_password(url)
    if password and "${" not in password:  # an unexpanded ${VAR} is not the secret; its value is
        register(password)
        from urllib.parse import unquote

        register(unquote(password))  # drivers print it decoded
    return redact_url(url)
