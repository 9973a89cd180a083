"""Which addresses an outgoing request may reach, what of a failure may be shown, and the
setting that allows private targets."""

from __future__ import annotations

import httpx
import pytest

from oms.adapters.egress import (
    EgressPolicy,
    EgressRefused,
    failure,
    literal_refusal,
    refusal_kind,
    status_line,
)


@pytest.mark.parametrize(("address", "kind"), [
    ("8.8.8.8", None), ("2606:4700::1111", None), ("93.184.215.14", None),
    ("::ffff:8.8.8.8", None),           # IPv4-mapped: judged as the IPv4 address
    ("64:ff9b::808:808", None),         # NAT64 (DNS64) of a public IPv4 address
    ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"), ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::1", "loopback"),     # 6to4 of 127.0.0.1
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.0.10", "private"),
    ("fd12:3456::1", "private"), ("fec0::1", "private"),
    ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
    ("::ffff:169.254.169.254", "cloud metadata"), ("100.100.100.200", "cloud metadata"),
    ("168.63.129.16", "cloud metadata"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("224.0.0.1", "multicast"), ("ff02::1", "multicast"),
    ("100.64.0.1", "reserved"),         # carrier-grade NAT
])
def test_what_an_outgoing_request_may_reach(address: str, kind: str | None) -> None:
    assert refusal_kind(address) == kind


def test_a_literal_address_is_judged_when_a_url_is_saved() -> None:
    refused = literal_refusal("169.254.169.254")
    assert refused is not None
    assert "cloud metadata" in refused
    assert "OMS_EGRESS_ALLOW_PRIVATE" in refused
    assert literal_refusal("[::1]") is not None
    assert literal_refusal("93.184.215.14") is None
    # A name is judged by what it resolves to when a request is sent.
    assert literal_refusal("erp.example") is None


def test_every_address_of_a_name_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    def resolve(host: str | bytes, port: object, *args: object, **kwargs: object) -> list[
            tuple[object, ...]]:
        return [(2, 1, 6, "", ("93.184.215.14", 443)), (2, 1, 6, "", ("10.0.0.5", 443))]

    monkeypatch.setattr("socket.getaddrinfo", resolve)
    with pytest.raises(EgressRefused, match=r"erp\.example resolves to 10\.0\.0\.5, a private"):
        EgressPolicy().addresses("erp.example", 443)
    assert EgressPolicy(allow_private=True).addresses("erp.example", 443) == [
        "93.184.215.14", "10.0.0.5"]


def test_an_answer_is_shown_by_its_status_alone() -> None:
    assert status_line(503) == "HTTP 503 Service Unavailable"
    assert status_line(404) == "HTTP 404 Not Found"
    assert status_line(599) == "HTTP 599"


def test_a_failure_carries_nothing_the_remote_end_wrote() -> None:
    # h11 quotes a malformed status line in its error; that text is the remote end's.
    quoted = httpx.RemoteProtocolError("illegal status line: b'HTTP/1.1 200 token=s3cr3t'")
    assert "s3cr3t" not in failure(quoted)
    assert failure(httpx.ReadTimeout("timed out")) == "timed out"
    refused = failure(httpx.ConnectError("[Errno 111] Connection refused"))
    assert refused == "ConnectError: [Errno 111] Connection refused"
    assert "\n" not in failure(EgressRefused("x\nresolves to 10.0.0.1"))
