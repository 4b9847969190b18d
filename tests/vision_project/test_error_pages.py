"""Errors answer with our own short pages: nothing of the settings or the code shows."""
import pytest
from django.test import Client
from django.urls import include, path


def _broken(request):
    raise RuntimeError("SECRET-INTERNAL-DETAIL")


urlpatterns = [path("broken/", _broken), path("", include("vision_project.urls"))]


@pytest.mark.django_db
def test_a_server_error_shows_a_plain_page_without_details(settings):
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/broken/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Server error" in body and "SECRET-INTERNAL-DETAIL" not in body and "Traceback" not in body


@pytest.mark.django_db
def test_a_missing_page_says_so_and_links_home(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body and 'href="/"' in body


def test_debug_is_off_unless_asked_for(monkeypatch):
    import importlib

    import vision_project.settings as settings_module

    monkeypatch.delenv("DEBUG", raising=False)
    assert importlib.reload(settings_module).DEBUG is False
    monkeypatch.setenv("DEBUG", "1")
    assert importlib.reload(settings_module).DEBUG is True
    monkeypatch.delenv("DEBUG")
    importlib.reload(settings_module)
