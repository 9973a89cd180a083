"""An order's receipt as a page to print or show (HTML) and as plain text (a receipt
printer, an email), from oms.services.receipts; the templates are in `templates/`."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

_LOADER = PackageLoader("oms.api", "templates")
_HTML = Environment(loader=_LOADER, autoescape=True, undefined=StrictUndefined,
                    trim_blocks=True, lstrip_blocks=True)
_TEXT = Environment(loader=_LOADER, autoescape=False, undefined=StrictUndefined,
                    trim_blocks=True, lstrip_blocks=True)


def html(receipt: dict[str, Any]) -> str:
    return _HTML.get_template("receipt.html").render(r=receipt)


def text(receipt: dict[str, Any]) -> str:
    return _TEXT.get_template("receipt.txt").render(r=receipt)
