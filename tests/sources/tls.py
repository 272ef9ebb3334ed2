"""Real TLS servers for the source tests: certificates made for the session, and a PostgreSQL
server of the test's own (``initdb`` in a temporary folder, ``ssl = on`` with those
certificates, on a free port). The machine's shared server is never reconfigured.

The server's certificate is signed by ``ca`` and names only ``localhost``: a client that
connects to 127.0.0.1 and checks the name must refuse it. ``other_ca`` signed nothing the
server shows."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_NAME = "localhost"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    other_ca: Path
    server_cert: Path
    server_key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _authority(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def make_certificates(folder: Path) -> Certificates:
    """A CA, a server certificate it signed for ``localhost`` (and no IP address), and a
    second CA that signed nothing here."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = _authority("Audience Relay test CA")
    other, _other_key = _authority("Someone else's CA")
    key = _key()
    now = dt.datetime.now(dt.UTC)
    server = (
        x509.CertificateBuilder()
        .subject_name(_name(SERVER_NAME))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    found = Certificates(
        ca=folder / "ca.pem",
        other_ca=folder / "other-ca.pem",
        server_cert=folder / "server.pem",
        server_key=folder / "server.key",
    )
    found.ca.write_bytes(_pem(ca))
    found.other_ca.write_bytes(_pem(other))
    found.server_cert.write_bytes(_pem(server))
    found.server_key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    found.server_key.chmod(0o600)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class NoServerHere(Exception):
    """This machine cannot start a server of its own (the reason is the message)."""


# PostgreSQL ------------------------------------------------------------------------------------


def postgresql_binaries() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: the newest installed PostgreSQL's, else the
    ones on the PATH."""
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if installed:
        return installed[0].parent
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    raise NoServerHere("no PostgreSQL server programs (initdb, pg_ctl) on this machine")


@dataclass
class TLSPostgreSQL:
    """A PostgreSQL server with ``ssl = on``: user ``postgres`` without a password."""

    folder: Path
    port: int
    certificates: Certificates
    _as_user: list[str]
    _bin: Path

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def settings(self, **tls: str) -> dict[str, object]:
        """A PostgreSQL source's connection settings for this server."""
        return {
            "host": "127.0.0.1",
            "port": self.port,
            "database": "postgres",
            "user": "postgres",
            **tls,
        }

    def _run(self, *command: str) -> None:
        done = subprocess.run(
            [*self._as_user, *command], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stderr or done.stdout}")

    def stop(self) -> None:
        try:
            self._run(str(self._bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_tls_postgresql() -> TLSPostgreSQL:
    """Initialise and start the server in a temporary folder (a few seconds). PostgreSQL
    refuses to run as root: as root, it runs as the ``postgres`` user, which then owns the
    folder (made under the system's temporary folder, which that user can reach)."""
    binaries = postgresql_binaries()
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("runuser"):
            raise NoServerHere("running as root without runuser to start PostgreSQL as postgres")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise NoServerHere("running as root and there is no postgres user") from None
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="audience-relay-tls-postgresql-"))
    certificates = make_certificates(folder / "tls")
    server = TLSPostgreSQL(folder, free_port(), certificates, as_user, binaries)
    if as_user:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o700)
    try:
        server._run(
            str(binaries / "initdb"),
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        )
        options = " ".join(
            [
                f"-c port={server.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={folder}",
                "-c ssl=on",
                f"-c ssl_cert_file={certificates.server_cert}",
                f"-c ssl_key_file={certificates.server_key}",
                "-c fsync=off",
                "-c shared_buffers=16MB",
                "-c max_connections=20",
            ]
        )
        server._run(
            str(binaries / "pg_ctl"),
            "start",
            "-D",
            str(server.data),
            "-w",
            "-t",
            "60",
            "-l",
            str(folder / "server.log"),
            "-o",
            options,
        )
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server


# MariaDB / MySQL -------------------------------------------------------------------------------


def mariadb_server_program() -> Path:
    for name in ("mariadbd", "mysqld"):
        for folder in ("/usr/sbin", "/usr/libexec", "/usr/local/bin"):
            if (Path(folder) / name).is_file():
                return Path(folder) / name
        if found := shutil.which(name):
            return Path(found)
    raise NoServerHere("no MariaDB or MySQL server program (mariadbd, mysqld) on this machine")


@dataclass
class TLSMariaDB:
    """A MariaDB server with TLS on an empty data folder, without grant tables (any user
    name and password gets in): only what a TLS handshake and a read need."""

    folder: Path
    port: int
    certificates: Certificates
    process: subprocess.Popen

    def settings(self, **tls: str) -> dict[str, object]:
        """A MySQL source's connection settings for this server."""
        return {"host": "127.0.0.1", "port": self.port, "user": "reader", **tls}

    def stop(self) -> None:
        try:
            self.process.terminate()
            self.process.wait(timeout=60)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def start_tls_mariadb() -> TLSMariaDB:
    """Start the server in a temporary folder (about a second)."""
    program = mariadb_server_program()
    folder = Path(tempfile.mkdtemp(prefix="audience-relay-tls-mariadb-"))
    certificates = make_certificates(folder / "tls")
    (folder / "data").mkdir()
    port = free_port()
    process = subprocess.Popen(
        [
            str(program),
            "--no-defaults",
            f"--datadir={folder / 'data'}",
            *(["--user=root"] if os.geteuid() == 0 else []),  # it refuses root unless told
            "--skip-grant-tables",
            "--bind-address=127.0.0.1",
            f"--port={port}",
            f"--socket={folder / 'server.sock'}",
            f"--pid-file={folder / 'server.pid'}",
            f"--log-error={folder / 'server.log'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=8M",
            "--innodb-log-file-size=4M",
            "--performance-schema=OFF",
            f"--ssl-cert={certificates.server_cert}",
            f"--ssl-key={certificates.server_key}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = TLSMariaDB(folder, port, certificates, process)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (folder / "server.log").read_text(errors="replace")[-2000:]
            server.stop()
            raise RuntimeError(f"{program.name} stopped at start: {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{program.name} did not listen on port {port} within 60 seconds")
