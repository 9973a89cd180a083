"""One policy for every request the OMS sends out (webhooks, DC/3PL callbacks, and any PSP or
carrier adapter that speaks HTTP): where it may go, and what of the answer may be shown.

- The host is resolved once, when a connection is opened, and every address it resolves to
  must be public: no loopback, private, link-local, cloud metadata, unspecified, multicast or
  reserved address, in IPv4 or IPv6 (IPv4 inside IPv6 too), unless private targets are allowed
  (`OMS_EGRESS_ALLOW_PRIVATE`).
- The connection goes to the address that was checked, not to the name again, so a name that
  answers differently the second time (DNS rebinding) cannot steer it elsewhere. The request
  still names the host (Host header, TLS SNI) and its certificate is verified for that name.
- Redirects are not followed, and no proxy from the environment is used.
- A remote answer's body is never shown to our callers: `status_line` and `failure` give the
  short texts that may be.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
import typing
from dataclasses import dataclass
from http import HTTPStatus

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata and platform endpoints. Most are private or link-local anyway; Azure's
#: WireServer (168.63.129.16) is a public address that only its VMs can reach.
METADATA = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "fd00:ec2::254", "100.100.100.200", "168.63.129.16", "192.0.0.192"))
#: The well-known NAT64 prefix: the last 32 bits are the IPv4 address a translator connects
#: to. (Other translation prefixes are reserved addresses, refused as such.)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: What is read of an answer's body, at most, before the connection is given up (the body is
#: read only so that the connection can be used again).
DRAIN_LIMIT = 64 * 1024
ALLOW_SETTING = "OMS_EGRESS_ALLOW_PRIVATE"


class EgressRefused(Exception):
    """The policy does not let a request go there. The message names the host (from the URL
    we were given) and the address it resolved to, and may be shown."""


def _judged(ip: IPAddress) -> list[IPAddress]:
    """The addresses that decide whether `ip` may be reached: an IPv6 address carrying an
    IPv4 one (mapped, or NAT64, as DNS64 answers for IPv4-only hosts) is the IPv4 address;
    a 6to4 address is itself and the IPv4 address it routes to."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return [ip.ipv4_mapped]
        if ip in NAT64:
            return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
        if ip.sixtofour is not None:
            return [ip, ip.sixtofour]
    return [ip]


def _kind(ip: IPAddress) -> str | None:
    """What makes the address one that must not be reached, or None if it is public."""
    if ip in METADATA:
        return "cloud metadata"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local):
        return "private"
    if ip.is_reserved or not ip.is_global:
        return "reserved"
    return None


def refusal_kind(address: str) -> str | None:
    """Why `address` may not be reached when private targets are not allowed (`loopback`,
    `private`, `cloud metadata`, ...), or None if it is public."""
    ip = ipaddress.ip_address(address)
    for candidate in _judged(ip):
        kind = _kind(candidate)
        if kind is not None:
            return kind
    return None


def _hint() -> str:
    return f"set {ALLOW_SETTING}=true to allow private targets"


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def literal_refusal(host: str) -> str | None:
    """For a host that is an IP address: why it may not be a target, or None. A name is
    checked when a request is sent, by what it then resolves to."""
    try:
        ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    kind = refusal_kind(str(ip))
    if kind is None:
        return None
    return f"{ip} is {_a(kind)} address; {_hint()}"


def lookup(host: str, port: int | None = None) -> list[str]:
    """The addresses of `host`, looked up once, in the resolver's order; none if it has none
    (or is no name DNS can hold)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):  # UnicodeError: no IDNA name (label > 63)
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class EgressPolicy:
    allow_private: bool = False

    def refusal(self, host: str, addresses: typing.Iterable[str]) -> str | None:
        """Why `host`, resolved to `addresses`, may not be reached; None if it may."""
        if self.allow_private:
            return None
        for address in addresses:
            kind = refusal_kind(address)
            if kind is not None:
                return f"{host} resolves to {address}, {_a(kind)} address; {_hint()}"
        return None

    def addresses(self, host: str, port: int) -> list[str]:
        """Where a connection to `host` may go: every address it resolves to, now, once;
        EgressRefused if any of them may not be reached."""
        found = lookup(host, port)
        if not found:
            raise EgressRefused(f"cannot resolve {host}")
        refused = self.refusal(host, found)
        if refused is not None:
            raise EgressRefused(refused)
        return found


class _PinnedBackend(httpcore.NetworkBackend):
    """Opens each connection to an address the policy checked, never to the name: the name is
    resolved here once, and httpcore goes on to speak TLS (SNI, certificate check) and HTTP
    (Host) for the name over the socket it gets."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        self.backend = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                    ) -> httpcore.NetworkStream:
        failed: Exception | None = None
        for address in self.policy.addresses(host, port):
            try:
                return self.backend.connect_tcp(address, port, timeout, local_address,
                                                socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failed = exc  # the next address, as a resolver's client would
        assert failed is not None
        raise failed

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None
                            = None) -> httpcore.NetworkStream:
        raise EgressRefused("requests do not go to local sockets")

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _EgressTransport(httpx.HTTPTransport):
    """httpx's own transport (its request, response and error handling) over a connection
    pool whose connections the policy opens. httpx 0.28 takes no network backend of its own,
    so the pool it builds is replaced by an equal one that uses ours."""

    def __init__(self, policy: EgressPolicy, limits: httpx.Limits) -> None:
        tls = httpx.create_ssl_context()
        super().__init__(verify=tls, limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=tls, max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry, network_backend=_PinnedBackend(policy))


def client(policy: EgressPolicy, timeout_seconds: float, *, connections: int = 16
           ) -> httpx.Client:
    """An HTTP client every outgoing request of the OMS goes through. It follows no
    redirect and ignores proxy and netrc settings of the environment."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(transport=_EgressTransport(policy, limits), timeout=timeout_seconds,
                        follow_redirects=False, trust_env=False)


@dataclass(frozen=True)
class Reply:
    """What may be kept of an answer: its status, and the headers a sender acts on."""

    status_code: int
    retry_after: str | None

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300


class SendFailed(Exception):
    """No answer came (refused by the policy, no connection, timed out, not HTTP). The message
    is one `failure` made and may be shown."""


def post(http: httpx.Client, url: str, headers: dict[str, str], body: bytes) -> Reply:
    """POST `body` to `url` and read no more of the answer than its status and Retry-After;
    SendFailed if there is no answer."""
    try:
        with http.stream("POST", url, content=body, headers=headers) as answer:
            _drain(answer, http.timeout.read)
            return Reply(answer.status_code, answer.headers.get("retry-after"))
    except (EgressRefused, httpx.HTTPError, httpx.InvalidURL) as exc:
        raise SendFailed(failure(exc)) from exc


def _drain(answer: httpx.Response, read_timeout: float | None) -> None:
    """Read the body and drop it, so that the connection can carry the next request; a body
    that is too long or too slow costs the connection instead."""
    deadline = time.monotonic() + (read_timeout or 10.0)
    read = 0
    for chunk in answer.iter_raw():
        read += len(chunk)
        if read > DRAIN_LIMIT or time.monotonic() > deadline:
            break


def status_line(status_code: int) -> str:
    """`HTTP 503 Service Unavailable`: the code and its standard phrase, never the reason the
    remote end wrote."""
    try:
        return f"HTTP {status_code} {HTTPStatus(status_code).phrase}"
    except ValueError:
        return f"HTTP {status_code}"


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]+")


def failure(exc: BaseException) -> str:
    """Why a request got no answer, in words that carry nothing the remote end sent: our
    policy's refusal, or the local network or TLS error, but never a protocol error's text
    (it may quote what the remote end wrote)."""
    if isinstance(exc, EgressRefused):
        text = str(exc)
    elif isinstance(exc, httpx.TimeoutException):
        text = "timed out"
    elif isinstance(exc, httpx.NetworkError | httpx.UnsupportedProtocol | httpx.InvalidURL):
        # Made here: by the operating system, the TLS library or httpx from our URL.
        text = f"{type(exc).__name__}: {exc}"
    elif isinstance(exc, httpx.RemoteProtocolError):
        text = "the answer was not valid HTTP"
    else:
        text = type(exc).__name__
    return _UNPRINTABLE.sub(" ", text)[:300]
