"""`socialrec encode`: embed every item's text profile (and users' own texts) into the on-disk cache.

Prints how many texts, their dimension, the seconds taken, the throughput, and how many were
already cached (a re-run encodes nothing new).
"""

from __future__ import annotations

import argparse
import time


def add_encode_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from socialrec.represent.encoders import ENCODERS

    enc = sub.add_parser("encode", help="embed item text profiles (and users' own texts) into the embedding cache")
    enc.add_argument("--dataset", required=True, help="dataset name (see `socialrec datasets`)")
    enc.add_argument("--encoder", required=True, choices=list(ENCODERS))
    enc.add_argument("--batch-size", type=int, default=64)
    enc.add_argument("--limit", type=int, default=None, help="encode only the first N texts (a smoke test)")
    enc.add_argument("--cache-dir", default=None, help="cache directory (default: $SOCIALREC_CACHE, else ~/.cache/socialrec)")
    from socialrec.cli.engine_args import add_engine_arguments

    add_engine_arguments(enc, "the encoder's batches")


def cmd_encode(args: argparse.Namespace) -> int:
    from socialrec.ingest.datasets import load
    from socialrec.represent.cache import EmbeddingCache, cached_encode, text_key
    from socialrec.engine import make_engine
    from socialrec.represent.encoders import EngineEncoder, make_encoder
    from socialrec.represent.profiles import item_profiles, user_texts

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1, got {args.limit}")
    ds = load(args.dataset, args.data)
    items = [p for p in item_profiles(ds) if p]
    users = [t for t in user_texts(ds) if t]
    texts = (items + users)[: args.limit]
    encoder = make_encoder(args.encoder)
    engine = make_engine(args.engine or "local", workers=args.workers, address=args.address)
    if engine.name != "local":  # the same vectors under the same name: the cache serves both
        encoder = EngineEncoder(encoder, engine)
    cache = EmbeddingCache(args.cache_dir)
    print(f"{ds.name}: {len(items):,} item profiles and {len(users):,} user texts"
          + (f" (first {len(texts):,} only)" if args.limit else "") + f"; encoder {encoder.name}; cache {cache.path}")
    distinct = list(dict.fromkeys(text_key(t) for t in texts))
    hits = len(cache.get(encoder.name, distinct, encoder.dim))
    start = time.perf_counter()
    try:
        vectors = cached_encode(encoder, texts, args.cache_dir, batch_size=args.batch_size, progress=True)
    finally:
        engine.close()
    secs = time.perf_counter() - start
    encoded = len(distinct) - hits
    rate = f"{encoded / secs:,.1f} texts/s" if encoded and secs > 0 else "n/a (nothing to encode)"
    print(f"encoded {len(texts):,} texts ({len(distinct):,} distinct), dim {vectors.shape[1]}, {secs:.2f}s, "
          f"throughput {rate}; cache hits {hits:,} of {len(distinct):,}")
    return 0
