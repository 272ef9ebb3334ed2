"""TLS options reach the drivers as chosen: the arguments each kind builds for its driver, and,
against the shared local servers (which have no TLS), that a server without TLS is refused
when TLS is required (and used without when it is only preferred). Real handshakes with a
server that has TLS: ``test_tls_handshake``."""

from __future__ import annotations

import ssl

import certifi
import pytest

from sources.kinds.base import Read, SourceError
from sources.kinds.mysql.kind import MySQLSource
from sources.kinds.postgresql.forms import PostgreSQLSettingsForm
from sources.kinds.postgresql.kind import SSL_MODES, PostgreSQLSource

pytestmark = pytest.mark.django_db

SERVER = {"host": "db.example.com", "port": 5432, "database": "crm", "user": "reader"}


# PostgreSQL: libpq's sslmode and sslrootcert --------------------------------------------------


@pytest.mark.parametrize("mode", [mode for mode in SSL_MODES if not mode.startswith("verify")])
def test_postgresql_passes_the_tls_mode_to_libpq(mode):
    arguments = PostgreSQLSource({**SERVER, "sslmode": mode}).connection_arguments()
    assert arguments["sslmode"] == mode
    assert "sslrootcert" not in arguments


def test_postgresql_verify_full_without_a_ca_file_trusts_the_systems_authorities():
    arguments = PostgreSQLSource({**SERVER, "sslmode": "verify-full"}).connection_arguments()
    assert (arguments["sslmode"], arguments["sslrootcert"]) == ("verify-full", "system")


def test_postgresql_verify_ca_without_a_ca_file_is_refused_before_connecting():
    with pytest.raises(SourceError) as refused:
        PostgreSQLSource({**SERVER, "sslmode": "verify-ca"}).connection_arguments()
    assert str(refused.value).startswith("verify-ca checks the server's certificate against a CA")


def test_postgresql_form_asks_for_the_ca_file_with_verify_ca():
    fields = {**SERVER, "password": "", "sslmode": "verify-ca", "sslrootcert": ""}
    form = PostgreSQLSettingsForm(fields)
    assert not form.is_valid()
    assert form.errors["sslrootcert"][0].startswith("verify-ca checks the server's certificate")
    assert PostgreSQLSettingsForm({**fields, "sslrootcert": "/etc/ssl/crm-ca.pem"}).is_valid()


def test_postgresql_prefers_tls_when_no_mode_is_chosen():
    assert PostgreSQLSource(SERVER).connection_arguments()["sslmode"] == "prefer"


def test_postgresql_checks_the_certificate_against_the_ca_file_given():
    arguments = PostgreSQLSource(
        {**SERVER, "sslmode": "verify-full", "sslrootcert": "/etc/ssl/crm-ca.pem"}
    ).connection_arguments()
    assert (arguments["sslmode"], arguments["sslrootcert"]) == (
        "verify-full",
        "/etc/ssl/crm-ca.pem",
    )


@pytest.mark.parametrize("mode", ["require", "verify-full"])
def test_postgresql_without_tls_is_refused_when_tls_is_required(postgresql_place, mode):
    kind = PostgreSQLSource({**postgresql_place.connection_settings, "sslmode": mode})
    with pytest.raises(SourceError) as refused:
        kind.columns(_people())
    assert str(refused.value) == (
        f"The server at “127.0.0.1” does not offer TLS, which the TLS setting “{mode}” "
        "requires: the password was not sent. Turn TLS on at the server, or choose another "
        "TLS setting."
    )


def test_postgresql_without_tls_is_read_when_tls_is_only_preferred(postgresql_place):
    postgresql_place.write([])
    kind = PostgreSQLSource({**postgresql_place.connection_settings, "sslmode": "prefer"})
    assert [column.name for column in kind.columns(_people())][:2] == ["id", "customer"]


# MySQL / MariaDB: an SSL context PyMySQL requires, or its own "preferred" ----------------------


def mysql(mode: str | None = None, ca: str = "") -> MySQLSource:
    settings = {**SERVER, "port": 3306}
    if mode:
        settings["ssl_mode"] = mode
    if ca:
        settings["ssl_ca"] = ca
    return MySQLSource(settings)


def test_mysql_disabled_never_tries_tls():
    arguments = mysql("disabled").connection_arguments()
    assert (arguments["ssl"], arguments["ssl_disabled"]) == (None, True)


@pytest.mark.parametrize("mode", [None, "preferred"])
def test_mysql_preferred_leaves_tls_to_pymysqls_preferred_mode(mode):
    arguments = mysql(mode).connection_arguments()
    assert (arguments["ssl"], arguments["ssl_disabled"]) == (None, False)


def test_mysql_required_encrypts_without_checking_the_certificate():
    context = mysql("required").connection_arguments()["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)


def test_mysql_verify_ca_checks_the_certificate_against_the_ca_file_only():
    context = mysql("verify_ca", ca=certifi.where()).connection_arguments()["ssl"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, False)
    assert context.get_ca_certs()  # the file's authorities are loaded


@pytest.mark.parametrize("ca", ["", certifi.where()])
def test_mysql_verify_identity_checks_the_host_name_with_or_without_a_ca_file(ca):
    context = mysql("verify_identity", ca=ca).connection_arguments()["ssl"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


def test_mysql_a_missing_ca_file_is_named():
    with pytest.raises(SourceError) as refused:
        mysql("verify_ca", ca="/nonexistent/ca.pem").connection_arguments()
    assert "The CA certificate file “/nonexistent/ca.pem” could not be read" in str(refused.value)


@pytest.mark.parametrize("mode", ["required", "verify_ca", "verify_identity"])
def test_mysql_without_tls_is_refused_when_tls_is_required(mysql_place, mode):
    kind = MySQLSource({**mysql_place.connection_settings, "ssl_mode": mode})
    with pytest.raises(SourceError) as refused:
        kind.columns(_people())
    assert str(refused.value) == (
        f"The server at “{mysql_place.connection_settings['host']}” does not offer TLS, which "
        f"the TLS setting “{mode}” requires: the password was not sent. Turn TLS on at the "
        "server, or choose another TLS setting."
    )


def test_mysql_without_tls_is_read_when_tls_is_only_preferred(mysql_place):
    mysql_place.write([])
    kind = MySQLSource({**mysql_place.connection_settings, "ssl_mode": "preferred"})
    assert [column.name for column in kind.columns(_people())][:2] == ["id", "customer"]


def _people() -> Read:
    return Read(table="people")
