"""The options and arguments several commands share, as annotated types with their help."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
Vectors = Annotated[
    str | None,
    typer.Option(
        "--vectors",
        metavar="KIND",
        help="How a new collection keeps its vectors: int8 (4x smaller than float32), float32 or "
        "binary (32x smaller, rescored); fixed per collection, changed with --rebuild "
        "[env: RAGCLI_VECTORS; default: int8].",
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
SessionFile = Annotated[
    Path | None,
    typer.Option(
        "--session",
        metavar="FILE",
        help="Keep the conversation in FILE (JSON Lines, one turn a line; created if missing): "
        "a follow-up is rewritten by the LLM from the earlier turns into a standalone question "
        "for retrieval, and each turn is appended.",
    ),
]
