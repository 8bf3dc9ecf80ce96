"""Questions to a collection: ``ragcli search``, ``ragcli ask`` and ``ragcli eval``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ragcli.cli import inputs
from ragcli.cli.options import (
    Backend,
    ChunkOverlap,
    ChunkSize,
    Collection,
    Debug,
    DocumentPrompt,
    EmbedModel,
    Json,
    Llm,
    Mode,
    QueryPrompt,
    Quiet,
    SessionFile,
    Store,
    TopK,
)
from ragcli.cli.root import boundary
from ragcli.errors import EXIT_NOT_ANSWERED, UsageError

if TYPE_CHECKING:
    from ragcli.records import Answer

Question = Annotated[
    str | None,
    typer.Argument(help="The question; '-' or omitted reads it from standard input."),
]
PathGlob = Annotated[
    str | None,
    typer.Option(
        "--path",
        help="Only passages whose source matches this glob, e.g. 'docs/*.md' or '*.pdf'.",
    ),
]
After = Annotated[
    str | None,
    typer.Option(
        "--after",
        metavar="DATE",
        help="Only documents dated at or after DATE: an ISO date or time (2024-05-01, "
        "2024-05-01T14:30; UTC unless an offset is given) or an age (12h, 30d, 2w). A "
        "document's date is its Markdown front matter's, else its file's modification time.",
    ),
]
Before = Annotated[
    str | None,
    typer.Option("--before", metavar="DATE", help="Only documents dated before DATE (as --after)."),
]
Types = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        metavar="TYPES",
        help="Only documents of these types, comma-separated or repeated: pdf, md (markdown), "
        "txt (text), rst, html, jsonl.",
    ),
]
Tags = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        metavar="TAG",
        help="Only documents with this tag in their Markdown front matter; repeat it for "
        "any of several (case does not matter).",
    ),
]
MaxPerDoc = Annotated[
    int | None,
    typer.Option(
        "--max-per-doc",
        min=1,
        help="At most this many passages from one document [env: RAGCLI_MAX_PER_DOC].",
    ),
]
Rerank = Annotated[
    str | None,
    typer.Option(
        "--rerank",
        help="Rerank with this cross-encoder (hub id or local folder), or 'llm': the "
        "generator scores each passage (slow) [env: RAGCLI_RERANK; default: off].",
    ),
]
Explain = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Show each hit's dense and lexical rank and score and the fused score.",
    ),
]
SearchBatch = Annotated[
    str | None,
    typer.Option(
        "--batch",
        help="Answer every question in FILE ('-': stdin), one per line or JSON Lines with "
        "id and question; prints JSON Lines.",
    ),
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        help="Most tokens to generate [env: RAGCLI_MAX_TOKENS; default: 256].",
    ),
]
ShowPassages = Annotated[
    bool, typer.Option("--show-passages", help="Print the text of each source after the answer.")
]
NoAbstain = Annotated[
    bool,
    typer.Option(
        "--no-abstain",
        help="Give the answer even when retrieval finds nothing close enough or its confidence "
        "is low (its own checks still apply).",
    ),
]
AbstainThreshold = Annotated[
    float | None,
    typer.Option(
        "--abstain-threshold",
        min=0.0,
        max=1.0,
        help="Withhold an answer whose confidence (fitted on retrieval evidence and the "
        "model's verification) is below this; 0 never does, 1 always does "
        "[env: RAGCLI_ABSTAIN_THRESHOLD; default: 0.50].",
    ),
]
MinScore = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        min=0.0,
        max=1.0,
        help="Also abstain when no passage is this similar (cosine) to the question "
        "[env: RAGCLI_MIN_SCORE; default: off].",
    ),
]
MinVerified = Annotated[
    float | None,
    typer.Option(
        "--min-verified",
        min=0.0,
        max=1.0,
        help="Also abstain when the model's probability that the passages state the answer "
        "is below this [env: RAGCLI_MIN_VERIFIED; default: off].",
    ),
]
Context = Annotated[
    str | None,
    typer.Option(
        "--context",
        help="What of each passage the model reads: 'full', or 'focused' (the sentences that "
        "bear on the question; a shorter prompt) [env: RAGCLI_CONTEXT; default: focused].",
    ),
]
Temperature = Annotated[
    float | None,
    typer.Option("--temperature", min=0.0, help="Sampling temperature; 0 is greedy [default: 0]."),
]
Seed = Annotated[
    int | None, typer.Option("--seed", help="Random seed for sampling (temperature > 0).")
]
AskBatch = Annotated[
    str | None,
    typer.Option(
        "--batch",
        help="Answer every question in FILE ('-': stdin), one per line or JSON Lines with "
        "id and question; loads the models once and prints JSON Lines.",
    ),
]
StreamJson = Annotated[
    bool,
    typer.Option(
        "--stream-json",
        help="Print JSON Lines events as the answer is made: token, citation, done.",
    ),
]
SearchQuery = Annotated[
    str | None,
    typer.Option(
        "--query",
        metavar="TEXT",
        help="Search for TEXT instead of the question (the model still answers the question); "
        "with --session, instead of the LLM's rewrite, so a conversation replays exactly.",
    ),
]
Dataset = Annotated[
    Path | None,
    typer.Argument(
        help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv; with --answers, "
        "corpus.jsonl is enough); omit it to evaluate the collection given with -c."
    ),
]
Queries = Annotated[
    Path | None,
    typer.Option("--queries", help="Queries: JSON Lines with _id and text, or one per line."),
]
Qrels = Annotated[
    Path | None,
    typer.Option("--qrels", help="Judgments: TSV query-id, corpus-id, score (BEIR or TREC)."),
]
SaveRun = Annotated[
    Path | None,
    typer.Option("--save-run", help="Write the ranking as a TREC run file."),
]
AnswerQuestions = Annotated[
    Path | None,
    typer.Option(
        "--answers",
        help="Measure answers instead of retrieval: ask every question of FILE (JSON Lines "
        "with question, answers, doc_ids, is_impossible) and score what comes back.",
    ),
]
SaveAnswers = Annotated[
    Path | None,
    typer.Option(
        "--save",
        help="With --answers: write each question's answer and scores to FILE as JSON Lines.",
    ),
]
Plot = Annotated[
    Path | None,
    typer.Option(
        "--plot",
        help="With --answers: draw answered share against correctness as "
        "the abstention threshold moves, to FILE.png (needs matplotlib).",
    ),
]


def _refuse_question_with_batch(question: str | None) -> None:
    if question is not None:
        raise UsageError("give either QUESTION or --batch, not both")


def _print_batch(results: Iterable[tuple[str, Any]]) -> None:
    """One JSON Lines record per question, with its id, as each is done."""
    from ragcli import console

    for qid, result in results:
        console.print_json({"id": qid, **result.to_dict()}, lines=True)


def search(
    question: Question = None,
    top_k: TopK = None,
    collection: Collection = None,
    mode: Mode = None,
    path: PathGlob = None,
    after: After = None,
    before: Before = None,
    type_: Types = None,
    tag: Tags = None,
    max_per_doc: MaxPerDoc = None,
    rerank: Rerank = None,
    explain: Explain = False,
    batch: SearchBatch = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Show the passages that best match QUESTION (no generation)."""
    from ragcli import console, pipeline
    from ragcli.filters import parse_filters

    with boundary(debug):
        filters = parse_filters(path, after, before, type_ or (), tag or ())
        settings = inputs.settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            top_k=top_k,
            mode=mode,
            max_per_doc=max_per_doc,
            rerank=rerank,
        )
        if batch is not None:
            _refuse_question_with_batch(question)
            questions = inputs.batch_questions(batch)
            _print_batch(
                pipeline.search_batch(settings, questions, filters=filters, explain=explain)
            )
            return
        text = inputs.read_question(question)
        result = pipeline.search(settings, text, filters=filters, explain=explain)
        console.render_search(result, json_)


def ask(
    question: Question = None,
    top_k: TopK = None,
    collection: Collection = None,
    llm: Llm = None,
    backend: Backend = None,
    max_tokens: MaxTokens = None,
    mode: Mode = None,
    path: PathGlob = None,
    after: After = None,
    before: Before = None,
    type_: Types = None,
    tag: Tags = None,
    max_per_doc: MaxPerDoc = None,
    rerank: Rerank = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    show_passages: ShowPassages = False,
    no_abstain: NoAbstain = False,
    abstain_threshold: AbstainThreshold = None,
    min_score: MinScore = None,
    context: Context = None,
    min_verified: MinVerified = None,
    temperature: Temperature = None,
    seed: Seed = None,
    batch: AskBatch = None,
    session: SessionFile = None,
    query: SearchQuery = None,
    stream_json: StreamJson = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Answer QUESTION from the collection with the local LLM, citing the passages used.

    Exits 7 when it does not answer: retrieval found nothing close enough, the model said it
    does not know, no sentence of the answer is supported by the passages it cites, or the
    answer's confidence is under --abstain-threshold. With --session FILE, QUESTION may
    follow up on the earlier questions kept in FILE.
    """
    from ragcli import console, pipeline
    from ragcli.filters import parse_filters

    with boundary(debug):
        filters = parse_filters(path, after, before, type_ or (), tag or ())
        settings = inputs.settings(
            collection=collection, embed_model=embed_model, query_prompt=query_prompt,
            document_prompt=document_prompt, llm=llm, backend=backend, top_k=top_k,
            max_tokens=max_tokens, mode=mode, max_per_doc=max_per_doc, rerank=rerank,
            min_score=min_score, context=context, min_verified=min_verified,
            temperature=temperature, seed=seed, abstain_threshold=abstain_threshold,
        )  # fmt: skip
        events = console.ConsoleEvents(quiet)
        if batch is not None:
            if session is not None or query is not None:
                raise UsageError("--session and --query go with one QUESTION, not --batch")
            _refuse_question_with_batch(question)
            questions = inputs.batch_questions(batch)
            _print_batch(
                pipeline.ask_batch(
                    settings, questions, events=events, filters=filters, abstain=not no_abstain
                )
            )
            return
        text = inputs.read_question(question)
        if query is not None and not query.strip():
            raise UsageError("--query is empty")
        if session is None and query is None:
            answer = pipeline.ask(
                settings, text, events=events, on_token=_token_sink(stream_json, json_),
                filters=filters, abstain=not no_abstain,
            )  # fmt: skip
        else:
            answer = pipeline.ask_in_session(
                settings, text, session, query and query.strip(), events=events,
                on_token=_token_sink(stream_json, json_), filters=filters,
                abstain=not no_abstain,
            )  # fmt: skip
        _show_answer(answer, stream_json, json_, show_passages, quiet)
        if answer.abstained:
            raise typer.Exit(EXIT_NOT_ANSWERED)


def _token_sink(stream_json: bool, json_: bool) -> Callable[[str], None] | None:
    """Where generated tokens go as they come: JSON events, raw stdout, or nowhere (--json)."""
    from ragcli import console

    return console.token_event if stream_json else None if json_ else console.write


def _show_answer(
    answer: Answer, stream_json: bool, json_: bool, show_passages: bool, quiet: bool
) -> None:
    """What follows the generated tokens: closing events, the JSON answer, or the sources."""
    from ragcli import console

    if stream_json:
        console.render_answer_events(answer)
    elif json_:
        console.print_json(answer.to_dict())
    else:
        console.render_answer(answer, show_passages, quiet)


def eval_(
    dataset: Dataset = None,
    mode: Mode = None,
    collection: Collection = None,
    queries: Queries = None,
    qrels: Qrels = None,
    save_run: SaveRun = None,
    answers: AnswerQuestions = None,
    save: SaveAnswers = None,
    plot: Plot = None,
    top_k: TopK = None,
    llm: Llm = None,
    backend: Backend = None,
    abstain_threshold: AbstainThreshold = None,
    min_score: MinScore = None,
    context: Context = None,
    min_verified: MinVerified = None,
    max_tokens: MaxTokens = None,
    embed_model: EmbedModel = None,
    chunk_size: ChunkSize = None,
    chunk_overlap: ChunkOverlap = None,
    store: Store = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Measure retrieval on judged queries, or with --answers the answers themselves.

    Retrieval: nDCG@10, Recall@10, Recall@100, MRR@10. Answers: exact match, F1, citations,
    abstention, latency.
    """
    from ragcli import console, pipeline

    with boundary(debug):
        if dataset is not None and (queries or qrels):
            raise UsageError("give DATASET or --queries/--qrels, not both")
        if answers is None and (save or plot):
            raise UsageError("--save and --plot go with --answers")
        settings = inputs.settings(
            collection=collection,
            embed_model=embed_model,
            mode=mode,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            store=store,
            llm=llm,
            backend=backend,
            top_k=top_k,
            abstain_threshold=abstain_threshold,
            min_score=min_score,
            context=context,
            min_verified=min_verified,
            max_tokens=max_tokens,
        )
        events = console.ConsoleEvents(quiet)
        if answers is not None:
            if queries or qrels or save_run:
                raise UsageError(
                    "--answers measures answers: --queries, --qrels and "
                    "--save-run are for retrieval"
                )
            result = pipeline.evaluate_answers(settings, answers, dataset, events, save, plot)
            console.render_answer_eval(result, json_)
            return
        report = pipeline.evaluate(settings, dataset, queries, qrels, save_run, events)
        console.render_eval(report, json_)
