"""The outbound allow rule: which URLs a webhook may be sent to."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from factflow.webhooks.exceptions import UrlNotAllowedError


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> None:
    """Raise UrlNotAllowedError unless `url` is http(s) with a host that (unless
    `allow_private`) resolves only to public addresses.

    Checked when a subscription is made and again before every attempt, so a name that
    later resolves to an internal address is refused too.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"webhook URL {url!r} must be an absolute http:// or https:// URL"
        raise UrlNotAllowedError(msg)
    if allow_private:
        return
    host = parts.hostname
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        if not resolve:
            return
        try:
            infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            msg = f"webhook URL host {host!r} does not resolve: {exc}"
            raise UrlNotAllowedError(msg) from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    bad = sorted({str(a) for a in addresses if _refused(a)})
    if bad:
        msg = (
            f"webhook URL {url!r} reaches a loopback or private address ({', '.join(bad)}); "
            "set FACTFLOW_WEBHOOK_ALLOW_PRIVATE_URLS=1 to allow internal receivers"
        )
        raise UrlNotAllowedError(msg)
