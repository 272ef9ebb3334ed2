"""Container healthcheck: exit 0 when ``/healthz`` or ``/readyz`` answers 200 (or, with
``--check NAME``, when that one check of ``/readyz`` is ok), 1 otherwise.

    python scripts/healthcheck.py http://127.0.0.1:8000/healthz
    python scripts/healthcheck.py http://web:8000/readyz --check worker

Only the standard library: it runs in the app image without Django. The Host header is the
first of ALLOWED_HOSTS, as Django refuses any other."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--check", help="a check of /readyz that must be ok (e.g. worker)")
    parser.add_argument("--timeout", type=float, default=5.0)
    arguments = parser.parse_args()
    host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip().lstrip(".")
    if not arguments.url.startswith(("http://", "https://")):
        parser.error("the URL must start with http:// or https://")
    request = urllib.request.Request(  # noqa: S310 -- the scheme is checked above
        arguments.url, headers={"Host": host or "localhost"}
    )
    try:
        with urllib.request.urlopen(request, timeout=arguments.timeout) as response:  # noqa: S310
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except OSError as error:
        print(f"unreachable: {type(error).__name__}", file=sys.stderr)
        return 1
    if arguments.check:
        try:
            check = json.loads(body)["checks"][arguments.check]
        except (ValueError, KeyError):
            print(f"no check named {arguments.check} (HTTP {status})", file=sys.stderr)
            return 1
        return 0 if check.get("ok") else 1
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
