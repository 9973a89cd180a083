"""Settings read from the environment, old names included."""

from __future__ import annotations

import pytest

from oms.settings import Settings


def test_the_old_name_of_allowing_private_targets_is_still_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_EGRESS_ALLOW_PRIVATE", raising=False)
    monkeypatch.setenv("OMS_WEBHOOK_ALLOW_PRIVATE", "true")
    assert Settings().egress_allow_private is True
    monkeypatch.setenv("OMS_EGRESS_ALLOW_PRIVATE", "false")
    assert Settings().egress_allow_private is False  # the new name wins
    monkeypatch.delenv("OMS_WEBHOOK_ALLOW_PRIVATE")
    monkeypatch.setenv("OMS_EGRESS_ALLOW_PRIVATE", "true")
    assert Settings().egress_allow_private is True
    # In code, by its name.
    assert Settings(egress_allow_private=False).egress_allow_private is False
