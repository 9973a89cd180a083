"""The egress client against real HTTP and HTTPS servers on 127.0.0.1, with DNS answering as
each test says: a name is looked up once per connection and the connection goes to the
address looked up, while the request (Host, TLS server name and certificate) still names
the host."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from oms.adapters import egress
from tests.network import Dns
from tests.receiver import Receiver, in_turn

PUBLIC = "93.184.215.14"


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Dns:
    return Dns(monkeypatch)


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trustme.CA:
    """A certificate authority that the OMS trusts (as an operator would by SSL_CERT_FILE)."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


def https_receiver(ca: trustme.CA, name: str, server_names: list[str]) -> Receiver:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(tls)

    def record(sock: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        server_names.append(server_name or "")

    tls.sni_callback = record  # type: ignore[assignment]
    return Receiver(tls=tls)


def test_https_names_the_host_while_connecting_to_the_address_looked_up(
        dns: Dns, ca: trustme.CA) -> None:
    server_names: list[str] = []
    with https_receiver(ca, "dc.example", server_names) as receiver:
        port = receiver.server.server_address[1]
        dns.resolve("dc.example", "127.0.0.1")
        with egress.client(egress.EgressPolicy(allow_private=True), 5.0) as http:
            reply = egress.post(http, f"https://dc.example:{port}/hook", {}, b"{}")
        assert reply.status_code == 200
        [request] = receiver.requests()
        assert request.headers["host"] == f"dc.example:{port}"
        assert server_names == ["dc.example"]
        assert dns.lookups == ["dc.example"]


def test_the_certificate_must_be_the_hosts(dns: Dns, ca: trustme.CA) -> None:
    with https_receiver(ca, "other.example", []) as receiver:
        port = receiver.server.server_address[1]
        dns.resolve("dc.example", "127.0.0.1")
        with egress.client(egress.EgressPolicy(allow_private=True), 5.0) as http, \
                pytest.raises(egress.SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
            egress.post(http, f"https://dc.example:{port}/hook", {}, b"{}")
        assert receiver.requests() == []


def test_a_name_is_looked_up_once_and_its_address_is_the_one_dialled(dns: Dns) -> None:
    with Receiver() as receiver:
        port = receiver.server.server_address[1]
        dns.resolve("rebind.example", PUBLIC, "127.0.0.1")
        with egress.client(egress.EgressPolicy(), 2.0) as http:
            with pytest.raises(egress.SendFailed, match="ConnectError"):
                egress.post(http, f"http://rebind.example:{port}/hook", {}, b"{}")
            assert dns.dialled == [(PUBLIC, port)]
            # The next connection looks the name up again, and is refused where it now points.
            with pytest.raises(egress.SendFailed,
                               match=r"rebind\.example resolves to 127\.0\.0\.1, a loopback"):
                egress.post(http, f"http://rebind.example:{port}/hook", {}, b"{}")
        assert dns.lookups == ["rebind.example", "rebind.example"]
        assert receiver.requests() == []


def test_redirects_are_not_followed(dns: Dns) -> None:
    with Receiver(in_turn((302, {"Location": "http://127.0.0.1:9/admin"}, b""))) as receiver:
        with egress.client(egress.EgressPolicy(allow_private=True), 2.0) as http:
            reply = egress.post(http, receiver.url, {}, b"{}")
        assert reply.status_code == 302
        assert not reply.succeeded
        assert len(receiver.requests()) == 1


def test_a_proxy_in_the_environment_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy resolves names itself: requests through it would escape the policy.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    with Receiver() as receiver:
        with egress.client(egress.EgressPolicy(allow_private=True), 2.0) as http:
            assert egress.post(http, receiver.url, {}, b"{}").status_code == 200
        assert len(receiver.requests()) == 1
