"""How lmeb's cost grows with the corpus: MemBench-shaped corpora of 10k, 100k and 1M documents.

Each size is generated in a temporary folder (never in the repository) in MemBench's shape: one
``corpus.jsonl`` at the dataset root shared by MemBench's ten subsets (layout ``corpus_at_dataset_root``),
a ``candidates.jsonl`` per subset listing each scene's documents (scene id = the first two ``_`` fields of
the query id; the official MemBench has a corpus per subset, 929,115 documents in all), a Zipfian
vocabulary, document lengths log-normal around MemBench's 43 words, queries
around 10 words, about one query per 93 documents (MemBench: 10,000 queries, 929,115 documents), ~3
relevant documents each, and a fixed number of queries per subset whose scene has no candidates line
(ranked against the whole corpus, as the official rule says).

Every (size, model) runs in its own subprocess through lmeb's public API (``lmeb.evaluate(model,
tasks="MemBench")`` with a copy of the registry whose MemBench has that layout), whose engine times
each stage; the benchmark adds, per stage, the peak RSS (Linux: the high-water mark
is reset at each stage start through ``/proc/self/clear_refs``) and its growth over the stage's starting
RSS. Models:

* ``bm25``: lmeb's BM25 searcher; its corpus tokenisation + indexing is reported as ``tokenize``.
* ``hash``: a tiny dense encoder built here (signed feature hashing of words into ``--dim`` floats), so the
  harness's own cost is visible apart from the model's; the time inside ``encode()`` is reported as
  ``model``, the rest of the encode stage (digests, cache look-ups, disk shards) as ``encode``. It runs
  with an on-disk embedding cache (cold).
* ``hash-warm``: the same again on the cache ``hash`` filled (nothing encoded: vectors come from disk).

Printed: a table (seconds per stage, peak RSS per stage and per process), the fitted exponent of time vs
documents per stage (log-log least squares over the sizes run), and the targets: linear time (exponent
<= 1.15 for every stage that takes at least 0.5 s at the largest size), peak RSS <= vectors (N x dim x 4
bytes) + 1.5 GB, no stage growing RSS by a second copy of the corpus text, the candidate-restricted
scoring block bound, and a memory-mapped embedding cache.

Run by hand (not in CI):
  .venv/bin/python benchmarks/bench_scale.py --sizes 10000,100000          # quick (~1 min)
  .venv/bin/python benchmarks/bench_scale.py --sizes 10000,100000,1000000 --json scale.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from lmeb.tasks.registry import Task, get_task  # noqa: E402

GB = 1 << 30
MB = 1 << 20
DOCS_PER_QUERY = 93  # MemBench: 929,115 documents / 10,000 queries
WHOLE_CORPUS_QUERIES = 2  # per subset: queries whose scene has no candidates line (whole-corpus ranking)
STAGES = ("load", "tokenize", "model", "encode", "search", "metrics", "write")
LINEAR_EXPONENT = 1.15  # the most a stage's fitted exponent may be and still count as linear
RSS_SLACK = 1.5 * GB
COPY_SLACK = 64 * MB  # imports and allocator arenas a stage may add besides data (matters at 10k only)


def membench_task() -> Task:
    """MemBench's registry entry (its ten subsets and instructions) with one corpus at the dataset root."""
    return replace(get_task("MemBench"), layout="corpus_at_dataset_root", candidates="subset",
                   scene_id="first_two_underscore_fields_of_query_id")


# ------------------------------------------------------------------------------------------ corpus
def _vocabulary(size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` distinct pseudo-words (2-4 syllables), as an object array."""
    onsets = [c for c in "bcdfghjklmnprstvwz"] + ["ch", "sh", "th", "br", "st", "tr", "pl"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "ou"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st"]
    words: dict[str, None] = {}
    while len(words) < size:
        n = int(rng.integers(2, 5))
        words["".join(onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))]
                      + codas[rng.integers(len(codas))] for _ in range(n))] = None
    out = np.empty(size, dtype=object)
    out[:] = list(words)
    return out


def _lognormal(rng: np.random.Generator, mean: float, sigma: float, n: int, lo: int, hi: int) -> np.ndarray:
    """Integers log-normal with the given mean, clipped to [lo, hi]."""
    return np.clip(np.rint(rng.lognormal(math.log(mean) - sigma * sigma / 2, sigma, n)), lo, hi).astype(np.int64)


@dataclass
class CorpusInfo:
    documents: int
    queries: int
    scenes: int
    corpus_bytes: int
    words: int
    seconds: float


def generate(root: Path, n_docs: int, seed: int = 0, vocab_size: int = 30000) -> CorpusInfo:
    """Write a MemBench-shaped dataset of ``n_docs`` documents under ``root`` (see the module docstring)."""
    started = time.perf_counter()
    task = membench_task()
    base = root / task.path
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vocab = _vocabulary(vocab_size, rng)
    p = 1.0 / np.arange(1, vocab_size + 1) ** 1.05
    p /= p.sum()
    subsets = task.subset_names
    # scenes: each a conversation of ~DOCS_PER_QUERY documents with one or two queries, in one subset
    sizes = _lognormal(rng, DOCS_PER_QUERY / 1.15, 0.6, n_docs // 10 + 10, 8, 800)
    ends = np.cumsum(sizes)
    n_scenes = int(np.searchsorted(ends, n_docs)) + 1
    sizes = sizes[:n_scenes]
    sizes[-1] -= int(ends[n_scenes - 1]) - n_docs
    doc_words = _lognormal(rng, 43, 0.7, n_docs, 2, 600)
    words = vocab[rng.choice(vocab_size, size=int(doc_words.sum()), p=p)]
    word_end = np.cumsum(doc_words)
    scene_subset = rng.integers(len(subsets), size=n_scenes)
    per_subset: dict[str, list[tuple[str, list[str], list[str]]]] = defaultdict(list)  # scene, docs, texts
    corpus_bytes = 0
    row = 0
    with (base / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for s in range(n_scenes):
            scene = f"{scene_subset[s]}_{s}"
            ids, texts = [], []
            for turn in range(int(sizes[s])):
                lo = int(word_end[row - 1]) if row else 0
                text = " ".join(words[lo:int(word_end[row])].tolist())
                doc_id = f"{scene}_m{turn}"
                line = json.dumps({"id": doc_id, "title": "", "text": text}) + "\n"
                out.write(line)
                corpus_bytes += len(line)
                ids.append(doc_id)
                texts.append(text)
                row += 1
            per_subset[subsets[scene_subset[s]]].append((scene, ids, texts))
    n_queries = 0
    for i, name in enumerate(subsets):
        folder = base / name
        folder.mkdir(exist_ok=True)
        with (folder / "queries.jsonl").open("w", encoding="utf-8") as q, \
                (folder / "qrels.tsv").open("w", encoding="utf-8") as r, \
                (folder / "candidates.jsonl").open("w", encoding="utf-8") as c:
            scenes = per_subset.get(name, [])
            for scene, ids, _ in scenes:
                c.write(json.dumps({"scene_id": scene, "candidate_doc_ids": ids}) + "\n")
            # queries: one per scene (a second for one scene in five), plus whole-corpus ones
            orphans = [(f"{i}_x{j}", *scenes[j % len(scenes)][1:]) for j in range(WHOLE_CORPUS_QUERIES)] \
                if scenes else []
            for scene, ids, texts in scenes + orphans:
                for n in range(1 + (rng.random() < 0.2)):
                    rel = rng.choice(len(ids), size=min(len(ids), int(rng.integers(1, 6))), replace=False)
                    cue = texts[int(rel[0])].split()
                    picked = [cue[int(j)] for j in rng.integers(len(cue), size=min(len(cue), 4))]
                    filler = vocab[rng.choice(vocab_size, size=int(_lognormal(rng, 7, 0.4, 1, 1, 30)[0]), p=p)]
                    qid = f"{scene}_q{n}"
                    q.write(json.dumps({"id": qid, "text": " ".join(picked + filler.tolist())}) + "\n")
                    for j in rel:
                        r.write(f"{qid}\t{ids[int(j)]}\t1\n")
                    n_queries += 1
    return CorpusInfo(n_docs, n_queries, n_scenes, corpus_bytes, int(doc_words.sum()),
                      round(time.perf_counter() - started, 2))


def _generated(data: Path, size: int, seed: int) -> CorpusInfo:
    """The corpus at ``data``: reused when a complete one is there (``corpus-info.json``), else generated."""
    marker = data / "corpus-info.json"
    if marker.is_file():
        return CorpusInfo(**json.loads(marker.read_text()))
    info = generate(data, size, seed)
    marker.write_text(json.dumps(asdict(info)))
    return info


# -------------------------------------------------------------------------------------- measuring
def _status(field: str) -> int:
    """A ``VmRSS``/``VmHWM`` value of this process in bytes (0 where /proc is absent)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset the process's RSS high-water mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


class Meter:
    """Exclusive wall time and peak RSS per stage; stages nest (a child's time is not its parent's)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.peak: dict[str, int] = defaultdict(int)  # RSS high-water mark while the stage ran
        self.growth: dict[str, int] = defaultdict(int)  # peak - RSS when the stage started
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[list[Any]] = []  # [name, time of the last (re)start, RSS at start]
        self.per_stage_peak = _reset_peak()

    @contextmanager
    def stage(self, name: str):
        now = time.perf_counter()
        if self._stack:
            parent = self._stack[-1]
            self.seconds[parent[0]] += now - parent[1]
            self._outer_peak(_status("VmHWM"))
        _reset_peak()
        frame = [name, time.perf_counter(), _status("VmRSS")]
        self._stack.append(frame)
        try:
            yield
        finally:
            hwm = _status("VmHWM")
            now = time.perf_counter()
            self._stack.pop()
            self.seconds[name] += now - frame[1]
            self.calls[name] += 1
            self.peak[name] = max(self.peak[name], hwm)
            self.growth[name] = max(self.growth[name], hwm - frame[2])
            if self._stack:
                self._stack[-1][1] = now  # the parent's clock runs again
                self._outer_peak(hwm)

    def _outer_peak(self, hwm: int) -> None:
        """Credit the high-water mark so far to every stage still open (the mark is about to be reset)."""
        for name, _, rss in self._stack:
            self.peak[name] = max(self.peak[name], hwm)
            self.growth[name] = max(self.growth[name], hwm - rss)


class HashEncoder:
    """A tiny dense encoder: each word adds +-1 to ``taps`` of ``dim`` buckets (signed feature hashing).

    Deterministic (a word's buckets come from its blake2b digest) and cheap, so what the harness does
    around it (digests, caching, search) shows; its own time is metered as the ``model`` stage.
    """

    name = "hash-encoder"
    similarity = "cosine"

    def __init__(self, dim: int, meter: Meter, taps: int = 4) -> None:
        self.dim, self.taps, self.meter = dim, taps, meter
        self._ids: dict[str, int] = {}
        self._codes = np.zeros((1024, taps), dtype=np.int64)  # per word id: bucket * 2 + sign bit

    def _new_word(self, word: str) -> int:
        i = len(self._ids)
        if i == len(self._codes):
            self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
        digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8 * self.taps).digest()
        raw = np.frombuffer(digest, dtype=np.uint64).astype(np.int64) & ((1 << 62) - 1)
        self._codes[i] = (raw % self.dim) * 2 + (raw >> 40) % 2
        self._ids[word] = i
        return i

    def encode(self, texts: list[str], kind: str = "query", instruction: str | None = None) -> np.ndarray:
        with self.meter.stage("model"):
            if kind == "query" and instruction:
                texts = [f"{instruction} {text}" for text in texts]
            split = [text.split() for text in texts]
            lengths = np.fromiter(map(len, split), dtype=np.int64, count=len(split))
            ids, new = self._ids, self._new_word
            words = np.fromiter((ids[w] if w in ids else new(w) for w in itertools.chain.from_iterable(split)),
                                dtype=np.int64, count=int(lengths.sum()))
            code = self._codes[words].ravel()
            rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths * self.taps)
            flat = np.bincount(rows * self.dim + code // 2, weights=1.0 - 2.0 * (code % 2),
                               minlength=len(texts) * self.dim)
            out = flat.reshape(len(texts), self.dim).astype(np.float32)
            out[:, 0] += 0.5  # no all-zero vector for an empty text
            return out

    def config(self) -> dict[str, Any]:
        return {"class": "HashEncoder", "dim": self.dim, "taps": self.taps}


# ------------------------------------------------------------------------------------------ child
def _wrap(obj: Any, attr: str, meter: Meter, stage: str) -> None:
    """Meter every call of ``obj.attr`` as ``stage`` (on the instance or class given)."""
    original = getattr(obj, attr)

    def metered(*args: Any, **kwargs: Any) -> Any:
        with meter.stage(stage):
            return original(*args, **kwargs)

    setattr(obj, attr, metered)


def _mmap_backed(array: Any) -> bool:
    """True when ``array`` is (a view of) a memory-mapped file."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = getattr(array, "base", None)
    return False


def write_registry(folder: Path) -> Path:
    """A copy of lmeb's task registry in which MemBench keeps one corpus at the dataset root.

    The child runs get it as ``$LMEB_TASKS_DIR``, so the engine reads the generated layout through its
    public API (``lmeb.evaluate(model, tasks="MemBench")``) like any registry task.
    """
    import shutil

    from lmeb.tasks.registry import TASKS_DIR

    shutil.copytree(TASKS_DIR, folder, dirs_exist_ok=True)
    path = next(folder.rglob("MemBench.yaml"))
    text = path.read_text(encoding="utf-8")
    layout = f"layout: {get_task('MemBench').layout}"
    if layout not in text:
        raise SystemExit(f"{path}: no '{layout}' line to change")
    path.write_text(text.replace(layout, "layout: corpus_at_dataset_root"), encoding="utf-8")
    return folder


def _meter_engine(meter: Meter) -> None:
    """Add RSS to the engine's own stage timer and meter results writes as ``write``."""
    import importlib

    for name in ("lmeb.engine.strategy", "lmeb.engine.runner"):  # the timer and the modules that imported it by name
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for attr in ("timed", "_timed"):
            timed = getattr(module, attr, None)
            if timed is None or getattr(timed, "metered", False):
                continue

            def metered_timed(seconds: dict[str, float], stage: str, _timed: Any = timed):
                @contextmanager
                def both():
                    with _timed(seconds, stage), meter.stage(stage):
                        yield
                return both()

            metered_timed.metered = True  # type: ignore[attr-defined]
            setattr(module, attr, metered_timed)
    try:
        from lmeb.results.store import ResultsStore

        _wrap(ResultsStore, "write", meter, "write")
    except ImportError:
        from lmeb.engine.runner import Runner

        _wrap(Runner, "_write", meter, "write")


def child(data: Path, work: Path, model_name: str, dim: int) -> dict[str, Any]:
    """Run the engine on the dataset at ``data`` with one model; stage times and memory as a dict."""
    import lmeb
    from lmeb.data.reader import TaskReader
    from lmeb.engine.options import EvalOptions

    meter = Meter()
    _meter_engine(meter)
    if model_name == "bm25":
        from lmeb.models.registry import load_model

        model = load_model("bm25")
        _wrap(model, "index", meter, "tokenize")
    else:
        model = HashEncoder(dim, meter)
    cache = work / "cache"
    rss_before = _status("VmRSS")
    started = time.perf_counter()
    if hasattr(lmeb, "evaluate"):
        results = lmeb.evaluate(model, tasks="MemBench", data=data, output=work / f"results-{model_name}",
                                cache_dir=cache, name=model_name,
                                options=EvalOptions(overwrite=True))
        summary = results.summaries[0]
    else:  # before lmeb.evaluate existed
        from lmeb.cache import Cache
        from lmeb.engine.options import RunOptions
        from lmeb.engine.runner import Runner
        from lmeb.tasks.registry import get_task as registry_task

        options = RunOptions(data=data, output=work / f"results-{model_name}", overwrite=True)
        task = registry_task("MemBench")
        summary = Runner(model, options, name=model_name, cache=Cache(cache)).run_dataset(task,
                         tuple(task.subset_names))
    total = time.perf_counter() - started
    out: dict[str, Any] = {
        "model": model_name,
        "seconds": {k: round(v, 3) for k, v in meter.seconds.items()},
        "peak": dict(meter.peak),
        "growth": dict(meter.growth),
        "total": round(total, 3),
        "rss_before": rss_before,
        # resetting the high-water mark per stage resets ru_maxrss too: the process peak is the stages' max
        "maxrss": max([*meter.peak.values(), _status("VmHWM"),
                       resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024]),
        "per_stage_peak": meter.per_stage_peak,
        "subsets": summary.subsets_run,
        "ndcg_at_10": summary.ndcg_at_10,
        "texts": summary.texts.as_dict(),
    }
    # the corpus text's own footprint (what "one copy" means) and how the cache serves vectors
    task = membench_task()
    corpus = TaskReader(task, data).load(task.subset_names[0]).corpus
    out["text_bytes"] = sum(sys.getsizeof(t) for t in corpus.texts) + sys.getsizeof(corpus.texts)
    out["documents"] = len(corpus)
    if model_name == "bm25":  # the index the searcher keeps (reused: the same texts are not indexed again)
        index = model.index(corpus.texts).scores
        out["index_bytes"] = int(index["data"].nbytes + index["indices"].nbytes + index["indptr"].nbytes)
    if model_name != "bm25":
        from lmeb.embeddings.disk_cache import DiskCache

        disk = DiskCache(cache)
        chunks = [c for ns in sorted(p.name for p in disk.root.iterdir() if p.is_dir())
                  for c in disk.table(ns).chunks]
        out["cache_chunks"] = len(chunks)
        out["cache_mmap"] = bool(chunks) and all(_mmap_backed(c) for c in chunks)
    from lmeb.engine import retrieval

    out["block_cells"] = int(getattr(retrieval, "_MAX_BLOCK", 0))
    return out


# ------------------------------------------------------------------------------------------ parent
def fit_exponent(sizes: list[int], values: list[float]) -> float | None:
    """Slope of log(value) against log(size) (least squares); None with fewer than two positive points."""
    pts = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if v > 0]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def run_child(data: Path, work: Path, model: str, dim: int, registry: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--data", str(data), "--work", str(work), "--model", model,
           "--dim", str(dim)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LMEB_TASKS_DIR": str(registry)})
    if proc.returncode != 0:
        raise SystemExit(f"{model} on {data} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gb(n: float) -> str:
    return f"{n / GB:.2f}"


def report(rows: list[dict[str, Any]], dim: int) -> list[str]:
    """Print the table, exponents and target checks; return the failed targets."""
    failed: list[str] = []
    models = list(dict.fromkeys(r["model"] for r in rows))
    print("\nseconds per stage (exclusive), peak RSS in GB (process; stage peaks in brackets)")
    head = f"{'model':<10}{'docs':>9}{'queries':>8}" + "".join(f"{s:>9}" for s in STAGES) + \
        f"{'other':>8}{'total':>9}{'peak GB':>9}"
    print(head)
    for r in rows:
        sec = r["seconds"]
        other = r["total"] - sum(sec.values())
        print(f"{r['model']:<10}{r['documents']:>9,}{r['queries']:>8,}"
              + "".join(f"{sec[s]:>9.2f}" if s in sec else f"{'':>9}" for s in STAGES)
              + f"{other:>8.2f}{r['total']:>9.2f}{_gb(r['maxrss']):>9}")
    print("\npeak RSS per stage (GB) / growth over the stage's start (GB)")
    for r in rows:
        print(f"{r['model']:<10}{r['documents']:>9,}  " + "  ".join(
            f"{s} {_gb(r['peak'][s])}/{_gb(r['growth'][s])}" for s in STAGES if s in r["peak"]))
    print(f"\nfitted exponent of time vs documents (log-log least squares; linear <= {LINEAR_EXPONENT})")
    for model in models:
        mine = sorted((r for r in rows if r["model"] == model), key=lambda r: r["documents"])
        sizes = [r["documents"] for r in mine]
        if len(sizes) < 2:
            continue
        parts = []
        for stage in (*STAGES, "total"):
            values = [r["total"] if stage == "total" else r["seconds"].get(stage, 0.0) for r in mine]
            exp = fit_exponent(sizes, values)
            if exp is None:
                continue
            parts.append(f"{stage} {exp:.2f}")
            if exp > LINEAR_EXPONENT and values[-1] >= 0.5:
                failed.append(f"{model}: {stage} grows as documents^{exp:.2f}")
        mem = fit_exponent(sizes, [r["maxrss"] - r["rss_before"] for r in mine])
        print(f"{model:<10} " + ", ".join(parts) + (f"; RSS growth {mem:.2f}" if mem is not None else ""))
    print("\ntargets")
    for r in rows:
        where = f"{r['model']} {r['documents']:,}"
        vectors = r["documents"] * dim * 4 if r["model"].startswith("hash") else 0
        limit = vectors + RSS_SLACK
        ok = r["maxrss"] <= limit
        print(f"  {'ok  ' if ok else 'FAIL'} {where}: peak RSS {_gb(r['maxrss'])} GB <= vectors {_gb(vectors)} "
              f"+ 1.5 = {_gb(limit)} GB")
        if not ok:
            failed.append(f"{where}: peak RSS {_gb(r['maxrss'])} GB > {_gb(limit)} GB")
        text = r["text_bytes"]
        worst = []
        for stage in STAGES:
            if stage not in r["growth"]:
                continue
            own = vectors if stage in ("model", "encode") else 0  # what the stage is meant to hold
            if stage in ("tokenize", "search"):
                own = r.get("index_bytes", 0)
            copies = (r["growth"][stage] - own - COPY_SLACK) / text
            allowed = 2.0 if stage == "load" else 1.0  # load makes the one copy the run keeps
            worst.append((copies - allowed, copies, stage))
            if copies >= allowed:
                failed.append(f"{where}: {stage} grows RSS by {copies:.2f} copies of the corpus text")
        _, copies, stage = max(worst)
        ok = not any(margin >= 0 for margin, _, _ in worst)
        print(f"  {'ok  ' if ok else 'FAIL'} {where}: corpus text ({_gb(text)} GB) held once: RSS growth beyond a "
              f"stage's own arrays and {COPY_SLACK // MB} MB, in copies of the text, is largest in {stage}: "
              f"{max(copies, 0.0):.2f} (load may make 1)")
        if "cache_mmap" in r:
            ok = r["cache_mmap"]
            print(f"  {'ok  ' if ok else 'FAIL'} {where}: embedding cache memory-mapped "
                  f"({r['cache_chunks']} shard(s))")
            if not ok:
                failed.append(f"{where}: embedding cache not memory-mapped")
    if rows:
        print(f"  block: candidate-restricted scoring computes at most {rows[0]['block_cells']:,} similarity cells "
              "at once (tests/test_retrieval.py checks the bound)")
    return failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--models", default="bm25,hash,hash-warm", help="bm25, hash, hash-warm")
    parser.add_argument("--dim", type=int, default=384, help="hash encoder dimension (MiniLM's 384)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--keep-data", type=Path, metavar="DIR",
                        help="keep the generated corpora in DIR (outside the repository) and reuse them next time")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        model = "hash" if args.model == "hash-warm" else args.model
        result = child(args.data, args.work, model, args.dim)
        result["model"] = args.model
        print(json.dumps(result))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - {"bm25", "hash", "hash-warm"})
    if unknown:
        raise SystemExit(f"--models: unknown {', '.join(unknown)} (choose from bm25, hash, hash-warm)")
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()}")
    if args.keep_data is not None and args.keep_data.resolve().is_relative_to(REPO):
        raise SystemExit(f"--keep-data {args.keep_data}: must be outside the repository")
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="lmeb-scale-") as tmp:
            data, work = Path(tmp) / "data", Path(tmp) / "work"
            if args.keep_data is not None:
                data = args.keep_data / f"membench-{size}-seed{args.seed}"
            info = _generated(data, size, args.seed)
            registry = write_registry(Path(tmp) / "tasks")
            print(f"{size:,} documents: {info.queries:,} queries, {info.scenes:,} scenes, {info.words:,} words, "
                  f"corpus.jsonl {info.corpus_bytes / MB:.0f} MB (generated in {info.seconds:.1f} s)", flush=True)
            for model in models:
                result = run_child(data, work, model, args.dim, registry)
                result["queries"] = info.queries
                result["load_average"] = os.getloadavg()
                rows.append(result)
                print(f"  {model}: {result['total']:.2f} s, peak RSS {_gb(result['maxrss'])} GB", flush=True)
    failed = report(rows, args.dim)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "dim": args.dim, "failed": failed}, indent=1))
    print("\nall targets met" if not failed else "\nnot met:\n  " + "\n  ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
