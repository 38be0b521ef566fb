"""Several datasets served as scenarios of one `socialrec serve`: time to train and memory (RSS),
serving them together on one backbone against serving each alone.

For each set of datasets (each alone, then all together) it starts `socialrec serve --dataset A
[--dataset B] --model adapter-seq` (the default settings of the scenario model) in a child process
on a fresh state directory and waits for /readyz (the first version trained); asks every scenario
for some users' recommendations (``?scenario=``) and sends one event per scenario, checking that
the next list moved; stops it, starts it again on the same state directory (the saved versions
are loaded, nothing is trained) and asks again. Memory is the child's resident set: its peak
(VmHWM, training included) in the first start, and its RSS (VmRSS) serving after the restart.

    python benchmarks/scenario_serving.py [--datasets lastfm,movielens-100k] [--data DIR]

Writes benchmarks/results/scenario-serving.json and the section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scenario-serving.json"
USERS = 5


def _memory(pid: int) -> dict[str, float]:
    """The process's resident set now and at its peak, in MB (Linux /proc)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024.0
    return {"rss_mb": round(out["VmRSS"], 1), "peak_rss_mb": round(out["VmHWM"], 1)}


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) the process has used: less sensitive than wall time to the
    other jobs on a shared machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _saved_mb(state: Path) -> float:
    """Megabytes of the current saved versions of every scenario under ``state``."""
    return sum(p.stat().st_size for p in state.rglob("served.pkl")) / 2 ** 20


def _call(url: str, key: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Bearer {key}",
                                                                         "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _wait_ready(url: str, proc: Any, timeout: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=10) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(2.0)
    raise TimeoutError(f"not ready in {timeout:.0f}s")


def _ask(url: str, key: str, users: dict[str, list[str]], names: list[str], *, move: bool) -> dict[str, Any]:
    """Every scenario's lists for its users (and, with ``move``, one event per scenario and the
    list after it). Returns what was checked."""
    out: dict[str, Any] = {}
    for name in names:
        q = urllib.parse.quote(name)
        lists = {}
        start = time.perf_counter()
        for u in users[name]:
            status, body = _call(f"{url}/v1/users/{urllib.parse.quote(u)}/recommendations?k=10&scenario={q}", key)
            if status != 200 or not body["items"]:
                raise RuntimeError(f"scenario {name} user {u}: {status} {body}")
            if len(names) > 1 and body.get("scenario") != name:
                raise RuntimeError(f"asked scenario {name}, answered {body.get('scenario')}")
            lists[u] = [i["item_id"] for i in body["items"]]
        row: dict[str, Any] = {"users": len(lists), "ms_per_list": round(1000 * (time.perf_counter() - start)
                                                                          / len(lists), 1),
                               "version": body["model_version"]}
        if move:
            u = users[name][0]
            top = lists[u][0]
            status, ack = _call(f"{url}/v1/events?scenario={q}", key, "POST", {"events": [
                {"event_id": uuid.uuid4().hex, "user_id": u, "kind": "like", "item_id": top}]})
            if status != 200 or ack.get("accepted") != 1:
                raise RuntimeError(f"event refused in {name}: {status} {ack}")
            _, after = _call(f"{url}/v1/users/{urllib.parse.quote(u)}/recommendations?k=10&scenario={q}", key)
            row["event_moved_list"] = top not in [i["item_id"] for i in after["items"]]
            row["version_after_event"] = after["model_version"]
        out[name] = row
    return out


def _toml(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def run(names: list[str], users: dict[str, list[str]], data: str | None, timeout: float,
        params: dict[str, Any]) -> dict[str, Any]:
    from socialrec.cli.serve_cmd import LocalService

    with tempfile.TemporaryDirectory(prefix="socialrec-scenarios-") as state:
        args = [a for n in names for a in ("--dataset", n)] + ["--model", "adapter-seq"]
        if params:  # the scenarios file: the datasets and the model's settings
            path = Path(state) / "scenarios.toml"
            path.write_text(f"datasets = {json.dumps(names)}\n[model]\n"
                            + "".join(f"{k} = {_toml(v)}\n" for k, v in params.items()))
            args = ["--scenarios", str(path)]
        with LocalService(args, Path(state), data) as svc:
            ready_s = _wait_ready(svc.url, svc.proc, timeout)
            ready_cpu = _cpu_seconds(svc.proc.pid)
            first = _ask(svc.url, svc.key, users, names, move=True)
            mem_first = _memory(svc.proc.pid)
        meta = json.loads((Path(state) / "models" / "v0001" / "meta.json").read_text())
        saved = _saved_mb(Path(state))
        with LocalService(args, Path(state), data) as svc:
            load_s = _wait_ready(svc.url, svc.proc, timeout)
            load_cpu = _cpu_seconds(svc.proc.pid)
            again = _ask(svc.url, svc.key, users, names, move=False)
            mem_again = _memory(svc.proc.pid)
    return {"datasets": names, "ready_seconds": round(ready_s, 1), "train_seconds": meta["train_seconds"],
            "cpu_seconds_to_ready": round(ready_cpu, 1), "saved_versions_mb": round(saved, 2),
            "first_start": {**mem_first, "scenarios": first},
            "restart": {"ready_seconds": round(load_s, 1), "cpu_seconds_to_ready": round(load_cpu, 1), **mem_again,
                        "scenarios": again}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default="lastfm,movielens-100k")
    parser.add_argument("--data", default=None)
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds to wait for a first version")
    parser.add_argument("--model-params", type=json.loads, default={},
                        help="JSON of the scenario model's settings (the [model] table of a --scenarios file); "
                             "default: its defaults")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the child service on the way out
    from socialrec.ingest.datasets import load

    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    users = {n: [str(u) for u in load(n, args.data).users.external_ids[:USERS]] for n in names}
    runs = {}
    for group in [[n] for n in names] + [names]:
        label = "+".join(group)
        print(f"serving {label} ...", flush=True)
        runs[label] = run(group, users, args.data, args.timeout, args.model_params)
        print(json.dumps(runs[label], indent=1), flush=True)
    both = runs["+".join(names)]
    alone = [runs[n] for n in names]
    doc = {"datasets": names, "model_params": args.model_params, "runs": runs, "machine": describe(),
           "note": "2 CPU cores shared with other jobs while this ran: seconds are noisy",
           "together": {k: both[k] for k in ("train_seconds", "cpu_seconds_to_ready", "saved_versions_mb")},
           "alone_sum": {k: round(sum(r[k] for r in alone), 2)
                         for k in ("train_seconds", "cpu_seconds_to_ready", "saved_versions_mb")}}
    doc["together"].update(serving_rss_mb=both["restart"]["rss_mb"], peak_rss_mb=both["first_start"]["peak_rss_mb"])
    doc["alone_sum"].update(serving_rss_mb=round(sum(r["restart"]["rss_mb"] for r in alone), 1),
                            peak_rss_mb=round(sum(r["first_start"]["peak_rss_mb"] for r in alone), 1))
    doc["serving_rss_ratio"] = round(doc["together"]["serving_rss_mb"] / doc["alone_sum"]["serving_rss_mb"], 3)
    doc["cpu_ratio"] = round(doc["together"]["cpu_seconds_to_ready"] / doc["alone_sum"]["cpu_seconds_to_ready"], 3)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, indent=2))
    rows = ["| served | train (s) | CPU to ready (s) | saved versions (MB) | ready after restart (s) | "
            "RSS serving (MB) | peak RSS training (MB) |", "|---|---|---|---|---|---|---|"]
    for label, r in runs.items():
        rows.append(f"| {label} | {r['train_seconds']:.1f} | {r['cpu_seconds_to_ready']:.1f} | "
                    f"{r['saved_versions_mb']:.2f} | {r['restart']['ready_seconds']:.1f} | "
                    f"{r['restart']['rss_mb']:.1f} | {r['first_start']['peak_rss_mb']:.1f} |")
    how = ("the scenario model's default settings" if not args.model_params else
           "a `--scenarios` file whose `[model]` table sets "
           + ", ".join(f"`{k} = {v}`" for k, v in args.model_params.items() if k != "progress"))
    block = "\n".join([
        f"`socialrec serve --dataset A [--dataset B] --model adapter-seq` ({how}), "
        "each dataset alone and all together as scenarios of one service (one backbone, an adapter per scenario). "
        "Train: the first version's fit (wall seconds, which the other jobs on the machine stretch); CPU to ready: "
        "the service process's CPU seconds until /readyz (loading, encoding, training); saved versions: the "
        "scenarios' saved model files (each holds its own copy of the small backbone); RSS serving: the process after "
        "a restart that loads the saved versions; "
        "every scenario answered its users and moved a list after an event (`?scenario=`). "
        f"Raw numbers: `results/scenario-serving.json`. Machine: {doc['machine']} (shared with other jobs).", "",
        *rows, "",
        f"Serving {' and '.join(names)} together takes {doc['serving_rss_ratio']:.3f}x the RSS of serving each alone "
        f"in its own process ({doc['together']['serving_rss_mb']:.1f} MB against "
        f"{doc['alone_sum']['serving_rss_mb']:.1f} MB): most of a process's RSS is the runtime (torch, peft, the "
        "text encoder, the web stack), held once; the scenarios' own models are small (saved versions above). "
        f"Getting ready took {doc['cpu_ratio']:.3f}x the CPU seconds of the separate services together."])
    replace_section("SCENARIO-SERVING", "Several scenarios in one service", block)
    print(f"results: {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
