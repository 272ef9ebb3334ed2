"""Real TLS handshakes with PostgreSQL and MariaDB sources: servers of the test's own with TLS
on (``tests.sources.tls``: the machine's shared servers are left as they are, and the shared
MariaDB has no TLS), their certificate signed by a CA made for the session and naming only
``localhost``. Whether a connection is encrypted is read from the server's side
(``pg_stat_ssl``, MariaDB's ``Ssl_version``) through the kind's own preview."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from sources.kinds.base import Read, SourceError, SourceKind, StepStatus
from sources.kinds.mysql.kind import MySQLSource
from sources.kinds.postgresql.kind import PostgreSQLSource
from tests.sources.tls import NoServerHere, start_tls_mariadb, start_tls_postgresql

OWN_SESSION = Read(query="SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
OWN_TLS_VERSION = Read(
    query="SELECT VARIABLE_VALUE AS version FROM information_schema.SESSION_STATUS"
    " WHERE VARIABLE_NAME = 'SSL_VERSION'"
)


@pytest.fixture(scope="module")
def server():
    try:
        started = start_tls_postgresql()
    except NoServerHere as reason:
        pytest.skip(f"no PostgreSQL server with TLS can be started here: {reason}")
    yield started
    started.stop()


def encryption(kind: PostgreSQLSource) -> tuple[bool, str]:
    """Whether the server sees this connection encrypted, and with which protocol."""
    _columns, rows = kind.preview(OWN_SESSION)
    assert len(rows) == 1
    return rows[0]


def refusal(kind: SourceKind) -> str:
    with pytest.raises(SourceError) as refused:
        kind.columns(Read(query="SELECT 1"))
    return str(refused.value)


def test_require_encrypts_the_connection(server):
    encrypted, version = encryption(PostgreSQLSource(server.settings(sslmode="require")))
    assert encrypted is True
    assert version.startswith("TLSv1.")


def test_prefer_encrypts_when_the_server_offers_tls(server):
    assert encryption(PostgreSQLSource(server.settings(sslmode="prefer")))[0] is True


def test_disable_reads_in_plain_text_even_from_a_server_with_tls(server):
    assert encryption(PostgreSQLSource(server.settings(sslmode="disable"))) == (False, None)


def test_verify_full_refuses_a_server_whose_certificate_another_ca_signed(server):
    other = str(server.certificates.other_ca)
    kind = PostgreSQLSource(server.settings(sslmode="verify-full", sslrootcert=other))
    assert refusal(kind) == (
        "The certificate of the server at “127.0.0.1” was not signed by the authority in the "
        f"CA certificate file “{other}”, so it is not trusted. Give the CA certificate of the "
        "authority that signed it."
    )


def test_verify_ca_refuses_a_server_whose_certificate_another_ca_signed(server):
    other = str(server.certificates.other_ca)
    kind = PostgreSQLSource(server.settings(sslmode="verify-ca", sslrootcert=other))
    assert "was not signed by the authority in the CA certificate file" in refusal(kind)


def test_verify_full_with_the_ca_that_signed_connects_by_the_certificates_name(server):
    settings = server.settings(sslmode="verify-full", sslrootcert=str(server.certificates.ca))
    kind = PostgreSQLSource({**settings, "host": "localhost"})
    assert encryption(kind)[0] is True


def test_verify_full_refuses_a_name_the_certificate_does_not_give(server):
    kind = PostgreSQLSource(
        server.settings(sslmode="verify-full", sslrootcert=str(server.certificates.ca))
    )
    message = refusal(kind)
    assert message.startswith("The server's certificate is not for the name “127.0.0.1” (")
    assert 'server certificate for "localhost"' in message
    assert message.endswith(
        "Connect with a name the certificate gives, or choose verify-ca to check only who "
        "signed it."
    )


def test_verify_ca_checks_who_signed_the_certificate_and_not_the_name(server):
    kind = PostgreSQLSource(
        server.settings(sslmode="verify-ca", sslrootcert=str(server.certificates.ca))
    )
    assert encryption(kind)[0] is True


def test_verify_full_without_a_ca_file_trusts_only_the_systems_authorities(server):
    kind = PostgreSQLSource({**server.settings(sslmode="verify-full"), "host": "localhost"})
    assert refusal(kind) == (
        "The certificate of the server at “localhost” was not signed by an authority this "
        "system trusts. Give the CA certificate file of the authority that signed it."
    )


def test_a_ca_file_that_is_not_there_is_named(server):
    kind = PostgreSQLSource(
        server.settings(sslmode="verify-full", sslrootcert="/nonexistent/crm-ca.pem")
    )
    assert refusal(kind) == (
        "The CA certificate file “/nonexistent/crm-ca.pem” could not be read: root certificate "
        'file "/nonexistent/crm-ca.pem" does not exist'
    )


def test_the_connection_test_passes_every_step_over_verified_tls(server):
    settings = server.settings(sslmode="verify-full", sslrootcert=str(server.certificates.ca))
    steps = PostgreSQLSource({**settings, "host": "localhost"}).test(OWN_SESSION)
    assert [step.status for step in steps] == [StepStatus.PASSED] * 3


# The shared server, where Debian's default configuration gives it TLS -------------------------

SNAKEOIL = Path("/etc/ssl/certs/ssl-cert-snakeoil.pem")


@pytest.fixture
def shared_server_with_snakeoil() -> dict[str, object]:
    """The test database's server, when it has ``ssl = on`` with Debian's self-signed
    "snakeoil" certificate (named after the machine, not 127.0.0.1)."""
    if not os.access(SNAKEOIL, os.R_OK):
        pytest.skip(f"{SNAKEOIL} is not on this machine (or not readable)")
    own = settings.DATABASES["default"]
    details = {
        "host": own["HOST"] or "127.0.0.1",
        "port": int(own["PORT"] or 5432),
        "database": own["NAME"],
        "user": own["USER"],
    }
    with psycopg.connect(
        host=details["host"],
        port=details["port"],
        user=details["user"],
        password=own["PASSWORD"] or None,
        dbname=own["NAME"],
    ) as connection:
        ssl_setting = connection.execute("SHOW ssl").fetchone()
    if not ssl_setting or ssl_setting[0] != "on":
        pytest.skip("the shared PostgreSQL server has ssl = off (its configuration is not ours)")
    return details


def test_the_shared_servers_self_signed_certificate_is_its_own_ca(shared_server_with_snakeoil):
    kind = PostgreSQLSource(
        {**shared_server_with_snakeoil, "sslmode": "verify-ca", "sslrootcert": str(SNAKEOIL)},
        {"password": settings.DATABASES["default"]["PASSWORD"] or ""},
    )
    assert encryption(kind)[0] is True


def test_the_shared_servers_self_signed_certificate_does_not_name_its_address(
    shared_server_with_snakeoil,
):
    kind = PostgreSQLSource(
        {**shared_server_with_snakeoil, "sslmode": "verify-full", "sslrootcert": str(SNAKEOIL)},
        {"password": settings.DATABASES["default"]["PASSWORD"] or ""},
    )
    assert refusal(kind).startswith("The server's certificate is not for the name")


# MariaDB ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mariadb():
    try:
        started = start_tls_mariadb()
    except NoServerHere as reason:
        pytest.skip(f"no MariaDB server with TLS can be started here: {reason}")
    yield started
    started.stop()


def tls_version(kind: MySQLSource) -> str:
    """The TLS version the server sees this connection use ("" in plain text)."""
    _columns, rows = kind.preview(OWN_TLS_VERSION)
    assert len(rows) == 1
    return rows[0][0]


@pytest.mark.parametrize("mode", ["required", "preferred"])
def test_mariadb_required_and_preferred_encrypt_the_connection(mariadb, mode):
    assert tls_version(MySQLSource(mariadb.settings(ssl_mode=mode))).startswith("TLSv1.")


def test_mariadb_disabled_reads_in_plain_text_even_from_a_server_with_tls(mariadb):
    assert tls_version(MySQLSource(mariadb.settings(ssl_mode="disabled"))) == ""


@pytest.mark.parametrize("mode", ["verify_ca", "verify_identity"])
def test_mariadb_verify_refuses_a_server_whose_certificate_another_ca_signed(mariadb, mode):
    other = str(mariadb.certificates.other_ca)
    kind = MySQLSource(mariadb.settings(ssl_mode=mode, ssl_ca=other))
    assert refusal(kind) == (
        "The certificate of the server at “127.0.0.1” was not signed by the authority in the "
        f"CA certificate file “{other}”, so it is not trusted. Give the CA certificate of the "
        "authority that signed it."
    )


def test_mariadb_verify_ca_checks_who_signed_the_certificate_and_not_the_name(mariadb):
    kind = MySQLSource(mariadb.settings(ssl_mode="verify_ca", ssl_ca=str(mariadb.certificates.ca)))
    assert tls_version(kind).startswith("TLSv1.")


def test_mariadb_verify_identity_refuses_a_name_the_certificate_does_not_give(mariadb):
    kind = MySQLSource(
        mariadb.settings(ssl_mode="verify_identity", ssl_ca=str(mariadb.certificates.ca))
    )
    assert refusal(kind) == (
        "The server's certificate is not for the name “127.0.0.1” (IP address mismatch, "
        "certificate is not valid for '127.0.0.1'). Connect with a name the certificate "
        "gives, or choose verify_ca to check only who signed it."
    )


def test_mariadb_verify_identity_connects_by_the_certificates_name(mariadb):
    settings = mariadb.settings(ssl_mode="verify_identity", ssl_ca=str(mariadb.certificates.ca))
    steps = MySQLSource({**settings, "host": "localhost"}).test(OWN_TLS_VERSION)
    assert [step.status for step in steps] == [StepStatus.PASSED] * 3


def test_mariadb_verify_identity_without_a_ca_file_trusts_only_the_systems_authorities(mariadb):
    kind = MySQLSource({**mariadb.settings(ssl_mode="verify_identity"), "host": "localhost"})
    assert refusal(kind) == (
        "The certificate of the server at “localhost” was not signed by an authority this "
        "system trusts. Give the CA certificate file of the authority that signed it."
    )
