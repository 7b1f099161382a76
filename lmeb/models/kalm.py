"""KaLM-Reranker-V1 (t5gemma2 encoder-decoder) as an LMEB reranker, with a passage cache.

The model is "fast but not late interaction" (FBNL): the encoder reads only the passage, its states
are mean-pooled over chunks of ``chunk_size`` tokens (Matryoshka embedding pooling, MEP), and the
decoder reads the instructions and the query while cross-attending to the pooled passage. Because
the passage representation does not depend on the query, this adapter computes it once per unique
passage and reuses it for every query that reranks it (RAM LRU bounded in bytes, plus an optional
on-disk cache); only the decoder runs per (query, passage) pair. Scores equal the public reference
wrapper (mteb ``KaLMRerankerWrapper``, which re-encodes the passage for every pair) number for
number; see ``lmeb/spec/kalm_reranker.md``.

Both encoder and decoder inputs are padded on the RIGHT whatever the tokenizer says: the score is
read at the last real decoder token, and MEP chunks must start at the passage's first token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmeb.digest import json_digest
from lmeb.errors import LmebError
from lmeb.models.hf import pad_batch
from lmeb.models.kalm_cache import DiskPassageCache, PassageCache, text_key
from lmeb.models.kalm_inputs import DOCUMENT_PREFIX, KalmOptions, decoder_prompt, mep_pool
from lmeb.models.loading import (
    ModelSource,
    check_remote_code,
    default_device,
    display_name,
    loading_errors,
    normalize_precision,
    options_of,
    resolve_source,
    source_identity,
    torch_dtype,
)
from lmeb.models.oom import run_with_backoff
from lmeb.reporter import Reporter

if TYPE_CHECKING:
    import torch

def _token_count(token_ids: list[int]) -> str:
    """A tokenized passage's length for the out-of-memory error."""
    return f"{len(token_ids)} tokens"


@dataclass
class _Work:
    """One ``score`` call's pairs grouped by unique passage (``KalmReranker._plan``)."""

    pairs: list[tuple[str, str]]
    pair_doc: list[int]  # pair -> its passage
    doc_keys: list[str]  # passage -> its cache key
    prompt_ids: dict[str, list[int]] = field(default_factory=dict)  # query -> the decoder's token ids
    states: dict[int, Any] = field(default_factory=dict)  # passage -> cached pooled states (until its wave)
    token_ids: dict[int, list[int]] = field(default_factory=dict)  # passage -> token ids, for those to encode
    width: list[int] = field(default_factory=list)  # passage -> its number of pooled vectors
    pairs_of: dict[int, list[int]] = field(default_factory=dict)  # passage -> its pairs, in input order


class KalmReranker:
    """KaLM-Reranker-V1 scores P(yes) for (query, passage) pairs; see the module docstring.

    ``instruction`` passed to ``score`` fills the prompt's ``<Instruct>`` slot; ``None`` uses the
    model's default instruction (what mteb gives LMEB tasks, which carry no instruction column).
    ``share_passages=False`` encodes the passage once per pair, like the reference (for timing).
    ``precision`` (fp32/fp16/bf16, lmeb's CLI name) is an alias of ``dtype``; default bf16 on CUDA, else fp32.
    """

    options_type = KalmOptions  # the options it takes (lmeb.models.registry checks names against its fields)
    reporter: Reporter | None = None  # log lines and bars, given once by the engine (lmeb.engine.runner)

    def __init__(self, path_or_id: str | Path, options: KalmOptions | None = None, **given: Any) -> None:
        """``KalmReranker(path, KalmOptions(...))`` or ``KalmReranker(path, chunk_size=4, ...)``."""
        opts: KalmOptions = options_of(KalmOptions, options, given, "the KaLM reranker")
        self.path_or_id = str(path_or_id)
        source = resolve_source(self.path_or_id, opts.revision)
        self.name = opts.name or display_name(source)
        self.chunk_size = opts.chunk_size
        self.max_length = int(opts.max_length)
        self.query_max_length = int(opts.query_max_length)
        self.system_instruction = opts.system_instruction
        self.instruction = opts.instruction
        self.batch_size = int(opts.batch_size)
        self.share_passages = opts.share_passages
        self.progress = opts.progress
        import torch  # after the path and option checks: a bad path costs no import

        self.device = torch.device(default_device(opts.device))  # one device check for every adapter
        dtype, precision = opts.dtype, opts.precision
        if dtype is not None and precision is not None and normalize_precision(dtype) != normalize_precision(precision):
            raise LmebError(f"{self.name}: dtype {dtype!r} and precision {precision!r} disagree; give one")
        self.precision = normalize_precision(dtype or precision or ("bf16" if self.device.type == "cuda" else "fp32"))
        self.dtype = torch_dtype(self.precision)
        self._load(source, opts.revision)
        self.yes_id = self._answer_id("yes")
        self.no_id = self._answer_id("no")
        self.identity = {**source_identity(source), "dtype": self.precision, "chunk_size": self.chunk_size,
                         "max_length": self.max_length, "format": "kalm-passage-states/1"}
        self.revision = self.identity["revision"]
        key = json_digest(self.identity)[:20]
        self.ram_cache = PassageCache(opts.cache_max_bytes)
        self.disk_cache = (DiskPassageCache(Path(opts.cache_dir) / f"kalm-{key}", self.identity) if opts.cache_dir
                           else None)
        self.fast_head = True  # logits of the last real position only (False: the full forward, for tests)
        self.stats = {"pairs": 0, "encoded": 0, "ram_hits": 0, "disk_hits": 0, "encoder_batches": 0,
                      "decoder_batches": 0}

    def _load(self, source: ModelSource, revision: str | None) -> None:
        """Tokenizer (right padding, a pad token) and model on ``self.device`` in eval mode; no model code runs."""
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        where = str(source.local_dir) if source.local_dir is not None else source.spec
        local_only = source.local_dir is not None
        check_remote_code(source, False, f"reranker {source.spec!r}")
        with loading_errors(source):  # no model code runs: trust_remote_code=False, never a prompt
            self.tokenizer = AutoTokenizer.from_pretrained(where, revision=revision, local_files_only=local_only,
                                                           trust_remote_code=False)
            self.model = AutoModelForSeq2SeqLM.from_pretrained(
                where, revision=revision, dtype=self.dtype, local_files_only=local_only, trust_remote_code=False
            )
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise LmebError(f"{self.name}: the tokenizer has neither a pad nor an EOS token")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"  # the score is read at the last real token; see module docstring
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.model.to(self.device).eval()

    # ----------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "class": "KalmReranker",
            "model": self.path_or_id,
            "revision": self.revision,
            "chunk_size": self.chunk_size,
            "max_length": self.max_length,
            "query_max_length": self.query_max_length,
            "system_instruction": self.system_instruction,
            "default_instruction": self.instruction,
            "dtype": self.precision,
            "fingerprint": self.identity["fingerprint"],
            "fingerprint_scheme": self.identity.get("fingerprint_scheme"),
            "padding_side": "right",
            "yes_id": self.yes_id,
            "no_id": self.no_id,
        }

    def _answer_id(self, word: str) -> int:
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if not ids:
            raise LmebError(f"{self.name}: the tokenizer gives no token for {word!r}")
        return int(ids[-1])

    def prompt(self, query: str, instruction: str | None = None) -> str:
        """The decoder text for ``query``: truncated to ``query_max_length`` tokens and decoded back."""
        ids = self.tokenizer(query, add_special_tokens=False, truncation=True,
                             max_length=self.query_max_length)["input_ids"]
        truncated = self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return decoder_prompt(self.system_instruction, self.instruction if instruction is None else instruction,
                              truncated)

    # ----------------------------------------------------------------------------------------------
    def _encode(self, token_ids: list[list[int]]) -> list[torch.Tensor]:
        """Pooled encoder states of each tokenized passage (on the CPU, trimmed to its real chunks); a batch
        out of accelerator memory is halved and retried (``lmeb.models.oom``)."""
        out: list[torch.Tensor] = []
        for start in range(0, len(token_ids), self.batch_size):
            batch = token_ids[start:start + self.batch_size]
            for states in run_with_backoff(batch, self._encode_batch, stats=self.stats, name=self.name,
                                           length=_token_count):
                out.extend(states)
        self.stats["encoded"] += len(token_ids)
        return out

    def _encode_batch(self, batch: list[list[int]]) -> list[torch.Tensor]:
        """One encoder forward over ``batch`` (right-padded), MEP-pooled, each row trimmed and moved to the CPU."""
        padded = pad_batch(batch, {}, self.pad_id, "right")
        ids, mask = padded["input_ids"].to(self.device), padded["attention_mask"].to(self.device)
        hidden = self.model.get_encoder()(input_ids=ids, attention_mask=mask, return_dict=True).last_hidden_state
        pooled, _ = mep_pool(hidden, mask, self.chunk_size)
        r = self.chunk_size or 1
        self.stats["encoder_batches"] += 1
        return [pooled[row, :math.ceil(len(seq) / r)].to("cpu", copy=True) for row, seq in enumerate(batch)]

    def _decoder_inputs(self, states: list[torch.Tensor], prompts: list[list[int]]) -> dict[str, Any]:
        """The decoder's keyword inputs for (pooled passage, tokenized prompt) rows, both right-padded to the
        batch maximum (prompts to a multiple of 8), on the device."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        n = len(states)
        enc_width = max(s.shape[0] for s in states)
        enc = torch.zeros((n, enc_width, states[0].shape[1]), dtype=states[0].dtype)
        enc_mask = torch.zeros((n, enc_width), dtype=torch.long)
        for row, s in enumerate(states):
            enc[row, :s.shape[0]] = s
            enc_mask[row, :s.shape[0]] = 1
        dec_width = -(-max(len(p) for p in prompts) // 8) * 8
        dec = torch.full((n, dec_width), self.pad_id, dtype=torch.long)
        dec_mask = torch.zeros((n, dec_width), dtype=torch.long)
        for row, p in enumerate(prompts):
            dec[row, :len(p)] = torch.tensor(p, dtype=torch.long)
            dec_mask[row, :len(p)] = 1
        enc, enc_mask = enc.to(self.device, self.dtype), enc_mask.to(self.device)
        dec, dec_mask = dec.to(self.device), dec_mask.to(self.device)
        return {"encoder_outputs": BaseModelOutput(last_hidden_state=enc), "attention_mask": enc_mask,
                "decoder_input_ids": dec, "decoder_attention_mask": dec_mask, "use_cache": False,
                "return_dict": True}

    def _decode(self, states: list[torch.Tensor], prompts: list[list[int]]) -> np.ndarray:
        """P(yes) for each (pooled passage, tokenized prompt), read at each prompt's last real token."""
        import torch

        kwargs = self._decoder_inputs(states, prompts)
        last = kwargs["decoder_attention_mask"].sum(dim=1) - 1
        rows = torch.arange(len(states), device=self.device)
        core, head = getattr(self.model, "model", None), getattr(self.model, "lm_head", None)
        if self.fast_head and core is not None and head is not None:
            # logits at the last real position only: a (batch, vocab) matrix instead of (batch, seq, vocab)
            logits = head(core(**kwargs).last_hidden_state[rows, last])
            cap = getattr(getattr(self.model.config, "decoder", self.model.config), "final_logit_softcapping", None)
            if cap is not None:
                logits = torch.tanh(logits / cap) * cap
        else:
            logits = self.model(**kwargs).logits[rows, last]
        pair = torch.stack((logits[:, self.yes_id], logits[:, self.no_id]), dim=-1).float()
        finite = torch.isfinite(pair).all(dim=-1)
        if not bool(finite.all()):
            raise LmebError(
                f"{self.name}: non-finite yes/no logits for {int((~finite).sum())} pair(s) in "
                f"{self.precision}; use bf16 or fp32"
            )
        self.stats["decoder_batches"] += 1
        return torch.softmax(pair, dim=-1)[:, 0].cpu().numpy().astype(np.float64)

    def _lookup(self, key: str) -> torch.Tensor | None:
        states = self.ram_cache.get(key)
        if states is not None:
            self.stats["ram_hits"] += 1
            return states
        if self.disk_cache is not None:
            states = self.disk_cache.get(key)
            if states is not None:
                self.stats["disk_hits"] += 1
                self.ram_cache.put(key, states)
        return states

    # ----------------------------------------------------------------------------------------------
    def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> np.ndarray:
        """P(yes) for each (query, passage) pair, in input order.

        Each unique passage is encoded at most once (fewer with the caches); pairs are then decoded in
        batches of similar length, in "waves" of passages whose pooled states fit the RAM budget.
        """
        import torch

        pairs = self._checked(pairs)
        scores = np.zeros(len(pairs), dtype=np.float64)
        if not pairs:
            return scores
        self.stats["pairs"] += len(pairs)
        work = self._plan(pairs, instruction)
        reporter = self.reporter or Reporter(bars=self.progress)  # the engine's, set once (lmeb.reporter)
        bar = reporter.bar(total=len(pairs), desc=f"{self.name} rerank", unit="pair")
        with torch.inference_mode():
            for wave in self._waves(work):
                self._score_wave(work, wave, scores, bar)
        bar.close()
        return scores

    def _checked(self, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
        pairs = list(pairs)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise LmebError(f"{self.name}: pair {i} is not a (query, passage) pair of strings")
        return pairs

    def _plan(self, pairs: list[tuple[str, str]], instruction: str | None) -> _Work:
        """The pairs grouped by unique passage (one per pair without ``share_passages``), each query's
        tokenized prompt, the passages' cached states, and the token ids of those still to encode."""
        doc_index: dict[str, int] = {}
        pair_doc: list[int] = []
        for i, (_, doc) in enumerate(pairs):
            key = text_key(doc) if self.share_passages else f"pair-{i}"
            pair_doc.append(doc_index.setdefault(key, len(doc_index)))
        work = _Work(pairs, pair_doc, list(doc_index))
        for i, d in enumerate(pair_doc):
            work.pairs_of.setdefault(d, []).append(i)
        doc_text = [""] * len(work.doc_keys)
        for (_, doc), d in zip(pairs, pair_doc, strict=True):
            doc_text[d] = doc
        for query, _ in pairs:
            if query not in work.prompt_ids:
                work.prompt_ids[query] = self.tokenizer(self.prompt(query, instruction),
                                                        add_special_tokens=False)["input_ids"]
        if self.share_passages:
            for d, key in enumerate(work.doc_keys):
                hit = self._lookup(key)
                if hit is not None:
                    work.states[d] = hit
        missing = [d for d in range(len(work.doc_keys)) if d not in work.states]
        if missing:
            encoded = self.tokenizer([DOCUMENT_PREFIX + doc_text[d] for d in missing], add_special_tokens=False,
                                     truncation=True, max_length=self.max_length)["input_ids"]
            work.token_ids = dict(zip(missing, encoded, strict=True))
        r = self.chunk_size or 1
        work.width = [work.states[d].shape[0] if d in work.states else math.ceil(len(work.token_ids[d]) / r)
                      for d in range(len(work.doc_keys))]
        return work

    def _waves(self, work: _Work) -> list[list[int]]:
        """Passages (longest first) in waves whose pooled states fit the RAM budget, at least one each."""
        import torch

        hidden = int(self.model.get_input_embeddings().weight.shape[1])  # the encoder's width
        per_vector = hidden * torch.empty((), dtype=self.dtype).element_size()
        budget = max(self.ram_cache.max_bytes, 1)
        waves: list[list[int]] = []
        wave: list[int] = []
        used = 0
        for d in sorted(range(len(work.doc_keys)), key=lambda d: -work.width[d]):
            size = work.width[d] * per_vector
            if wave and used + size > budget:
                waves.append(wave)
                wave, used = [], 0
            wave.append(d)
            used += size
        if wave:
            waves.append(wave)
        return waves

    def _wave_states(self, work: _Work, wave: list[int]) -> dict[int, torch.Tensor]:
        """The pooled states of a wave's passages: the cached ones, the rest encoded now (and cached)."""
        local = {d: work.states.pop(d) for d in wave if d in work.states}
        todo = [d for d in wave if d not in local]
        if todo:
            for d, s in zip(todo, self._encode([work.token_ids[d] for d in todo]), strict=True):
                local[d] = s
                if self.share_passages:
                    self.ram_cache.put(work.doc_keys[d], s)
                    if self.disk_cache is not None:
                        self.disk_cache.put(work.doc_keys[d], s)
        return local

    def _score_wave(self, work: _Work, wave: list[int], scores: np.ndarray, bar: Any) -> None:
        """Decode every pair of the wave's passages into ``scores``, longest first, in batches."""
        local = self._wave_states(work, wave)
        pairs, pair_doc, prompt_ids, width = work.pairs, work.pair_doc, work.prompt_ids, work.width
        members = [i for d in wave for i in work.pairs_of[d]]
        members.sort(key=lambda i: (-width[pair_doc[i]], -len(prompt_ids[pairs[i][0]])))

        def decode(batch: list[int]) -> tuple[list[int], np.ndarray]:
            return batch, self._decode([local[pair_doc[i]] for i in batch], [prompt_ids[pairs[i][0]] for i in batch])

        def length(i: int) -> str:
            return f"{width[pair_doc[i]]} passage states + {len(prompt_ids[pairs[i][0]])} prompt tokens"

        for start in range(0, len(members), self.batch_size):
            batch = members[start:start + self.batch_size]
            for piece, values in run_with_backoff(batch, decode, stats=self.stats, name=self.name, length=length):
                scores[piece] = values
            bar.update(len(batch))
