"""Which adapter serves which carrier and PSP, from settings: `{"code": "module:Class"}`,
with `*` for every code not named. The simulated ones are the default."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from oms.adapters.carriers import Carrier
from oms.adapters.payments import PaymentProvider
from oms.adapters.providers import Notifier
from oms.adapters.providers.http_callback import HttpCallbackNotifier
from oms.settings import Settings

log = logging.getLogger(__name__)

SIMULATED_CARRIER = "oms.adapters.carriers.simulated:SimulatedCarrier"
SIMULATED_PSP = "oms.adapters.payments.simulated:SimulatedPsp"
#: The PSP codes of cash taken at a store's till and of the retailer's gift cards.
CASH = "cash"
GIFT_CARD = "gift_card"
IN_STORE = "oms.adapters.payments.in_store:InStore"


def load(path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"{path!r} is not 'module:Class'")
    return getattr(importlib.import_module(module_name), attribute)()


@dataclass
class _ByCode:
    paths: Mapping[str, str]
    default: str
    instances: dict[str, Any] = field(default_factory=dict)

    def get(self, code: str) -> Any:
        path = self.paths.get(code) or self.paths.get("*") or self.default
        # One instance per adapter class, shared by the codes it serves.
        if path not in self.instances:
            self.instances[path] = load(path)
        return self.instances[path]


class CallRunner:
    """Runs calls to providers on threads of its own, and waits for them a bounded time: a
    provider that hangs holds these threads, not the API's, and an answer that waited long
    enough goes out with the call still pending (the worker finishes what is left)."""

    def __init__(self, threads: int, wait_seconds: float) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="provider-call")
        self.wait_seconds = wait_seconds

    def run(self, work: Callable[[], None]) -> None:
        future = self._pool.submit(work)
        try:
            future.result(timeout=self.wait_seconds)
        except FutureTimeout:
            log.warning("a provider call is still running after %.1f s; answering without it",
                        self.wait_seconds)
        except Exception:
            log.exception("a provider call failed; the worker will carry it out")


class Providers:
    """The outside world the services talk to."""

    def __init__(self, carriers: Mapping[str, str], psps: Mapping[str, str],
                 notifier: Notifier, runner: CallRunner | None = None) -> None:
        self._carriers = _ByCode(carriers, SIMULATED_CARRIER)
        self._psps = _ByCode({CASH: IN_STORE, GIFT_CARD: IN_STORE, **psps}, SIMULATED_PSP)
        self.notifier = notifier
        self.runner = runner or CallRunner(8, 10.0)

    def carrier(self, code: str) -> Carrier:
        carrier: Carrier = self._carriers.get(code)
        return carrier

    def psp(self, code: str) -> PaymentProvider:
        psp: PaymentProvider = self._psps.get(code)
        return psp


def providers_from(settings: Settings) -> Providers:
    return Providers(settings.carrier_adapters, settings.psp_adapters,
                     HttpCallbackNotifier(settings.provider_timeout_seconds,
                                          allow_private=settings.egress_allow_private),
                     CallRunner(settings.provider_call_threads,
                                settings.provider_answer_wait_seconds))
