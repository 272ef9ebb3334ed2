from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses

from webhooks import addresses, http


@pytest.fixture
def local_receiver():
    """An HTTP server on 127.0.0.1 that answers 204 and keeps the Host header of each POST."""
    hosts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            hosts.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hosts
    finally:
        server.shutdown()
        server.server_close()


def test_nothing_is_sent_to_an_address_inside_the_network(dns):
    dns.answers["intranet.example.com"] = ["10.0.0.5"]

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post("https://intranet.example.com/in", status=204)
        with pytest.raises(addresses.AddressRefused, match=r"own network \(10\.0\.0\.5\)"):
            http.post("https://intranet.example.com/in", body=b"{}", headers={})

        assert len(mock.calls) == 0


def test_the_connection_goes_to_the_address_that_was_checked(settings, dns, local_receiver):
    """A second lookup could answer differently (DNS rebinding): there is none."""
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True
    port, hosts = local_receiver
    dns.answers["receiver.example.com"] = ["127.0.0.1"]
    url = f"http://receiver.example.com:{port}/hooks"

    with http.post(url, body=b"{}", headers={}) as response:
        assert response.status_code == 204

    assert dns.lookups.count("receiver.example.com") == 1
    assert hosts == [f"receiver.example.com:{port}"]


def test_a_closed_port_is_a_connection_error(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = True

    with pytest.raises(http.requests.ConnectionError):
        http.post("http://127.0.0.1:9/hooks", body=b"{}", headers={})
