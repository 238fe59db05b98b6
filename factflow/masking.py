"""Secrets out of what is printed: `mask_url` for every log line, error and API answer
that shows a broker, database or storage URL."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# ASCII: libpq splits keyword DSNs on ASCII whitespace only, so a password holding another
# Unicode space (U+00A0, U+001F) is one value and must be masked whole.
_KEYWORD_PASSWORD = re.compile(
    r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE | re.ASCII
)


def mask_url(url: str | None) -> str:
    """The URL or key=value DSN with its password replaced by `***`, safe to print."""
    if not url:
        return "<no url>"
    if "://" not in url:
        return _KEYWORD_PASSWORD.sub(rf"\g<1>{MASK}", url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        if ":" in userinfo:
            user, _, password = userinfo.partition(":")
            userinfo = f"{user}:{MASK}" if password else user
        netloc = f"{userinfo}@{hostinfo}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() == "password" for k, _ in pairs):
            pairs = [(k, MASK if k.lower() == "password" else v) for k, v in pairs]
            # `/` is kept readable because socket directories are paths
            query = urlencode(pairs, safe="/*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
