from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db

from connections import services
from connections.models import Connection
from core import crypto
from tests.connections.factories import API_KEY, ConnectionFactory


def test_it_round_trips_a_mapping():
    secret = {"api_key": API_KEY, "nested": {"n": 1}}
    token = crypto.encrypt_json(secret)
    assert API_KEY not in token
    assert crypto.decrypt_json(token) == secret


def test_an_empty_token_means_no_secrets():
    assert crypto.decrypt_json("") == {}


def test_an_old_key_still_decrypts_after_a_new_key_is_put_in_front(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [old_key]
    token = crypto.encrypt_json({"api_key": API_KEY})
    settings.FIELD_ENCRYPTION_KEY = [new_key, old_key]
    assert crypto.decrypt_json(token) == {"api_key": API_KEY}
    rotated = crypto.reencrypt(token)
    settings.FIELD_ENCRYPTION_KEY = [new_key]
    assert crypto.decrypt_json(rotated) == {"api_key": API_KEY}
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_json(token)


def test_a_token_from_an_unknown_key_is_refused_with_a_clear_error(settings):
    token = crypto.encrypt_json({"api_key": API_KEY})
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    with pytest.raises(crypto.DecryptionError, match="FIELD_ENCRYPTION_KEY"):
        crypto.decrypt_json(token)


@pytest.mark.django_db
def test_the_database_column_holds_no_plaintext():
    connection = ConnectionFactory()
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_credentials FROM connections_connection WHERE id = %s",
            [connection.pk],
        )
        (stored,) = cursor.fetchone()
    assert stored and API_KEY not in stored and "api_key" not in stored
    assert services.DatabaseCredentialStore(connection.pk).load() == {"api_key": API_KEY}


@pytest.mark.django_db
def test_rotating_keys_re_encrypts_every_connection(settings):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEY = [old_key]
    first, second = ConnectionFactory(), ConnectionFactory(campaign_monitor=True)
    settings.FIELD_ENCRYPTION_KEY = [new_key, old_key]
    assert services.credentials_reencrypt_all() == 2
    settings.FIELD_ENCRYPTION_KEY = [new_key]
    assert services.DatabaseCredentialStore(first.pk).load() == {"api_key": API_KEY}
    assert "access_token" in services.DatabaseCredentialStore(second.pk).load()
    assert Connection.objects.count() == 2


@pytest.mark.django_db
def test_credentials_under_a_removed_key_make_the_connection_need_re_authentication(settings):
    from connections.types.base import StepStatus

    connection = ConnectionFactory()
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    steps = services.connection_test(connection_id=connection.pk)
    assert steps[0].status == StepStatus.FAILED
    assert "encryption key" in steps[0].message
    connection.refresh_from_db()
    assert connection.status == Connection.Status.NEEDS_REAUTHENTICATION
