"""A small Django project in one module, served by PyApp in tests/python_django.rs.

Django's own WSGI handler (`get_wsgi_application`) with the views a site has:
text, JSON, a form post, an upload read through `request.body`, a streaming
response, `FileResponse` (which Django hands to `wsgi.file_wrapper`), a cookie,
a 404 and a view that raises.
"""

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="tower-wsgi-tests-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    USE_TZ=True,
    # Django logs a failing view on `django.request`; keep it out of the test output.
    LOGGING_CONFIG=None,
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402


def text(request):
    return HttpResponse("hello from django", content_type="text/plain")


def json_view(request):
    return JsonResponse({"name": request.GET.get("name"), "items": [1, 2, 3]})


def form(request):
    return HttpResponse(f"name={request.POST['name']}, lang={request.POST['lang']}")


def upload(request):
    body = request.body
    return HttpResponse(f"{len(body)} bytes, sum {sum(body)}")


def stream(request):
    n = int(request.GET["n"])
    return StreamingHttpResponse(f"line {i}\n" for i in range(n))


def file(request):
    return FileResponse(open(__file__, "rb"), content_type="text/x-python")


def cookie(request):
    visits = int(request.COOKIES.get("visits", "0"))
    response = HttpResponse(f"visits={visits}")
    response.set_cookie("visits", str(visits + 1))
    return response


def fail(request):
    raise RuntimeError("django view failed on purpose")


urlpatterns = [
    path("text", text),
    path("json", json_view),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
    path("file", file),
    path("cookie", cookie),
    path("fail", fail),
]

application = get_wsgi_application()
