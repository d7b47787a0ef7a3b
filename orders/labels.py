"""Printable package labels: one 4×6 inch label per package, with a QR code of its label code."""

from dataclasses import dataclass

import segno
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_GET

from orders.access import get_order_for_staff
from orders.models import Package


@dataclass(frozen=True)
class Label:
    package: Package
    qr_svg: SafeString


def qr_svg(code: str) -> SafeString:
    """An inline SVG QR code sized by CSS. Full-size QR (not Micro QR, which many label
    scanners cannot read); segno writes presentation attributes only, never style="" (CSP)."""
    svg = segno.make(code, error="m", micro=False).svg_inline(
        omitsize=True, border=4, svgclass="label-qr", lineclass="label-qr-line"
    )
    label = escape(f"QR code for label {code}")
    return mark_safe(svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1))  # noqa: S308


@require_GET
@login_required
def order_labels(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_order_for_staff(request, pk)
    packages = list(order.packages.order_by("sequence"))
    context = {
        "order": order,
        "store": order.store,
        "mall": order.store.mall,
        "mall_tz": order.store.mall.tz,
        "labels": [Label(package=package, qr_svg=qr_svg(package.label_code)) for package in packages],
        "package_total": len(packages),
    }
    return render(request, "store/labels.html", context)
