"""A longer schemathesis run against the live service than the test suite's: a uvicorn server on
a loopback port, every check, every operation including DELETE and retraining, many more
examples. Writes benchmarks/results/fuzz.json (operations, examples, failures found).

    nice .venv/bin/python benchmarks/fuzz.py [--examples 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from _machine import describe  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    args = parser.parse_args()
    from tests.serve.conftest import Served, live_server
    from tests.serve.test_fuzz import fuzz_operations

    start = time.perf_counter()
    served = Served(Path(tempfile.mkdtemp(prefix="socialrec-fuzz-")), failed_auth_per_second=1e9,
                    rate_per_second=1e9, rate_burst=1e9)
    failures: dict[str, str] = {}
    try:
        with live_server(served.app) as (url, _port):
            done = fuzz_operations(served, args.examples, skip_destructive=False, url=url)
    except BaseException as exc:  # a failure found: keep what schemathesis says
        inner = "; ".join(f"{type(e).__name__}: {e}" for e in getattr(exc, "exceptions", []))
        done, failures = {}, {"error": f"{type(exc).__name__}: {exc} [{inner}]"[:6000]}
    finally:
        served.close()
    doc = {"machine": describe(), "target": "live uvicorn server on loopback", "examples_per_operation": args.examples,
           "operations": done,
           "failures": failures, "seconds": round(time.perf_counter() - start, 1)}
    out = HERE / "results" / "fuzz.json"
    out.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2)[:3000])


if __name__ == "__main__":
    main()
