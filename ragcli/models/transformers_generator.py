"""``Generator``: the transformers backend, the reference and the backend of every model
that is not a GGUF file run by llama.cpp: bf16 weights, streamed generation in a thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from ragcli.errors import ModelError
from ragcli.models.bundled_generator import BUNDLED_GENERATOR
from ragcli.models.gguf_conversion import resolve_generator
from ragcli.models.runtime import disable_transformers_progress_bars, prepare_model_runtime

# Chat templates end an assistant turn with one of these; stop on any the vocabulary has.
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")

StatusCallback = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


class Generator:
    """A chat model loaded on first use; streams greedy (by default) completions."""

    engine = "transformers"

    def __init__(self, spec: str | None, cache_dir: Path, status: StatusCallback = _quiet) -> None:
        self.spec = spec
        self.cache_dir = cache_dir
        self.status = status
        self.name = spec or BUNDLED_GENERATOR
        self.load_seconds = 0.0

    @cached_property
    def _loaded(self) -> tuple[Any, Any]:
        prepare_model_runtime()
        self.name, target = resolve_generator(self.spec, self.cache_dir, self.status)
        started = time.perf_counter()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        disable_transformers_progress_bars()
        try:
            tokenizer = AutoTokenizer.from_pretrained(target)
            model = AutoModelForCausalLM.from_pretrained(target, dtype=torch.bfloat16)
        except Exception as e:
            raise ModelError(
                f"cannot load generator {self.name!r}: {type(e).__name__}: {e}",
                "pass a local model folder or .gguf file, or a hub id on a machine with "
                "internet access",
            ) from e
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(
                f"generator {self.name!r} has no chat template",
                "use an instruction-tuned (chat) model",
            )
        model.eval()
        self.load_seconds = time.perf_counter() - started
        return tokenizer, model

    @property
    def tokenizer(self) -> Any:
        return self._loaded[0]

    @property
    def model(self) -> Any:
        return self._loaded[1]

    def load(self) -> None:
        """Load (and on first use prepare) the model now rather than at the first prompt."""
        self._loaded  # noqa: B018

    @property
    def context_window(self) -> int:
        config = self.model.config
        for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        encoded = self.tokenizer(list(texts), add_special_tokens=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def prompt_ids(self, messages: list[dict[str, str]]) -> Any:
        """The chat template applied to ``messages``, ready for ``generate``."""
        return self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return int(self.prompt_ids(messages)["input_ids"].shape[1])

    def yes_probability(self, messages: list[dict[str, str]]) -> float | None:
        """How likely the reply to ``messages`` starts with "yes" rather than "no"."""
        import torch

        from ragcli.models.generation import yes_share

        inputs = self.prompt_ids(messages)
        with torch.inference_mode():
            logits = self.model(**inputs).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        top = torch.topk(logprobs, 20)
        tokens = self.tokenizer.convert_ids_to_tokens(top.indices.tolist())
        words = [self.tokenizer.convert_tokens_to_string([t]) for t in tokens]
        return yes_share(zip(words, top.values.tolist()))

    def generation_config(
        self, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None
    ) -> Any:
        from transformers import GenerationConfig

        tokenizer = self.tokenizer
        vocab = tokenizer.get_vocab()
        stop = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        stop |= {vocab[t] for t in END_OF_TURN if t in vocab}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            stop.add(configured)
        elif configured:
            stop |= set(configured)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stop)
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {}
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=sorted(stop),
            pad_token_id=pad,
            **sampling,
        )

    def stream(
        self,
        messages: list[dict[str, str]],
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as it is generated; ``last_token_count`` is set at the end.

        Greedy when ``temperature`` is 0; sampling is reproducible for a given ``seed``.
        """
        import torch
        from transformers import TextIteratorStreamer

        if seed is not None:
            torch.manual_seed(seed)

        inputs = self.prompt_ids(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                with torch.inference_mode():
                    result["output"] = self.model.generate(
                        **inputs,
                        generation_config=self.generation_config(max_new_tokens, temperature, seed),
                        streamer=streamer,
                    )
            except BaseException as e:  # surfaced in the caller's thread below
                result["error"] = e
                streamer.end()

        self.last_prompt_tokens = int(inputs["input_ids"].shape[1])
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()
        if "error" in result:
            raise ModelError(f"generation failed: {result['error']}") from result["error"]
        self.last_token_count = int(result["output"].shape[1]) - self.last_prompt_tokens

    last_prompt_tokens = 0
    last_token_count = 0
