"""The ask use case: retrieve, generate within the context window, check the answer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ragcli import abstention
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
from ragcli.prompting import Packing, Similarity, pack_passages, verification_messages
from ragcli.records import Answer, Hit


def abstain_threshold(settings: Settings) -> float:
    """The confidence under which ask withholds an answer."""
    given = settings.abstain_threshold
    return given if given is not None else abstention.ABSTAIN_THRESHOLD


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

    Withholds the answer when it cannot be right enough (``ragcli/abstention.py``): before
    calling the LLM when retrieval evidence is too weak, after it when the model declined, no
    sentence is backed by its passages, or the confidence is under the threshold. With
    ``abstain`` False every question is answered, checked, verified and given a confidence,
    and only the model's own checks mark it withheld (``eval --answers`` gates afterwards).
    Pass a loaded ``generator`` and an open ``searcher`` to reuse them across questions.
    ``query``: what retrieval searches for instead of the question (a follow-up rewritten to
    stand alone); ``earlier``: a conversation's (question, answer) pairs for the prompt.
    """
    events = events or Events()
    answer, hits, similarity = _retrieve(settings, query or question, top_k, filters, searcher)
    answer.question, answer.rewritten_query = question, query or None
    if generator is not None:
        answer.generator = generator.name
    threshold = abstain_threshold(settings)
    if abstain and abstention.withheld_before(answer.evidence, threshold, settings.min_score):
        answer.abstained, answer.abstain_reason = True, "weak retrieval"
        return answer
    if generator is None:
        generator = generator_for(settings, events)
    generated = _generate(settings, question, hits, generator, on_token, earlier, similarity)
    _judge(answer, generated, question)
    if not answer.abstained and (threshold > 0 or settings.min_verified is not None or not abstain):
        _verify(answer, generated, generator)
        answer.confidence = abstention.confidence(answer.evidence, answer.verified)
        reason = abstention.withheld_after(
            answer.confidence, answer.verified, threshold, settings.min_verified
        )
        if abstain and reason:
            answer.abstained, answer.abstain_reason = True, reason
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
) -> tuple[Answer, list[Hit], Similarity]:
    """The passages for ``question`` and an answer not yet written, with their evidence
    (an open ``searcher`` brings its own filters), and how close a sentence is to a question
    by the collection's embedder."""
    if searcher is None:
        with Searcher(settings, filters) as own, one_view(own.store):
            found = own.search(question, top_k)
            evidence = own.evidence(question, found.hits)
            embedder = own.embedder
    else:
        with one_view(searcher.store):
            found = searcher.search(question, top_k)
            evidence = searcher.evidence(question, found.hits)
            embedder = searcher.embedder
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
    return answer, found.hits, _similarity(embedder)


def _similarity(embedder: Any) -> Similarity:
    """Cosines of a question to sentences. Both sides are embedded as queries: the query
    encoder is the one loaded for asking (ONNX where exported), and the comparison is between
    texts of one kind."""

    def similarity(question: str, sentences: list[str]) -> list[float]:
        vectors = embedder.embed_queries([question, *sentences])
        return [float(v) for v in vectors[1:] @ vectors[0]]

    return similarity


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
    similarity: Similarity | None = None,
) -> _Generated:
    """Pack the passages into the generator's context and stream its answer (markers that
    point at no passage are kept out of what ``on_token`` shows). ``first_token_s`` and
    ``generate_s`` count from the start of packing, which is part of the wait."""
    generator.load()
    started = time.perf_counter()
    budget = generator.context_window - settings.max_tokens
    packing = pack_passages(
        question,
        hits,
        generator.prompt_tokens,
        budget,
        settings.context == "focused",
        earlier,
        similarity,
    )
    if not packing.passages:
        raise RagcliError(
            f"no passage fits the generator's context window ({generator.context_window} "
            f"tokens, {settings.max_tokens} of them kept for the answer)",
            "lower --max-tokens, or use a generator with a longer context",
        )
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


def _verify(answer: Answer, generated: _Generated, generator: ChatModel) -> None:
    """Ask the generator whether the passages state the answer to the question. A generator
    that cannot score "yes" leaves ``verified`` None."""
    score = getattr(generator, "yes_probability", None)
    if score is None:
        return
    started = time.perf_counter()
    answer.verified = score(verification_messages(generated.packing.messages))
    answer.timings["verify_s"] = time.perf_counter() - started


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
