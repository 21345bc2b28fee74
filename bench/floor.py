"""The true floor: the least a Django WSGI app can do per request on the bench database.

No middleware, no installed apps, one URL whose view runs `SELECT 1` on the same database with
the project's connection settings. `make bench` serves it with the same gunicorn workers as the
portal, on another port, so the portal's figures can be read against it.
"""

import os

import dj_database_url
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def floor(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [path("floor", floor)]

if not settings.configured:
    database = dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    )
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-floor-not-secret",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={"default": database},
        USE_TZ=True,
    )

application = get_wsgi_application()
