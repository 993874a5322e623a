"""``python -m tillflow.registry --host H --port P --data-dir D``: run the local registry in the foreground."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tillflow.registry.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tillflow.registry",
        description="tillflow's local Confluent-compatible Schema Registry (development and tests only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    parser.add_argument("--data-dir", type=Path, required=True, help="directory holding registry.json")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.host, args.port, args.data_dir)


if __name__ == "__main__":
    main()
