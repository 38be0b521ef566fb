"""The options every command with an engine takes: --engine, --workers, --address."""

from __future__ import annotations

import argparse


def add_engine_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--engine / --workers / --address: where ``what`` run (this process, or Ray workers)."""
    from socialrec.engine import ENGINES

    parser.add_argument("--engine", default=None, choices=ENGINES,
                        help=f"where {what} run: local (this process, the default) or ray (extra `ray`); "
                             "the results are the same")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray workers (default: the machine's CPUs, or the cluster's with --address)")
    parser.add_argument("--address", default=None,
                        help="a Ray cluster to run on, HOST:6379 (default: start a local Ray instance)")
