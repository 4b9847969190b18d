"""Sign-in is rate limited, tokens expire and can be revoked."""
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_token_endpoint_locks_out_after_repeated_wrong_passwords(api_client, settings):
    UserFactory(username="target")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = api_client.post("/api/auth/token/", {"username": "target", "password": "guess"})
        assert response.status_code in (400, 429)
    response = api_client.post("/api/auth/token/", {"username": "target", "password": "pw"})
    assert response.status_code == 429, response.content
    assert "locked" in response.json()["detail"].lower()
    assert not Token.objects.filter(user__username="target").exists()


def test_the_login_page_locks_out_after_repeated_wrong_passwords(client, settings):
    UserFactory(username="target")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "target", "password": "guess"})
    response = client.post("/accounts/login/", {"username": "target", "password": "pw"})
    assert response.status_code == 429
    assert b"locked" in response.content.lower()
    assert "_auth_user_id" not in client.session


def test_a_right_password_after_a_few_wrong_ones_still_signs_in(client, settings):
    UserFactory(username="typo")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": "typo", "password": "guess"})
    response = client.post("/accounts/login/", {"username": "typo", "password": "pw"})
    assert response.status_code == 302
    assert "_auth_user_id" in client.session


def test_an_expired_token_is_refused_and_a_new_one_is_issued(api_client, settings):
    user = UserFactory(username="scripter")
    old = api_client.post("/api/auth/token/", {"username": "scripter", "password": "pw"}).json()["token"]
    Token.objects.filter(key=old).update(created=timezone.now() - timedelta(days=settings.VISION_TOKEN_TTL_DAYS + 1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    response = api_client.get("/api/projects/")
    assert response.status_code in (401, 403)  # 403: session auth comes first, it has no challenge
    assert "expired" in response.json()["detail"]
    api_client.credentials()
    body = api_client.post("/api/auth/token/", {"username": "scripter", "password": "pw"}).json()
    assert body["token"] != old and "expires_at" in body
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert api_client.get("/api/projects/").status_code == 200
    assert Token.objects.get(user=user).key == body["token"]


def test_a_token_is_revoked_through_the_api(api_client):
    UserFactory(username="scripter")
    token = api_client.post("/api/auth/token/", {"username": "scripter", "password": "pw"}).json()["token"]
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api_client.delete("/api/auth/token/").status_code == 204
    assert api_client.get("/api/projects/").status_code in (401, 403)
    assert not Token.objects.filter(key=token).exists()


def test_the_account_page_lists_the_token_and_revokes_it(client):
    user = UserFactory(username="owner")
    token = Token.objects.create(user=user)
    other = Token.objects.create(user=UserFactory(username="someone"))
    client.force_login(user)
    page = client.get("/account/")
    assert page.status_code == 200
    assert token.key[:6].encode() in page.content and b"Revoke" in page.content
    assert other.key[:6].encode() not in page.content
    assert client.post("/account/token/revoke/").status_code == 302
    assert not Token.objects.filter(user=user).exists()
    assert Token.objects.filter(key=other.key).exists()
    assert client.get("/account/token/revoke/").status_code == 405


def test_the_account_page_needs_a_sign_in(client):
    assert client.get("/account/").status_code == 302


def test_an_unknown_token_and_a_deactivated_users_token_are_refused(api_client):
    user = UserFactory(username="leaver")
    token = Token.objects.create(user=user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api_client.get("/api/projects/").status_code == 200
    user.is_active = False
    user.save(update_fields=["is_active"])
    response = api_client.get("/api/projects/")
    assert response.status_code == 401 and "inactive" in response.json()["detail"]
    api_client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    response = api_client.get("/api/projects/")
    assert response.status_code == 401 and "Invalid token" in response.json()["detail"]
