"""The delivery photo as the marketplace fetches it: `proof.photo_url` of the order
representation is a signed URL that expires PROOF_URL_DAYS after the delivery.

The photo itself stays in the default storage (`drivers.RouteStop.photo`, under `proof/`), which
is not served publicly; this view serves one file to whoever holds a valid link. The signature
(Django's signing with SECRET_KEY and its own salt) covers the file name and the expiry, so a link
cannot be changed to reach another file or to live longer. The URL depends only on the photo and
the delivery time: every answer (GET, replay, feed, webhook) gives the same one."""

import datetime as dt
import mimetypes
import time

from django.conf import settings
from django.core import signing
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

PROOF_URL_DAYS = 30
_SALT = "mallrun.orders.proof-photo"
_PREFIX = "proof/"


def proof_photo_url(photo_name: str, delivered_at: dt.datetime) -> str:
    expires = int(delivered_at.timestamp()) + PROOF_URL_DAYS * 86400
    token = signing.Signer(salt=_SALT).sign_object({"p": photo_name, "e": expires})
    return f"{settings.PORTAL_BASE_URL}/proof/{token}"


@require_GET
def proof_photo(request: HttpRequest, token: str) -> HttpResponse:
    """One proof photo for a valid, unexpired link: 404 for anything else, 410 once expired."""
    try:
        signed = signing.Signer(salt=_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        raise Http404("No such photo.") from None
    name, expires = signed.get("p"), signed.get("e")
    if not isinstance(name, str) or not name.startswith(_PREFIX) or not isinstance(expires, int):
        raise Http404("No such photo.")
    if expires < time.time():
        return HttpResponse("This link has expired.", status=410, content_type="text/plain; charset=utf-8")
    try:
        photo = default_storage.open(name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("No such photo.") from None
    content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    response = FileResponse(photo, content_type=content_type)
    response["Cache-Control"] = "private, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response
