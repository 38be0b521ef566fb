"""`socialrec serve` and `socialrec keys`: run the HTTP service, manage its API keys."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = sub.add_parser("serve", help="run the HTTP service (FastAPI under uvicorn)")
    serve.add_argument("--dataset", action="append", default=None,
                       help="dataset the first model is trained on; give it several times to serve each dataset as a "
                            "scenario of one service (?scenario=NAME; the first is the default), one shared backbone "
                            "with an adapter per scenario")
    serve.add_argument("--scenarios", type=Path, default=None, metavar="FILE",
                       help="a TOML (or .json) file listing the scenarios instead: datasets = [\"lastfm\", "
                            "\"movielens-100k\"] and an optional [model] table of the shared backbone's settings")
    serve.add_argument("--state-dir", type=Path, default=Path("state"), help="event store, keys, models, logs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL",
                       help="SQLite fsync policy of the event store (FULL: every commit)")
    _store_argument(serve)
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="serve from N processes on one port, sharing the store and the state directory: each "
                            "folds in the events the others stored (--sync-every)")
    serve.add_argument("--sync-every", type=float, default=None, metavar="SECONDS",
                       help="how often a process folds in what other processes stored (default: 0.2 with --store "
                            "or --workers > 1; off for a lone process on SQLite)")
    serve.add_argument("--retrain-every", type=float, default=None, metavar="SECONDS",
                       help="also retrain on a schedule")
    serve.add_argument("--cors-origin", action="append", default=[], help="allow this CORS origin (default: CORS off)")
    serve.add_argument("--model", default=None,
                       help="the library model each version fits: hybrid (default: the pipeline `socialrec evaluate "
                            "--models hybrid` measures) or any model of `socialrec evaluate` (als, ease, itemknn, ...); "
                            "with several datasets adapter-seq (the default there)")
    serve.add_argument("--channels", default=None, help="the hybrid's channels, comma-separated (default: what the data supports)")
    serve.add_argument("--holdout", default=None, metavar="PROTOCOL",
                       help="serve all but the test part of this split (random-811, temporal, loo, ...); "
                            "`socialrec split` writes that part out, to measure what is served")
    serve.add_argument("--seed", type=int, default=0, help="seed of the --holdout split")
    serve.add_argument("--friends-masked", type=float, default=0.0, metavar="SHARE",
                       help="with --holdout, also hold out this share of each user's social edges")
    serve.add_argument("--retention-days", type=float, default=None, metavar="DAYS",
                       help="delete stored events older than this many days (at start-up and hourly)")
    serve.add_argument("--no-scrub", action="store_true",
                       help="store user text (comments, profiles) as given; by default personal data in it is "
                            "replaced by typed placeholders (<EMAIL>, <PHONE>, <PERSON> ...) before it is stored")
    serve.add_argument("--scrub-text", action="store_true",
                       help="also scrub the dataset's own texts (reviews, posts, profiles) of personal data after loading it")
    from socialrec.cli.chat_cmd import _llm_arguments

    _llm_arguments(serve)
    serve.add_argument("--chat-encoder", choices=("minilm", "none"), default="minilm",
                       help="text encoder matching chat words to the catalog's tags ('none': exact names only; "
                            "minilm needs the text extra and falls back to exact names without it)")
    serve.add_argument("--chat-session-ttl", type=float, default=1800.0, metavar="SECONDS",
                       help="a chat session unused this long expires (default 1800)")

    split = sub.add_parser("split", help="write the held-out part of a split (what `serve --holdout` leaves out)")
    split.add_argument("--dataset", required=True)
    split.add_argument("--protocol", required=True, help="random-811, temporal, loo, fixed, ...")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--friends-masked", type=float, default=0.0, metavar="SHARE")
    split.add_argument("--output", required=True, type=Path, help="directory for test.tsv (and friends_*.tsv)")

    replay = sub.add_parser("replay", help="stream held-out events through the service in time order; "
                                           "HR@10/NDCG@10 of the next item, live vs frozen")
    replay.add_argument("--dataset", required=True)
    replay.add_argument("--protocol", default="temporal", help="split whose test events are streamed (default temporal)")
    replay.add_argument("--seed", type=int, default=0)
    replay.add_argument("--k", type=int, default=10)
    replay.add_argument("--max-events", type=int, default=None, help="stream only the first N test events (by time)")
    replay.add_argument("--model", default="hybrid", help="model of the started service (as serve --model)")
    replay.add_argument("--url", default=None, help="use this running service (serving the same --holdout) instead of starting one")
    replay.add_argument("--key", default=None, help="with --url: an API key with read and write scopes")
    replay.add_argument("--output", required=True, type=Path, help="results JSON: {\"live\": {...}, \"frozen\": {...}}")

    keys = sub.add_parser("keys", help="create, list or revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    create = ksub.add_parser("create", help="create a key and print it (the only time it is shown)")
    create.add_argument("--scopes", default="read", help="comma-separated: read, write, admin, export (reads everything held about a user)")
    create.add_argument("--state-dir", type=Path, default=Path("state"))
    create.add_argument("--name", default="")
    create.add_argument("--rate", type=float, default=None, help="requests per second for this key")
    _store_argument(create)
    lst = ksub.add_parser("list", help="list keys (ids and scopes, never secrets)")
    lst.add_argument("--state-dir", type=Path, default=Path("state"))
    _store_argument(lst)
    rev = ksub.add_parser("revoke", help="revoke a key by id")
    rev.add_argument("key_id")
    rev.add_argument("--state-dir", type=Path, default=Path("state"))
    _store_argument(rev)


STORE_ENV = "SOCIALREC_STORE"


def _store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=os.environ.get(STORE_ENV) or None, metavar="URL",
                        help="keep events, API keys, consent and erasure records in this PostgreSQL database "
                             f"(postgresql://user:password@host:port/db; default ${STORE_ENV}, else SQLite files in "
                             "--state-dir); needs: pip install 'socialrec[postgres]'")


def run_server(settings: object, host: str, port: int, workers: int = 1) -> None:
    """Serve ``settings`` on host:port from one process, or from ``workers`` processes sharing
    the port (uvicorn's workers; each builds its own service through `serve.app.worker_app`)."""
    try:
        import uvicorn
    except ImportError as exc:
        from socialrec.errors import MissingDependencyError

        raise MissingDependencyError("uvicorn", "serve", "The HTTP service") from exc
    from socialrec.serve.app import WORKER_SETTINGS_ENV, create_app, encode_settings, one_blas_thread

    # access_log off: uvicorn would log raw paths, which hold user ids; the app logs route templates.
    if workers > 1:
        os.environ[WORKER_SETTINGS_ENV] = encode_settings(settings)
        uvicorn.run("socialrec.serve.app:worker_app", factory=True, host=host, port=port, workers=workers,
                    access_log=False, log_level="warning")
        return
    one_blas_thread()
    uvicorn.run(create_app(settings), host=host, port=port, access_log=False, log_level="warning")  # type: ignore[arg-type]


def serve_datasets(args: argparse.Namespace) -> tuple[list[str], tuple[tuple[str, object], ...]]:
    """The datasets `socialrec serve` hosts (the default scenario first) and the scenario model's
    arguments: from --dataset (given once or more) or from the --scenarios file."""
    if args.scenarios is not None:
        if args.dataset:
            raise ValueError("give the datasets either with --dataset or in the --scenarios file, not both")
        from socialrec.serve.settings import ScenariosConfig

        config = ScenariosConfig.load(args.scenarios)
        return list(config.datasets), config.model
    if not args.dataset:
        raise ValueError("socialrec serve needs --dataset NAME (several times for several scenarios) or "
                         "--scenarios FILE")
    return list(args.dataset), ()


def serve_settings(args: argparse.Namespace) -> object:
    """`ServeSettings` from `socialrec serve`'s arguments."""
    from socialrec.serve.engine import SCENARIO_MODEL, ModelConfig
    from socialrec.serve.settings import HoldoutConfig, ServeSettings

    channels = tuple(c.strip() for c in args.channels.split(",") if c.strip()) if args.channels else None
    holdout = None
    if args.holdout:
        holdout = HoldoutConfig(args.holdout, seed=args.seed, friends_masked=args.friends_masked)
    elif args.friends_masked:
        raise ValueError("--friends-masked needs --holdout PROTOCOL (the edges are masked with that split's seed)")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    sync_every = args.sync_every
    if sync_every is None and args.workers > 1:
        sync_every = 0.2  # the processes share one SQLite state directory (or a PostgreSQL store)
    datasets, params = serve_datasets(args)
    name = args.model or (SCENARIO_MODEL if len(datasets) > 1 or params else "hybrid")
    return ServeSettings(dataset=datasets[0], scenarios=tuple(datasets[1:]), state_dir=str(args.state_dir),
                         data=args.data, store=args.store,
                         sync_interval_s=sync_every, synchronous=args.synchronous, retrain_interval_s=args.retrain_every,
                         cors_origins=tuple(args.cors_origin), model=ModelConfig(name, channels=channels, params=params),
                         holdout=holdout, retention_days=args.retention_days, scrub_pii=not args.no_scrub,
                         scrub_dataset_text=args.scrub_text, llm_backend=args.llm, llm_url=args.llm_url,
                         llm_model=args.llm_model, llm_key_env=args.llm_key_env,
                         chat_session_ttl_s=args.chat_session_ttl,
                         chat_encoder=None if args.chat_encoder == "none" else args.chat_encoder)


def cmd_serve(args: argparse.Namespace) -> int:
    from socialrec.ingest.datasets import check_name

    settings = serve_settings(args)
    for name in settings.names:  # type: ignore[attr-defined]
        check_name(name)  # before the port is taken: the model trains in the background
    print(f"socialrec serve: http://{args.host}:{args.port}/ (dashboard), API docs at /docs; state in {args.state_dir}",
          flush=True)
    from socialrec.privacy.encryption import ENV_VAR, NEW_KEY_HELP

    if os.environ.get(ENV_VAR, "").strip():
        print(f"stored user text is encrypted at rest (key from {ENV_VAR})", flush=True)
    else:
        print(f"warning: stored user text is NOT encrypted at rest: {ENV_VAR} is not set ({NEW_KEY_HELP})",
              file=sys.stderr, flush=True)
    if args.store:
        from socialrec.serve.database import redact

        print(f"event store: {redact(args.store)} ({args.workers} worker(s) on it here)", flush=True)
    run_server(settings, args.host, args.port, workers=args.workers)
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    from socialrec.evaluate.holdout import served_part, write_served_part
    from socialrec.ingest.datasets import load

    ds = load(args.dataset, args.data)
    part = served_part(ds, args.protocol, seed=args.seed, friends_masked=args.friends_masked)
    for path in write_served_part(part, args.output):
        print(f"wrote {path}")
    print(f"held out {len(part.test)} (user, item) pairs of {ds.name} ({args.protocol}, seed {args.seed}); "
          f"serve the rest with: socialrec serve --dataset {args.dataset} --holdout {args.protocol} --seed {args.seed}"
          + (f" --friends-masked {args.friends_masked}" if args.friends_masked else ""))
    return 0


class LocalService:
    """`socialrec serve` in a child process on a free local port with a fresh key (for replay
    and the benchmarks); stopped on exit from the ``with`` block."""

    def __init__(self, serve_args: list[str], state_dir: Path, data: str | None = None, store: str | None = None) -> None:
        self.serve_args = serve_args + (["--store", store] if store else [])
        self.state_dir = Path(state_dir)
        self.data = data
        self.store = store

    def __enter__(self) -> "LocalService":
        import socket
        import subprocess

        from socialrec.serve.auth import KeyStore

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        keys = KeyStore(self.state_dir, url=self.store)
        self.key = keys.create(["read", "write", "admin"], name="local")
        keys.close()
        cmd = [sys.executable, "-m", "socialrec"] + (["--data", self.data] if self.data else []) + [
            "serve", *self.serve_args, "--state-dir", str(self.state_dir), "--port", str(self.port)]
        self.log = open(self.state_dir / "child.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()
        self.log.close()


def cmd_replay(args: argparse.Namespace) -> int:
    import json
    import tempfile

    import numpy as np

    from socialrec.evaluate.holdout import served_part
    from socialrec.evaluate.served import Client, replay
    from socialrec.ingest.datasets import load

    ds = load(args.dataset, args.data)
    part = served_part(ds, args.protocol, seed=args.seed)
    test = ds.interactions.iloc[part.test_rows]
    ts = test["timestamp"].to_numpy(np.float64)
    order = np.argsort(np.where(np.isnan(ts), np.inf, ts), kind="stable")
    test = test.iloc[order]
    if args.max_events:
        test = test.iloc[:args.max_events]
    events = list(zip(ds.users.to_external(test["user"].to_numpy()), ds.items.to_external(test["item"].to_numpy()),
                      np.nan_to_num(test["timestamp"].to_numpy(np.float64), nan=0.0)))
    print(f"replaying {len(events)} of {len(part.test)} held-out pairs of {ds.name} ({args.protocol}) in time order")

    def run(client: Client) -> dict:
        print(f"service ready: {client.wait_ready()}", flush=True)
        return replay(client, [(str(u), str(i), float(t)) for u, i, t in events], k=args.k)

    if args.url:
        if not args.key:
            raise ValueError("--url needs --key (read and write scopes)")
        result = run(Client(args.url, args.key))
    else:
        with tempfile.TemporaryDirectory(prefix="socialrec-replay-") as state:
            serve_args = ["--dataset", args.dataset, "--holdout", args.protocol, "--seed", str(args.seed),
                          "--model", args.model]
            with LocalService(serve_args, Path(state), args.data) as svc:
                result = run(Client(svc.url, svc.key))
    result = {"dataset": ds.name, "protocol": args.protocol, "seed": args.seed, **result}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: result[k] for k in ("live", "frozen", "live_over_frozen_hr", "seconds")}, indent=2))
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from socialrec.serve.auth import KeyStore, parse_scopes

    store = KeyStore(args.state_dir, url=args.store)
    try:
        if args.keys_command == "create":
            key = store.create(parse_scopes(args.scopes), name=args.name, rate_per_second=args.rate)
            print(key)
            print("store it now: only its hash is kept, it cannot be shown again", file=sys.stderr)
        elif args.keys_command == "list":
            for k in store.list():
                print(f"{k['key_id']}  scopes={','.join(k['scopes'])}  rate={k['rate_per_second']}  "
                      f"{'revoked' if k['revoked'] else 'active'}  {k['name']}")
        else:
            if not store.revoke(args.key_id):
                print(f"socialrec: error: no key with id {args.key_id!r}", file=sys.stderr)
                return 2
            print(f"revoked {args.key_id}")
    finally:
        store.close()
    return 0


def demo_serve(dataset_name: str, data: str | None, state_dir: Path, host: str, port: int,
               example_user: str = "USER_ID") -> None:
    """The end of `socialrec demo`: serve the demo dataset, print the dashboard URL and a curl line."""
    from socialrec.serve.auth import KeyStore
    from socialrec.serve.settings import ServeSettings

    keys = KeyStore(state_dir)
    key = keys.create(["read", "write", "admin"], name="demo")
    keys.close()
    print()
    print(f"serving {dataset_name} on http://{host}:{port}/ (Ctrl-C stops; state in {state_dir})")
    print(f"dashboard: http://{host}:{port}/#key={key}")
    print(f"try:       curl -H 'Authorization: Bearer {key}' "
          f"'http://{host}:{port}/v1/users/{example_user}/recommendations?k=10&explain=true'")
    print("(the first model, the hybrid pipeline, trains in the background: minutes on LastFM; until it is ready "
          "recommendations come from popularity and /readyz answers 503)", flush=True)
    run_server(ServeSettings(dataset=dataset_name, state_dir=str(state_dir), data=data), host, port)


COMMANDS = {"serve": cmd_serve, "keys": cmd_keys, "split": cmd_split, "replay": cmd_replay}
