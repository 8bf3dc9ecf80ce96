"""The command line: parses flags, calls one pipeline function, renders, picks the exit code."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ragcli import __version__
from ragcli.errors import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_ANSWERED,
    RagcliError,
    UsageError,
)

app = typer.Typer(
    name="ragcli",
    help="Ask questions of your documents from the terminal, with local models and no cloud.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Collection = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", help="Collection name [env: RAGCLI_COLLECTION; default: default]."
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Store = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Where the collection lives: 'faiss' (a folder under RAGCLI_HOME) or a "
        "PostgreSQL URL postgresql://USER@HOST/DB with pgvector; remembered per collection "
        "[env: RAGCLI_STORE; default: faiss].",
    ),
]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress, notes or warnings on stderr.")
]
Debug = Annotated[bool, typer.Option("--debug", help="Show tracebacks and library logs.")]
TopK = Annotated[
    int | None,
    typer.Option(
        "--top-k", "-k", min=1, help="Passages to retrieve [env: RAGCLI_TOP_K; default: 4]."
    ),
]
EmbedModel = Annotated[
    str | None,
    typer.Option(
        "--embed-model",
        help="Embedder: hub id or local folder; a collection keeps the one it was built with "
        "[env: RAGCLI_EMBED_MODEL; default: bundled all-MiniLM-L6-v2].",
    ),
]
QueryPrompt = Annotated[
    str | None,
    typer.Option(
        "--query-prompt",
        help="Text put before each question when embedding it, e.g. 'query: ' for e5; fixed "
        "per collection [env: RAGCLI_QUERY_PROMPT; default: the embedder's own, if any].",
    ),
]
DocumentPrompt = Annotated[
    str | None,
    typer.Option(
        "--document-prompt",
        help="Text put before each passage when embedding it, e.g. 'passage: ' for e5; fixed "
        "per collection [env: RAGCLI_DOCUMENT_PROMPT; default: the embedder's own, if any].",
    ),
]
Question = Annotated[
    str | None,
    typer.Argument(help="The question; '-' or omitted reads it from standard input."),
]
ChunkSize = Annotated[
    int | None,
    typer.Option(
        "--chunk-size",
        min=16,
        help="Chunk size in embedder tokens; fixed per collection "
        "[env: RAGCLI_CHUNK_SIZE; default: 200].",
    ),
]
ChunkOverlap = Annotated[
    int | None,
    typer.Option(
        "--chunk-overlap",
        min=0,
        help="Tokens repeated between chunks cut inside a paragraph "
        "[env: RAGCLI_CHUNK_OVERLAP; default: 32].",
    ),
]
Mode = Annotated[
    str | None,
    typer.Option(
        "--mode",
        "-m",
        help="Retrieval: hybrid (BM25 + vectors, fused), dense or lexical "
        "[env: RAGCLI_MODE; default: hybrid].",
    ),
]
PathGlob = Annotated[
    str | None,
    typer.Option(
        "--path",
        help="Only passages whose source matches this glob, e.g. 'docs/*.md' or '*.pdf'.",
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
        help="Rerank with this cross-encoder (hub id or local folder) [env: RAGCLI_RERANK; "
        "default: off].",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ragcli {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Ask questions of your documents from the terminal, with local models and no cloud."""


@contextlib.contextmanager
def _boundary(debug: bool) -> Iterator[None]:
    """The one place where errors become a stderr line and an exit code."""
    from ragcli import console

    if debug:
        import logging

        from ragcli.models import runtime

        runtime.set_debug()

        # ragcli's own debug notes (which query encoder is used and why) go to stderr.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("ragcli: debug: %(message)s"))
        logging.getLogger("ragcli").addHandler(handler)
        logging.getLogger("ragcli").setLevel(logging.DEBUG)
    try:
        yield
    except RagcliError as e:
        if debug:
            import traceback

            traceback.print_exc()
        console.error(e.message, e.hint)
        raise typer.Exit(e.exit_code) from None
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        console.error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(0) from None
    except Exception as e:
        if debug:
            raise
        console.error(f"unexpected {type(e).__name__}: {e}", "run again with --debug for details")
        raise typer.Exit(EXIT_ERROR) from None


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the exit flush stays quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _settings(**overrides: Any) -> Any:
    from ragcli.config import load_settings

    return load_settings(**overrides)


def _read_question(question: str | None) -> str:
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            raise UsageError("missing QUESTION", "pass it as an argument or pipe it on stdin")
        question = sys.stdin.read()
    question = question.strip()
    if not question:
        raise UsageError("the question is empty")
    return question


@app.command()
def ingest(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, folders (recursive) or glob patterns; with --rebuild and none, what "
            "the collection holds."
        ),
    ] = None,
    collection: Collection = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    chunk_size: ChunkSize = None,
    chunk_overlap: ChunkOverlap = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print what would be added, updated, removed; change nothing."
        ),
    ] = False,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune/--no-prune",
            help="Remove files that are gone from a folder ingested again.",
        ),
    ] = True,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Re-embed everything into a new collection (embedder and chunking may "
            "change) and swap it in when done; the old one stays until then.",
        ),
    ] = False,
    shard: Annotated[
        str | None,
        typer.Option(
            "--shard",
            metavar="K/N",
            help="Take the K-th of N shares of the files (by a hash of each file's path under "
            "its folder), so N ingesters, on one machine or many, fill one collection together.",
        ),
    ] = None,
    store: Store = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Read files into a collection: split, embed and index what is new or changed."""
    from ragcli import console, pipeline

    with _boundary(debug):
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            store=store,
        )
        report = pipeline.ingest(
            settings,
            paths or [],
            console.ConsoleEvents(quiet),
            dry_run=dry_run,
            prune=prune,
            rebuild=rebuild,
            shard=_parse_shard(shard),
        )
        console.render_ingest(report, json_)


def _parse_shard(value: str | None) -> tuple[int, int] | None:
    """``K/N`` as (K, N), 1 <= K <= N."""
    if value is None:
        return None
    k, _, n = value.partition("/")
    if k.strip().isdigit() and n.strip().isdigit() and 1 <= int(k) <= int(n):
        return int(k), int(n)
    raise UsageError(f"invalid --shard {value!r}", "use K/N with 1 <= K <= N, e.g. --shard 2/4")


def _batch_questions(source: str) -> list[tuple[str, str]]:
    from ragcli.batch import parse_questions

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot read {source}: {e.strerror or e}") from e
    return parse_questions(text, "stdin" if source == "-" else source)


@app.command()
def search(
    question: Question = None,
    top_k: TopK = None,
    collection: Collection = None,
    mode: Mode = None,
    path: PathGlob = None,
    max_per_doc: MaxPerDoc = None,
    rerank: Rerank = None,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Show each hit's dense and lexical rank and score and the fused score.",
        ),
    ] = False,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            help="Answer every question in FILE ('-': stdin), one per line or JSON Lines with "
            "id and question; prints JSON Lines.",
        ),
    ] = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Show the passages that best match QUESTION (no generation)."""
    from ragcli import console, pipeline

    with _boundary(debug):
        settings = _settings(
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
            if question is not None:
                raise UsageError("give either QUESTION or --batch, not both")
            results = pipeline.search_batch(
                settings, _batch_questions(batch), source_glob=path, explain=explain
            )
            for qid, result in results:
                console.print_json({"id": qid, **result.to_dict()}, lines=True)
            return
        result = pipeline.search(
            settings, _read_question(question), source_glob=path, explain=explain
        )
        console.render_search(result, json_)


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
    typer.Option("--no-abstain", help="Generate even when retrieval finds nothing close enough."),
]
MinScore = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        help="Abstain when no passage is this similar (cosine) to the question "
        "[env: RAGCLI_MIN_SCORE; default: 0.35].",
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


@app.command()
def ask(
    question: Question = None,
    top_k: TopK = None,
    collection: Collection = None,
    llm: Llm = None,
    backend: Backend = None,
    max_tokens: MaxTokens = None,
    mode: Mode = None,
    path: PathGlob = None,
    max_per_doc: MaxPerDoc = None,
    rerank: Rerank = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    show_passages: ShowPassages = False,
    no_abstain: NoAbstain = False,
    min_score: MinScore = None,
    temperature: Temperature = None,
    seed: Seed = None,
    batch: AskBatch = None,
    stream_json: StreamJson = False,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Answer QUESTION from the collection with the local LLM, citing the passages used.

    Exits 7 when it does not answer: retrieval found nothing close enough, the model said it
    does not know, or no sentence of the answer is supported by the passages it cites.
    """
    from ragcli import console, pipeline

    with _boundary(debug):
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            llm=llm,
            backend=backend,
            top_k=top_k,
            max_tokens=max_tokens,
            mode=mode,
            max_per_doc=max_per_doc,
            rerank=rerank,
            min_score=min_score,
            temperature=temperature,
            seed=seed,
        )
        events = console.ConsoleEvents(quiet)
        if batch is not None:
            if question is not None:
                raise UsageError("give either QUESTION or --batch, not both")
            answers = pipeline.ask_batch(
                settings, _batch_questions(batch), events=events, source_glob=path,
                abstain=not no_abstain,
            )  # fmt: skip
            for qid, answer in answers:
                console.print_json({"id": qid, **answer.to_dict()}, lines=True)
            return
        text = _read_question(question)
        stream = console.token_event if stream_json else None if json_ else console.write
        answer = pipeline.ask(
            settings, text, events=events, on_token=stream, source_glob=path,
            abstain=not no_abstain,
        )  # fmt: skip
        if stream_json:
            console.render_answer_events(answer)
        elif json_:
            console.print_json(answer.to_dict())
        else:
            console.render_answer(answer, show_passages, quiet)
        if answer.abstained:
            raise typer.Exit(EXIT_NOT_ANSWERED)


@app.command(name="eval")
def eval_(
    dataset: Annotated[
        Path | None,
        typer.Argument(
            help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/test.tsv); omit it to "
            "evaluate the collection given with -c against --queries and --qrels."
        ),
    ] = None,
    mode: Mode = None,
    collection: Collection = None,
    queries: Annotated[
        Path | None,
        typer.Option("--queries", help="Queries: JSON Lines with _id and text, or one per line."),
    ] = None,
    qrels: Annotated[
        Path | None,
        typer.Option("--qrels", help="Judgments: TSV query-id, corpus-id, score (BEIR or TREC)."),
    ] = None,
    save_run: Annotated[
        Path | None,
        typer.Option("--save-run", help="Write the ranking as a TREC run file."),
    ] = None,
    embed_model: EmbedModel = None,
    chunk_size: ChunkSize = None,
    chunk_overlap: ChunkOverlap = None,
    store: Store = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Measure retrieval: nDCG@10, Recall@10, Recall@100 and MRR@10 on judged queries."""
    from ragcli import console, pipeline

    with _boundary(debug):
        if dataset is not None and (queries or qrels):
            raise UsageError("give DATASET or --queries/--qrels, not both")
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            mode=mode,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            store=store,
        )
        report = pipeline.evaluate(
            settings, dataset, queries, qrels, save_run, console.ConsoleEvents(quiet)
        )
        console.render_eval(report, json_)


# -- embeddings and models ---------------------------------------------------------------------


class EncodeAs(str, Enum):
    document = "document"
    query = "query"


class VectorFormat(str, Enum):
    jsonl = "jsonl"
    npy = "npy"


Texts = Annotated[
    list[str] | None,
    typer.Argument(help="Texts; '-' or none reads one text per line from standard input."),
]
As = Annotated[
    EncodeAs,
    typer.Option(
        "--as",
        help="Encode the texts as documents (with the document prompt) or as queries.",
    ),
]
Llm = Annotated[
    str | None,
    typer.Option(
        "--llm",
        help="Generator: hub id, local folder or .gguf file "
        "[env: RAGCLI_LLM; default: bundled Qwen2.5-Coder-1.5B-Instruct].",
    ),
]
Backend = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="Generation backend: auto, llama.cpp, xllamacpp, llama-cpp-python or transformers; "
        "auto runs GGUF models on the first llama.cpp engine that works on this CPU, else on "
        "transformers [env: RAGCLI_BACKEND; default: auto].",
    ),
]


def _read_texts(texts: list[str] | None) -> list[str]:
    """TEXT arguments, or the non-blank lines of stdin when there are none (or just '-')."""
    if not texts or texts == ["-"]:
        if not texts and sys.stdin.isatty():
            raise UsageError("missing TEXT", "pass texts as arguments or pipe them one per line")
        texts = [line.strip() for line in sys.stdin.read().splitlines() if line.strip()]
        if not texts:
            raise UsageError("no text on standard input")
    if any(not text.strip() for text in texts):
        raise UsageError("a TEXT is empty")
    return texts


@app.command()
def similarity(
    texts: Texts = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Compare every TEXT with this one, encoded as a query (as search does).",
        ),
    ] = None,
    encode_as: As = EncodeAs.document,
    collection: Collection = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Cosine similarity of texts: every pair, or each against one (--to)."""
    from ragcli import console, vectors

    with _boundary(debug):
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
        )
        result = vectors.similarity(settings, _read_texts(texts), to=to, role=encode_as.value)
        console.render_similarity(result, json_)


@app.command()
def embed(
    texts: Texts = None,
    encode_as: As = EncodeAs.document,
    vector_format: Annotated[
        VectorFormat,
        typer.Option("--format", help="JSON Lines, or a NumPy .npy array (needs --output)."),
    ] = VectorFormat.jsonl,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    normalize: Annotated[
        bool, typer.Option("--normalize/--no-normalize", help="Scale vectors to unit length.")
    ] = True,
    collection: Collection = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Print the embedding vector of each text (JSON Lines), or save them as .npy."""
    from ragcli import console, vectors

    with _boundary(debug):
        if vector_format is VectorFormat.npy and output is None:
            raise UsageError("--format npy needs --output FILE", "or print JSON Lines on stdout")
        settings = _settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
        )
        result = vectors.embed(settings, _read_texts(texts), encode_as.value, normalize)
        if output is None:
            console.render_embeddings(result)
            return
        if vector_format is VectorFormat.npy:
            vectors.save_npy(result, output)
        else:
            vectors.save_jsonl(result, output)
        if not quiet:
            rows, dimension = result.vectors.shape
            console.note(f"wrote {rows} vectors of {dimension} dimensions to {output}")


models_app = typer.Typer(
    help="List the models ragcli knows, or prepare them ahead of time.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(
    context: typer.Context,
    embed_model: EmbedModel = None,
    llm: Llm = None,
    backend: Backend = None,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """List the bundled, configured and cached models: size, limits, memory, readiness."""
    if context.invoked_subcommand is not None:
        return
    from ragcli import console
    from ragcli.models import catalog

    with _boundary(debug):
        settings = _settings(embed_model=embed_model, llm=llm, backend=backend)
        console.render_models(catalog.list_models(settings), json_)


@models_app.command("prepare")
def models_prepare(
    embed_model: EmbedModel = None,
    llm: Llm = None,
    backend: Backend = None,
    json_: Json = False,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Assemble, verify and convert the generator, and check the embedder loads (offline)."""
    from ragcli import console
    from ragcli.models import preparing

    with _boundary(debug):
        settings = _settings(embed_model=embed_model, llm=llm, backend=backend)
        events = console.ConsoleEvents(quiet)
        prepared = preparing.prepare_models(settings, events.status, events.warn)
        console.render_prepared(prepared, json_)


# -- collections -------------------------------------------------------------------------------


@app.command()
def status(collection: Collection = None, json_: Json = False, debug: Debug = False) -> None:
    """Show a collection: embedder, chunking, documents, chunks, index, size, last update."""
    from ragcli import console, manage

    with _boundary(debug):
        console.render_status(manage.collection_status(_settings(collection=collection)), json_)


@app.command(name="list")
def list_(collection: Collection = None, json_: Json = False, debug: Debug = False) -> None:
    """List the collection's documents with their chunk counts."""
    from ragcli import console, manage

    with _boundary(debug):
        console.render_documents(manage.list_documents(_settings(collection=collection)), json_)


@app.command()
def remove(
    paths: Annotated[
        list[str],
        typer.Argument(help="Documents by source as listed, or files or folders as ingested."),
    ],
    collection: Collection = None,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Remove documents from the collection (the files themselves stay)."""
    from ragcli import console, manage

    with _boundary(debug):
        report = manage.remove_documents(_settings(collection=collection), paths)
        console.render_removed(report, json_)
        if report.not_found:
            raise UsageError(
                f"not in collection {report.collection!r}: {', '.join(report.not_found)}",
                "`ragcli list` shows what it holds",
            )


collections_app = typer.Typer(
    help="List the collections, or drop one.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(collections_app, name="collections")


@collections_app.callback(invoke_without_command=True)
def collections(context: typer.Context, json_: Json = False, debug: Debug = False) -> None:
    """List every collection with its documents, chunks, embedder, size and last update."""
    if context.invoked_subcommand is not None:
        return
    from ragcli import console, manage

    with _boundary(debug):
        console.render_collections(manage.list_collections(_settings()), json_)


def _interactive() -> bool:
    """Whether a question can be asked: stdin is a terminal."""
    return sys.stdin.isatty()


@collections_app.command("drop")
def collections_drop(
    name: Annotated[str, typer.Argument(help="The collection to delete.")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask (needed when stdin is no terminal).")
    ] = False,
    json_: Json = False,
    debug: Debug = False,
) -> None:
    """Delete a collection and everything in it (never the files it was made from)."""
    from ragcli import console, manage

    with _boundary(debug):
        settings = _settings(collection=name)
        if not yes:
            planned = manage.describe_for_drop(settings)
            if not _interactive():
                raise UsageError(
                    f"dropping collection {name!r} needs confirmation",
                    "pass --yes to drop it without a question",
                )
            question = (
                f"Drop collection {name!r} ({planned.documents} documents, {planned.chunks} "
                "chunks)?"
            )
            if not typer.confirm(question, default=False, err=True):
                raise RagcliError(f"collection {name!r} kept")
        console.render_dropped(manage.drop(settings), json_)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:
        _silence_stdout()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.stderr.write("ragcli: error: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
