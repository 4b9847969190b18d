"""Pages carry a Content-Security-Policy that allows only our own scripts."""
import re

import pytest

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part for part in (p.strip() for p in header.split(";")) if part}


@pytest.mark.parametrize("url", ["/accounts/login/", "/", "/account/", "/api/docs/"])
def test_pages_allow_only_our_own_scripts(client, url):
    client.force_login(UserFactory(username="viewer"))
    response = client.get(url)
    assert response.status_code == 200
    policy = _directives(response)
    assert policy["script-src"] == "script-src 'self'"
    assert policy["object-src"] == "object-src 'none'"
    assert policy["frame-ancestors"] == "frame-ancestors 'none'"
    assert "'unsafe-inline'" not in policy.get("default-src", "")


def test_the_api_docs_page_has_no_inline_script(client):
    client.force_login(UserFactory(username="viewer"))
    html = client.get("/api/docs/").content.decode()
    inline = [s for s in re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S) if s[1].strip()]
    assert inline == []
