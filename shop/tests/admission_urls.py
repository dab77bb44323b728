"""A URLconf for the admission-control tests: the site's URLs (the busy page links to them) and a
few test views, among them a hot view that blocks until the test lets it go."""

import threading

from django.db import OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.urls import path

from shop.urls import urlpatterns as site_urlpatterns


class Gate:
    """Holds requests inside the blocking view until opened; counts who got in."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.entered = threading.Semaphore(0)

    def wait_for(self, count: int, timeout: float = 10) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=timeout), "a request never reached the view"


gate = Gate()


def gate_reset() -> Gate:
    global gate
    gate = Gate()
    return gate


def blocking(request: HttpRequest) -> HttpResponse:
    current = gate
    current.entered.release()
    assert current.opened.wait(timeout=20), "the test never opened the gate"
    return HttpResponse("done")


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("served")


def pg_sleep(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(2)")
    return HttpResponse("slept")


def database_locked(request: HttpRequest) -> HttpResponse:
    raise OperationalError("database is locked")


def database_broken(request: HttpRequest) -> HttpResponse:
    raise OperationalError("no such table: nowhere")


urlpatterns = [
    path("test-admission/blocking/", blocking, name="test-blocking"),
    path("test-admission/hot/", plain, name="test-hot"),
    path("test-admission/cold/", plain, name="test-cold"),
    path("test-admission/pg-sleep/", pg_sleep, name="test-pg-sleep"),
    path("test-admission/locked/", database_locked, name="test-locked"),
    path("test-admission/broken/", database_broken, name="test-broken"),
    *site_urlpatterns,
]
