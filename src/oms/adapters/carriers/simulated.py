"""A carrier that books at once and keeps every call, for development and tests. A booking
asked again with the same idempotency key is the same booking."""

from __future__ import annotations

import base64
import hashlib
import threading

from oms.adapters import ProviderUnavailable
from oms.adapters.carriers import Booking, BookingRequest, CarrierError


class SimulatedCarrier:
    def __init__(self) -> None:
        self.calls: list[BookingRequest] = []
        self._bookings: dict[str, Booking] = {}
        #: Carrier codes that refuse every booking, with the reason they give.
        self.refusing: dict[str, str] = {}
        #: While set, every booking fails as an unreachable carrier's would.
        self.unreachable = False
        self._lock = threading.Lock()

    @property
    def bookings(self) -> dict[str, Booking]:
        """The bookings made, by idempotency key."""
        return dict(self._bookings)

    def book(self, request: BookingRequest) -> Booking:
        with self._lock:
            self.calls.append(request)
            if self.unreachable:
                raise ProviderUnavailable("connection timed out")
            existing = self._bookings.get(request.idempotency_key)
            if existing is not None:
                return existing
            if request.carrier in self.refusing:
                raise CarrierError(self.refusing[request.carrier])
            digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()
            tracking_number = f"SIM{int(digest[:15], 16) % 10**12:012d}"
            weight = sum(p.weight_grams for p in request.parcels)
            to = request.ship_to
            # A ZPL label, as thermal label printers in stores take it.
            zpl = (f"^XA^CF0,40^FO50,50^FD{request.carrier.upper()} {request.service_level}^FS"
                   f"^FO50,110^FD{to.get('name') or ''}^FS"
                   f"^FO50,160^FD{to.get('line1', '')}^FS"
                   f"^FO50,210^FD{to.get('postal_code', '')} {to.get('city', '')} "
                   f"{to.get('country', '')}^FS"
                   f"^FO50,280^FD{len(request.parcels)} parcel(s), {weight} g^FS"
                   f"^FO50,340^BCN,100,Y,N,N^FD{tracking_number}^FS^XZ")
            booking = Booking(
                tracking_number=tracking_number,
                tracking_url=f"https://tracking.example/{tracking_number}",
                label_format="zpl",
                label=base64.b64encode(zpl.encode()).decode(),
            )
            self._bookings[request.idempotency_key] = booking
            return booking
