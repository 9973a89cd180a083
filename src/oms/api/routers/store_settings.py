"""What the retailer sets for its stores' checkout: the barcode types scanners accept, the
tax rates of the built-in tax provider and the shipping rates of the built-in rates
adapter."""

from __future__ import annotations

from fastapi import APIRouter, Response

from oms.api import models
from oms.api.deps import AnyRole, Integrators, ReadUow
from oms.api.openapi import answer, problems
from oms.api.routing import JsonBodyRoute
from oms.api.transactions import WriteTx
from oms.schemas import ApprovalRulesIn, BarcodeTypesIn, ShippingRatesIn, TaxRatesIn
from oms.services import carts

router = APIRouter(tags=["checkout settings"], route_class=JsonBodyRoute)


@router.get("/v1/settings/barcode-types", summary="The barcode types the scanners accept",
            response_model=models.BarcodeTypes)
def get_barcode_types(uow: ReadUow, _: AnyRole) -> Response:
    return answer(carts.barcode_types(uow))


@router.put("/v1/settings/barcode-types",
            summary="Choose the barcode types the scanners accept; a scan of another type is "
                    "refused",
            response_model=models.BarcodeTypes, responses=problems(403))
def put_barcode_types(body: BarcodeTypesIn, tx: WriteTx, _: Integrators) -> Response:
    return tx.done(carts.set_barcode_types(tx.uow, body))


@router.get("/v1/tax/rates", summary="The built-in tax provider's rates",
            response_model=models.TaxRates)
def get_tax_rates(uow: ReadUow, _: AnyRole) -> Response:
    return answer(carts.tax_rates(uow))


@router.put("/v1/tax/rates",
            summary="Replace the built-in tax provider's rates (percent, per country, region "
                    "and tax class)",
            response_model=models.TaxRates, responses=problems(403))
def put_tax_rates(body: TaxRatesIn, tx: WriteTx, _: Integrators) -> Response:
    return tx.done(carts.set_tax_rates(tx.uow, body))


@router.get("/v1/shipping/rates", summary="The built-in rates adapter's shipping rates",
            response_model=models.ShippingRates)
def get_shipping_rates(uow: ReadUow, _: AnyRole) -> Response:
    return answer(carts.shipping_rates(uow))


@router.put("/v1/shipping/rates",
            summary="Replace the shipping rates (per country, service level and currency)",
            response_model=models.ShippingRates, responses=problems(403))
def put_shipping_rates(body: ShippingRatesIn, tx: WriteTx, _: Integrators) -> Response:
    return tx.done(carts.set_shipping_rates(tx.uow, body))


@router.get("/v1/approval-rules", summary="The rules a cart needs a manager's approval for",
            response_model=models.ApprovalRules)
def get_approval_rules(uow: ReadUow, _: AnyRole) -> Response:
    return answer(carts.approval_rules(uow))


@router.put("/v1/approval-rules",
            summary="Replace the approval rules: each a set of criteria that must all match",
            response_model=models.ApprovalRules, responses=problems(403))
def put_approval_rules(body: ApprovalRulesIn, tx: WriteTx, _: Integrators) -> Response:
    return tx.done(carts.set_approval_rules(tx.uow, body))
