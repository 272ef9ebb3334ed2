"""Command line: ``python -m fakes {campaign_monitor,autopilot} [--port N] [options]``.

Every field of ``FaultConfig`` and of the fake's settings dataclass is a flag
(``latency_ms`` → ``--latency-ms``), so the flags and ``POST /_fake/config`` never drift apart.
"""

from __future__ import annotations

import argparse
import gc
import sys
import typing
from dataclasses import fields
from typing import Any

from fakes import DEFAULT_PORTS, FAKES
from fakes.server import FakeHTTPServer, FaultConfig, build_config


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type, title: str) -> None:
    group = parser.add_argument_group(title)
    types = typing.get_type_hints(config_cls)
    for spec in fields(config_cls):
        flag = spec.metadata.get("flag") or "--" + spec.name.replace("_", "-")
        kind = types[spec.name]
        default = spec.default_factory() if kind == list[str] else spec.default  # type: ignore[misc]
        help_text = f"{spec.metadata.get('help', '')} (default: {default})"
        common: dict[str, Any] = {"dest": spec.name, "default": None, "help": help_text}
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif kind == list[str]:
            group.add_argument(flag, action="append", **common)
        else:
            choices = spec.metadata.get("choices")
            group.add_argument(flag, type=kind, choices=choices, **common)


def config_from_args(config_cls: type, args: argparse.Namespace) -> Any:
    given = {
        spec.name: getattr(args, spec.name)
        for spec in fields(config_cls)
        if getattr(args, spec.name, None) is not None
    }
    return build_config(config_cls, given)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fakes", description=__doc__)
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, fake_class in FAKES.items():
        sub = kinds.add_parser(kind, help=f"serve the {kind} fake")
        sub.add_argument("--host", default="127.0.0.1")
        sub.add_argument("--port", type=int, default=DEFAULT_PORTS[kind])
        sub.add_argument(
            "--public-url",
            help="URL browsers use to reach this fake (for the OAuth page's form); "
            "default http://HOST:PORT",
        )
        sub.add_argument("--quiet", action="store_true", help="no per-request log lines")
        sub.add_argument("--no-demo", action="store_true", help="start without the demo data")
        add_config_arguments(sub, fake_class.settings_class, f"{kind} settings")
        add_config_arguments(sub, FaultConfig, "faults")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    fake_class = FAKES[args.kind]
    app = fake_class(
        config_from_args(fake_class.settings_class, args),
        config_from_args(FaultConfig, args),
        demo=not args.no_demo,
        public_url=args.public_url.rstrip("/") if args.public_url else None,
    )
    server = FakeHTTPServer((args.host, args.port), app, quiet=args.quiet)
    _collect_garbage_less_often()
    sys.stderr.write(
        f"{args.kind} fake listening on {server.root_url} (API {server.root_url}"
        f"{fake_class.api_prefix}, control {server.root_url}/_fake/state)\n"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _collect_garbage_less_often() -> None:
    """A fake holds every subscriber it was sent (a million in the benchmark), and with
    Python's default thresholds the collector goes through them again and again. The fake
    stands in for a service on other machines; its CPU on ours should be its own work."""
    gc.freeze()
    gc.set_threshold(10_000, *gc.get_threshold()[1:])


if __name__ == "__main__":
    sys.exit(main())
