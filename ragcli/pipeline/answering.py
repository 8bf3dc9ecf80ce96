"""The ask use case: retrieve, generate within the context window, check the answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ragcli.config import Settings
from ragcli.errors import RagcliError
from ragcli.filters import Filters
from ragcli.freshness import of_sources
from ragcli.grounding import MarkerFilter, check_answer
from ragcli.models import generation
from ragcli.models.bundled_generator import BUNDLED_GENERATOR
from ragcli.models.generation import ChatModel, engine_label
from ragcli.pipeline.events import Events
from ragcli.pipeline.searching import Searcher, one_view
from ragcli.prompting import Packing, pack_passages, verification_messages
from ragcli.records import Answer, Hit

# ask abstains without generating when no passage is this close (cosine) to the question.
# Calibrated on the sample corpus and Cranfield (README, "Answers you can check").
MIN_SCORE = 0.35


def ask(
    settings: Settings,
    question: str,
    top_k: int | None = None,
    events: Events | None = None,
    on_token: Callable[[str], None] | None = None,
    filters: Filters | None = None,
    abstain: bool = True,
    generator: ChatModel | None = None,
    searcher: Searcher | None = None,
    query: str | None = None,
    earlier: Sequence[tuple[str, str]] = (),
) -> Answer:
    """Retrieve passages, answer from them with the LLM, and check the answer against them.

    Abstains without calling the LLM when retrieval evidence is weak (unless ``abstain`` is
    False). Pass a loaded ``generator`` and an open ``searcher`` to reuse them across questions.
    ``query``: what retrieval searches for instead of the question (a follow-up rewritten to
    stand alone); ``earlier``: a conversation's (question, answer) pairs for the prompt.
    """
    events = events or Events()
    answer, hits = _retrieve(settings, query or question, top_k, filters, searcher)
    answer.question, answer.rewritten_query = question, query or None
    if generator is not None:
        answer.generator = generator.name
    min_score = settings.min_score if settings.min_score is not None else MIN_SCORE
    if abstain and answer.evidence < min_score:
        answer.abstained, answer.abstain_reason = True, "weak retrieval"
        return answer
    if generator is None:
        generator = generator_for(settings, events)
    generated = _generate(settings, question, hits, generator, on_token, earlier)
    _judge(answer, generated, question)
    _verify(settings, answer, generated, generator)
    answer.generator, answer.engine = generator.name, engine_label(generator)
    _keep_stale_shown(answer)
    return answer


def generator_for(settings: Settings, events: Events) -> ChatModel:
    """The generator the settings name (not loaded yet), reporting through ``events``."""
    return generation.open_generator(
        settings.llm, settings.model_cache_dir, events.status, settings.backend, events.warn
    )


def _keep_stale_shown(answer: Answer) -> None:
    """Of the hits' stale sources, keep those the answer cites (when withheld: those of the
    passages it was given)."""
    shown = answer.passages if answer.abstained else [c.hit for c in answer.citations]
    answer.stale_sources = of_sources(answer.stale_sources, {hit.source for hit in shown})


def _retrieve(
    settings: Settings,
    question: str,
    top_k: int | None,
    filters: Filters | None,
    searcher: Searcher | None,
) -> tuple[Answer, list[Hit]]:
    """The passages for ``question`` and an answer not yet written, with their evidence
    (an open ``searcher`` brings its own filters)."""
    if searcher is None:
        with Searcher(settings, filters) as own, one_view(own.store):
            found = own.search(question, top_k)
            evidence = own.evidence(question, found.hits)
    else:
        with one_view(searcher.store):
            found = searcher.search(question, top_k)
            evidence = searcher.evidence(question, found.hits)
    answer = Answer(
        question=question,
        text="",
        collection=settings.collection,
        embedder=found.embedder,
        generator=settings.llm or BUNDLED_GENERATOR,
        passages=found.hits,
        citations=[],
        evidence=evidence,
        timings=dict(found.timings),
        updated_at=found.updated_at,
        stale_sources=found.stale_sources,
    )
    return answer, found.hits


@dataclass
class _Generated:
    """What the generator wrote for a packed prompt, and how long it took."""

    text: str
    packing: Packing
    tokens: int
    timings: dict[str, float]


def _generate(
    settings: Settings,
    question: str,
    hits: list[Hit],
    generator: ChatModel,
    on_token: Callable[[str], None] | None,
    earlier: Sequence[tuple[str, str]] = (),
) -> _Generated:
    """Pack the passages into the generator's context and stream its answer (markers that
    point at no passage are kept out of what ``on_token`` shows)."""
    generator.load()
    budget = generator.context_window - settings.max_tokens
    packing = pack_passages(
        question, hits, generator.prompt_tokens, budget, settings.context == "focused", earlier
    )
    if not packing.passages:
        raise RagcliError(
            f"no passage fits the generator's context window ({generator.context_window} "
            f"tokens, {settings.max_tokens} of them kept for the answer)",
            "lower --max-tokens, or use a generator with a longer context",
        )
    started = time.perf_counter()
    first_token: float | None = None
    pieces: list[str] = []
    stream = generator.stream(
        packing.messages, settings.max_tokens, settings.temperature, settings.seed
    )
    shown = MarkerFilter(len(packing.passages))
    try:
        for piece in stream:
            if first_token is None:
                first_token = time.perf_counter() - started
            pieces.append(piece)
            if on_token and (visible := shown.feed(piece)):
                on_token(visible)  # may raise to stop the answer (a client that left)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the engine now, not when the stream is collected
    if on_token and (rest := shown.flush()):
        on_token(rest)
    generate_s = time.perf_counter() - started
    tokens = generator.last_token_count
    decode_s = generate_s - (first_token or 0.0)
    timings = {
        "generator_load_s": generator.load_seconds,
        "prompt_tokens": float(generator.last_prompt_tokens),
        "first_token_s": first_token or 0.0,
        "generate_s": generate_s,
        "decode_tokens_per_s": (tokens - 1) / decode_s if tokens > 1 and decode_s > 0 else 0.0,
    }
    return _Generated("".join(pieces), packing, tokens, timings)


def _judge(answer: Answer, generated: _Generated, question: str) -> None:
    """Check the generated text against the passages it cites, and write it into ``answer``."""
    check = check_answer(generated.text, generated.packing.passages, question)
    answer.text = check.text
    answer.passages = generated.packing.passages
    answer.dropped = generated.packing.dropped
    answer.citations = check.citations
    answer.unknown_markers = check.unknown_markers
    answer.sentences = [s.to_dict() for s in check.sentences]
    if check.declined:
        answer.abstained, answer.abstain_reason = True, "model declined"
    elif not check.supported:
        answer.abstained, answer.abstain_reason = True, "unsupported"
    answer.tokens = generated.tokens
    answer.timings.update(generated.timings)


def _verify(
    settings: Settings, answer: Answer, generated: _Generated, generator: ChatModel
) -> None:
    """Ask the generator whether its answer is stated in the passages and answers the
    question; withhold it below ``settings.min_verified``. Skipped for an answer already
    withheld and for a generator that cannot score "yes" (it keeps ``verified`` None)."""
    score = getattr(generator, "yes_probability", None)
    if answer.abstained or score is None or settings.min_verified is None:
        return
    started = time.perf_counter()
    answer.verified = score(verification_messages(generated.packing.messages, generated.text))
    answer.timings["verify_s"] = time.perf_counter() - started
    if answer.verified is not None and answer.verified < settings.min_verified:
        answer.abstained, answer.abstain_reason = True, "not verified"


def ask_batch(
    settings: Settings,
    questions: Iterable[tuple[str, str]],
    top_k: int | None = None,
    events: Events | None = None,
    filters: Filters | None = None,
    abstain: bool = True,
) -> Iterator[tuple[str, Answer]]:
    """Answer many (id, question) pairs with the models loaded once, yielding as they come."""
    events = events or Events()
    generator = generator_for(settings, events)
    with Searcher(settings, filters) as searcher:
        for qid, question in questions:
            answer = ask(
                settings,
                question,
                top_k,
                events,
                filters=filters,
                abstain=abstain,
                generator=generator,
                searcher=searcher,
            )
            yield qid, answer
