"""The JSON view of a shipment, shared by fulfilment and the calls that book its label."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oms.services.routing import RowLike


def shipment_out(s: RowLike, tracking: Sequence[RowLike], *, with_label: bool = False
                 ) -> dict[str, Any]:
    body = {
        "id": s["id"], "request_id": s["request_id"], "order_id": s["order_id"],
        "location_id": s["location_id"], "carrier": s["carrier"],
        "tracking_number": s["tracking_number"], "tracking_url": s["tracking_url"],
        # pending until the carrier booked it, then booked or failed; None when the DC or
        # 3PL that shipped it booked the carrier itself.
        "label_status": s["label_status"], "label_error": s["label_error"],
        "parcels": s["parcels"], "item_ids": s["item_ids"], "status": s["status"],
        "tracking_events": [{
            "status": e["status"], "occurred_at": e["occurred_at"].isoformat(),
            "description": e["description"], "place": e["place"]} for e in tracking],
        "version": s["version"], "created_at": s["created_at"].isoformat(),
        "updated_at": s["updated_at"].isoformat(),
    }
    if with_label and s["label"] is not None:
        body["label"] = {"format": s["label_format"], "content": s["label"]}
    return body
