"""Where webhooks may go. An endpoint's URL is typed by an operator and its deliveries are sent
from inside our network, so without care a URL (or a DNS name, or a redirect) pointing at
localhost, the cloud's metadata service or a private address would make the workers request
internal hosts for whoever controls that URL (server-side request forgery).

- The URL: https only, and no host that names this machine or a non-public address
  (`url_problem`, checked by the admin and `create_api_client`).
- Each send: the connection's peer address must be public, checked after the name was resolved
  and connected, so a DNS name that resolves (or later re-resolves) to a private address is
  refused too; redirects are not followed (`opener`).

`WEBHOOK_ALLOW_PRIVATE_ADDRESSES` (default: on with DEBUG, off in production) lifts both for
development and tests, whose receivers run on 127.0.0.1 over plain http."""

import http.client
import ipaddress
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings

LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not private, loopback, link-local,
    shared, reserved, multicast or unspecified; an IPv4-mapped IPv6 address as its IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def private_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False))


def url_problem(url: str) -> str | None:
    """What is wrong with a webhook URL, or None."""
    parts = urlsplit(url)
    allowed = private_allowed()
    if parts.scheme != "https" and not (allowed and parts.scheme == "http"):
        return "Use an https:// URL: webhooks carry signed order data."
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        return "Give the receiver's host name."
    if allowed:
        return None
    if host == "localhost" or host.endswith(LOCAL_SUFFIXES) or "." not in host and ":" not in host:
        return f"{host} is not a public host name: give the receiver's public address."
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked on every send
    if not is_public(str(literal)):
        return f"{host} is not a public address: give the receiver's public address."
    return None


class _PublicPeer:
    """A connection that refuses, before sending anything, a peer that is not public."""

    def connect(self) -> None:
        super().connect()
        if private_allowed():
            return
        peer = self.sock.getpeername()[0]
        if not is_public(peer):
            self.sock.close()
            raise OSError(f"{self.host} is at {peer}, which is not a public address")


class _PublicHTTPConnection(_PublicPeer, http.client.HTTPConnection):
    pass


class _PublicHTTPSConnection(_PublicPeer, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, request):
        return self.do_open(_PublicHTTPConnection, request)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, request):
        return self.do_open(_PublicHTTPSConnection, request, context=self._context)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as what it is (HTTP 3xx, retried like any non-2xx): following it
    would send the signed event wherever the receiver points."""

    def redirect_request(self, *args, **kwargs):
        return None


def opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler, _NoRedirects)
