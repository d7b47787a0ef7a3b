"""Floor views for the benchmarks: the least a request through the same middleware can cost.
Mounted under /bench/ only when BENCH_FLOOR_VIEWS=1 (never in production)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET


@require_GET
def hello(request: HttpRequest) -> HttpResponse:
    # Touches the user like every real page does, so session and auth middleware do their work.
    return HttpResponse(f"hello {request.user.is_authenticated}", content_type="text/plain")


urlpatterns = [path("hello", hello, name="bench-hello")]
