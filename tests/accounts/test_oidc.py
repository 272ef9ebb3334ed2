"""Single sign-on against a local OpenID Connect provider: groups give the role."""

from __future__ import annotations

import pytest
import requests
from django.contrib.auth.models import User
from django.urls import reverse

from accounts.models import SingleSignOnLink
from accounts.roles import Role, role_of
from tests.accounts.oidc_provider import running_provider

pytestmark = pytest.mark.django_db

CLIENT_ID, CLIENT_SECRET = "audience-relay", "oidc-client-secret-42"


@pytest.fixture
def provider(settings):
    with running_provider(CLIENT_ID, CLIENT_SECRET) as provider:
        settings.OIDC_ENABLED = True
        settings.OIDC_RP_CLIENT_ID = CLIENT_ID
        settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
        settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{provider.base_url}/authorize"
        settings.OIDC_OP_TOKEN_ENDPOINT = f"{provider.base_url}/token"
        settings.OIDC_OP_USER_ENDPOINT = f"{provider.base_url}/userinfo"
        settings.OIDC_OP_JWKS_ENDPOINT = f"{provider.base_url}/jwks"
        settings.OIDC_ROLE_GROUPS = {
            "administrator": ["ar-admins"],
            "contributor": ["marketing"],
            "viewer": ["everyone"],
        }
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "accounts.oidc.RoleMappingBackend",
        ]
        provider.claims = {
            "sub": "ingrid-at-the-provider",
            "email": "ingrid@example.no",
            "email_verified": True,
            "preferred_username": "ingrid",
            "given_name": "Ingrid",
            "groups": ["everyone", "marketing"],
        }
        yield provider


def sign_in(client):
    """Follow the browser's round trip: our start page, the provider, our callback."""
    start = client.get(reverse("sso:start"))
    assert start.status_code == 302
    back = requests.get(start.url, allow_redirects=False, timeout=10)
    assert back.status_code == 302, back.text
    callback = back.headers["Location"]
    assert callback.startswith("http://testserver/sso/callback/")
    return client.get(callback.removeprefix("http://testserver"))


def test_a_new_user_is_created_with_the_role_of_their_groups(client, provider):
    response = sign_in(client)
    assert response.status_code == 302 and response.url == reverse("segments:list")
    user = User.objects.get(username="ingrid")
    assert user.email == "ingrid@example.no" and user.first_name == "Ingrid"
    assert role_of(user) == Role.CONTRIBUTOR
    assert client.get(reverse("segments:list")).status_code == 200


def test_the_role_follows_the_provider_at_each_login(client, provider, alice):
    sign_in(client)
    client.logout()
    provider.claims["groups"] = ["ar-admins"]
    sign_in(client)
    assert role_of(User.objects.get(username="ingrid")) == Role.ADMINISTRATOR


def test_a_local_user_with_the_same_email_is_the_same_user(client, provider, charlie):
    charlie.email = "Ingrid@Example.no"
    charlie.save()
    sign_in(client)
    assert int(client.session["_auth_user_id"]) == charlie.pk
    assert role_of(User.objects.get(pk=charlie.pk)) == Role.CONTRIBUTOR


def test_an_unverified_address_does_not_match_a_local_user(client, provider, alice, caplog):
    """Else anyone who can put an administrator's address on a provider account is them."""
    alice.email = "ingrid@example.no"
    alice.save()
    provider.claims["email_verified"] = False
    response = sign_in(client)
    assert "sso=failed" in response.url
    assert "_auth_user_id" not in client.session
    assert not SingleSignOnLink.objects.exists()
    assert "not verified" in caplog.text


@pytest.mark.parametrize("verified", [None, "false", "yes", 1])
def test_only_a_verified_true_counts_as_verified(client, provider, charlie, verified):
    charlie.email = "ingrid@example.no"
    charlie.save()
    provider.claims.pop("email_verified")
    if verified is not None:
        provider.claims["email_verified"] = verified
    assert "sso=failed" in sign_in(client).url


def test_once_linked_the_provider_subject_finds_the_user_whatever_the_address(
    client, provider, charlie
):
    charlie.email = "ingrid@example.no"
    charlie.save()
    sign_in(client)
    client.logout()
    link = SingleSignOnLink.objects.get()
    assert (link.user, link.issuer, link.subject) == (
        charlie,
        provider.base_url,
        "ingrid-at-the-provider",
    )
    provider.claims.update({"email": "ingrid.new@example.no", "email_verified": False})
    sign_in(client)
    assert int(client.session["_auth_user_id"]) == charlie.pk


def test_a_new_user_with_an_unverified_address_is_created_and_linked(client, provider):
    provider.claims["email_verified"] = False
    sign_in(client)
    client.logout()
    sign_in(client)
    user = User.objects.get(username="ingrid")
    assert int(client.session["_auth_user_id"]) == user.pk
    assert SingleSignOnLink.objects.get().user == user


def test_another_subject_with_the_same_verified_address_is_refused_once_linked(
    client, provider, charlie
):
    """A linked user is the provider account it was linked to; a second one is suspicious."""
    charlie.email = "ingrid@example.no"
    charlie.save()
    sign_in(client)
    client.logout()
    provider.claims["sub"] = "someone-else-at-the-provider"
    response = sign_in(client)
    assert "sso=failed" in response.url
    assert "_auth_user_id" not in client.session


def test_user_info_about_another_subject_than_the_id_token_is_refused(client, provider):
    provider.userinfo_claims = {"sub": "someone-else"}
    response = sign_in(client)
    assert "sso=failed" in response.url
    assert not User.objects.filter(username="ingrid").exists()


def test_someone_in_no_mapped_group_is_not_let_in(client, provider):
    provider.claims["groups"] = ["sales"]
    response = sign_in(client)
    assert response.status_code == 302 and "sso=failed" in response.url
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="ingrid").exists()
    page = client.get(response.url)
    assert b"Single sign-on did not log you in" in page.content


def test_a_deactivated_user_is_not_let_in(client, provider, charlie):
    charlie.email, charlie.is_active = "ingrid@example.no", False
    charlie.save()
    response = sign_in(client)
    assert "sso=failed" in response.url
    assert "_auth_user_id" not in client.session


def test_a_token_issued_for_another_client_is_refused(client, provider):
    provider.audience = "someone-else"
    response = sign_in(client)
    assert "sso=failed" in response.url
    assert "_auth_user_id" not in client.session


def test_the_login_page_offers_single_sign_on_only_when_set_up(client, settings):
    settings.OIDC_ENABLED = False
    assert b"Log in with single sign-on" not in client.get(reverse("accounts:login")).content
    assert client.get(reverse("sso:start")).url == reverse("accounts:login")
    settings.OIDC_ENABLED = True
    assert b"Log in with single sign-on" in client.get(reverse("accounts:login")).content
