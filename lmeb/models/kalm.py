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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lmeb.digest import json_digest
from lmeb.errors import LmebError
from lmeb.models.hf import pad_batch
from lmeb.models.kalm_cache import DiskPassageCache, PassageCache, text_key
from lmeb.models.loading import (
    check_remote_code,
    default_device,
    display_name,
    loading_errors,
    normalize_precision,
    resolve_source,
    source_identity,
    torch_dtype,
)
from lmeb.models.oom import run_with_backoff
from lmeb.reporter import Reporter

if TYPE_CHECKING:
    import torch

DEFAULT_INSTRUCTION = "Given a query, retrieve documents that answer the query."
DEFAULT_SYSTEM_INSTRUCTION = (
    "Judge whether the Document meets the requirements based on the Query and the Instruct provided. "
    'Note that the answer can only be "yes" or "no".'
)
DOCUMENT_PREFIX = "<Document>: "


def decoder_prompt(system_instruction: str, instruction: str, query: str) -> str:
    """The decoder's input text (the query already truncated); the tokenizer adds no special tokens."""
    return (
        f"<bos><start_of_turn>user\n{system_instruction}\n\n<Instruct>: {instruction}\n"
        f"<Query>: {query}<end_of_turn>\n<start_of_turn>model\n\n\n\n"
    )


def mep_pool(hidden: torch.Tensor, mask: torch.Tensor, chunk_size: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Matryoshka embedding pooling: mean of each chunk of ``chunk_size`` tokens over its real tokens.

    ``hidden`` (batch, seq, dim), ``mask`` (batch, seq) with 1 for real tokens. The sequence is
    right-padded to a multiple of ``chunk_size``; a partial chunk is divided by its real-token count;
    a chunk with no real token is zero with mask 0. ``None`` returns the inputs unchanged.
    """
    import torch.nn.functional as F

    if chunk_size is None:
        return hidden, mask
    batch, length, dim = hidden.shape
    chunks = -(-length // chunk_size)
    pad = chunks * chunk_size - length
    if pad:
        hidden = F.pad(hidden, (0, 0, 0, pad))
        mask = F.pad(mask, (0, pad))
    chunk_mask = mask.view(batch, chunks, chunk_size)
    summed = (hidden.view(batch, chunks, chunk_size, dim) * chunk_mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=2)
    counts = chunk_mask.sum(dim=2)
    pooled = summed / counts.clamp(min=1).unsqueeze(-1).to(hidden.dtype)
    return pooled, (counts > 0).to(mask.dtype)


def _token_count(token_ids: list[int]) -> str:
    """A tokenized passage's length for the out-of-memory error."""
    return f"{len(token_ids)} tokens"


class KalmReranker:
    """KaLM-Reranker-V1 scores P(yes) for (query, passage) pairs; see the module docstring.

    ``instruction`` passed to ``score`` fills the prompt's ``<Instruct>`` slot; ``None`` uses the
    model's default instruction (what mteb gives LMEB tasks, which carry no instruction column).
    ``share_passages=False`` encodes the passage once per pair, like the reference (for timing).
    ``precision`` (fp32/fp16/bf16, lmeb's CLI name) is an alias of ``dtype``; default bf16 on CUDA, else fp32.
    """

    reporter: Reporter | None = None  # log lines and bars, given once by the engine (lmeb.engine.runner)

    def __init__(
        self,
        path_or_id: str | Path,
        chunk_size: int | None = 4,
        max_length: int = 1024,
        query_max_length: int = 512,
        system_instruction: str = DEFAULT_SYSTEM_INSTRUCTION,
        batch_size: int = 32,
        device: str | None = None,
        dtype: str | None = None,
        cache_dir: str | Path | None = None,
        cache_max_bytes: int = 2 * 1024**3,
        *,
        instruction: str = DEFAULT_INSTRUCTION,
        precision: str | None = None,
        revision: str | None = None,
        name: str | None = None,
        share_passages: bool = True,
        progress: bool = False,
    ) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size <= 0):
            raise LmebError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
        if max_length <= 0 or query_max_length <= 0 or batch_size <= 0:
            raise LmebError("max_length, query_max_length and batch_size must be positive")
        self.path_or_id = str(path_or_id)
        source = resolve_source(self.path_or_id, revision)
        self.name = name or display_name(source)
        self.chunk_size = chunk_size
        self.max_length = int(max_length)
        self.query_max_length = int(query_max_length)
        self.system_instruction = system_instruction
        self.instruction = instruction
        self.batch_size = int(batch_size)
        self.share_passages = share_passages
        self.progress = progress
        self.device = torch.device(default_device(device))  # one device check for every adapter
        if dtype is not None and precision is not None and normalize_precision(dtype) != normalize_precision(precision):
            raise LmebError(f"{self.name}: dtype {dtype!r} and precision {precision!r} disagree; give one")
        precision = normalize_precision(dtype or precision or ("bf16" if self.device.type == "cuda" else "fp32"))
        self.precision = precision
        self.dtype = torch_dtype(precision)
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
        self.yes_id = self._answer_id("yes")
        self.no_id = self._answer_id("no")
        self.identity = {**source_identity(source), "dtype": precision, "chunk_size": chunk_size,
                         "max_length": self.max_length, "format": "kalm-passage-states/1"}
        self.revision = self.identity["revision"]
        key = json_digest(self.identity)[:20]
        self.ram_cache = PassageCache(cache_max_bytes)
        self.disk_cache = DiskPassageCache(Path(cache_dir) / f"kalm-{key}", self.identity) if cache_dir else None
        self.fast_head = True  # logits of the last real position only (False: the full forward, for tests)
        self.stats = {"pairs": 0, "encoded": 0, "ram_hits": 0, "disk_hits": 0, "encoder_batches": 0,
                      "decoder_batches": 0}

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

    def _decode(self, states: list[torch.Tensor], prompts: list[list[int]]) -> np.ndarray:
        """P(yes) for each (pooled passage, tokenized prompt); pads both to the batch maximum."""
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
        last = dec_mask.sum(dim=1) - 1
        rows = torch.arange(n, device=self.device)
        kwargs = {"encoder_outputs": BaseModelOutput(last_hidden_state=enc), "attention_mask": enc_mask,
                  "decoder_input_ids": dec, "decoder_attention_mask": dec_mask, "use_cache": False,
                  "return_dict": True}
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

        pairs = list(pairs)
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(t, str) for t in pair)):
                raise LmebError(f"{self.name}: pair {i} is not a (query, passage) pair of strings")
        scores = np.zeros(len(pairs), dtype=np.float64)
        if not pairs:
            return scores
        self.stats["pairs"] += len(pairs)

        # unique passages and prompts
        doc_index: dict[str, int] = {}
        pair_doc: list[int] = []
        for i, (_, doc) in enumerate(pairs):
            key = text_key(doc) if self.share_passages else f"pair-{i}"
            pair_doc.append(doc_index.setdefault(key, len(doc_index)))
        doc_keys = list(doc_index)
        doc_text = [""] * len(doc_keys)
        for (_, doc), d in zip(pairs, pair_doc, strict=True):
            doc_text[d] = doc
        prompt_ids: dict[str, list[int]] = {}
        for query, _ in pairs:
            if query not in prompt_ids:
                text = self.prompt(query, instruction)
                prompt_ids[query] = self.tokenizer(text, add_special_tokens=False)["input_ids"]

        # states already cached, and token ids of the passages to encode
        states: dict[int, torch.Tensor] = {}
        if self.share_passages:
            for d, key in enumerate(doc_keys):
                hit = self._lookup(key)
                if hit is not None:
                    states[d] = hit
        missing = [d for d in range(len(doc_keys)) if d not in states]
        token_ids: dict[int, list[int]] = {}
        if missing:
            encoded = self.tokenizer([DOCUMENT_PREFIX + doc_text[d] for d in missing], add_special_tokens=False,
                                     truncation=True, max_length=self.max_length)["input_ids"]
            token_ids = dict(zip(missing, encoded, strict=True))
        r = self.chunk_size or 1
        width = [states[d].shape[0] if d in states else math.ceil(len(token_ids[d]) / r) for d in range(len(doc_keys))]
        hidden = int(self.model.get_input_embeddings().weight.shape[1])  # the encoder's width
        per_vector = hidden * torch.empty((), dtype=self.dtype).element_size()

        # waves of passages (longest first) whose states fit the RAM budget (at least one passage each)
        order = sorted(range(len(doc_keys)), key=lambda d: -width[d])
        budget = max(self.ram_cache.max_bytes, 1)
        pairs_of: dict[int, list[int]] = {}
        for i, d in enumerate(pair_doc):
            pairs_of.setdefault(d, []).append(i)
        wave: list[int] = []
        used = 0
        waves: list[list[int]] = []
        for d in order:
            size = width[d] * per_vector
            if wave and used + size > budget:
                waves.append(wave)
                wave, used = [], 0
            wave.append(d)
            used += size
        if wave:
            waves.append(wave)

        reporter = self.reporter or Reporter(bars=self.progress)  # the engine's, set once (lmeb.reporter)
        bar = reporter.bar(total=len(pairs), desc=f"{self.name} rerank", unit="pair")
        with torch.inference_mode():
            for wave in waves:
                local = {d: states.pop(d) for d in wave if d in states}
                todo = [d for d in wave if d not in local]
                if todo:
                    for d, s in zip(todo, self._encode([token_ids[d] for d in todo]), strict=True):
                        local[d] = s
                        if self.share_passages:
                            self.ram_cache.put(doc_keys[d], s)
                            if self.disk_cache is not None:
                                self.disk_cache.put(doc_keys[d], s)
                members = [i for d in wave for i in pairs_of[d]]
                members.sort(key=lambda i: (-width[pair_doc[i]], -len(prompt_ids[pairs[i][0]])))

                def decode(batch: list[int]) -> tuple[list[int], np.ndarray]:
                    return batch, self._decode([local[pair_doc[i]] for i in batch],  # noqa: B023 (run at once)
                                               [prompt_ids[pairs[i][0]] for i in batch])

                def length(i: int) -> str:
                    return f"{width[pair_doc[i]]} passage states + {len(prompt_ids[pairs[i][0]])} prompt tokens"

                for start in range(0, len(members), self.batch_size):
                    batch = members[start:start + self.batch_size]
                    for piece, values in run_with_backoff(batch, decode, stats=self.stats, name=self.name,
                                                          length=length):
                        scores[piece] = values
                    if bar is not None:
                        bar.update(len(batch))
        if bar is not None:
            bar.close()
        return scores
