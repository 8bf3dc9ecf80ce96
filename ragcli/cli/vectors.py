"""Embeddings as tools: ``ragcli similarity`` and ``ragcli embed``."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ragcli.cli import inputs
from ragcli.cli.options import (
    Collection,
    Debug,
    DocumentPrompt,
    EmbedModel,
    Json,
    QueryPrompt,
    Quiet,
)
from ragcli.cli.root import boundary
from ragcli.errors import UsageError


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
To = Annotated[
    str | None,
    typer.Option(
        "--to",
        help="Compare every TEXT with this one, encoded as a query (as search does).",
    ),
]
Format = Annotated[
    VectorFormat,
    typer.Option("--format", help="JSON Lines, or a NumPy .npy array (needs --output)."),
]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write to this file instead of standard output."),
]
Normalize = Annotated[
    bool, typer.Option("--normalize/--no-normalize", help="Scale vectors to unit length.")
]


def similarity(
    texts: Texts = None,
    to: To = None,
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

    with boundary(debug):
        settings = inputs.settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
        )
        texts_ = inputs.read_texts(texts)
        result = vectors.similarity(settings, texts_, to=to, role=encode_as.value)
        console.render_similarity(result, json_)


def embed(
    texts: Texts = None,
    encode_as: As = EncodeAs.document,
    vector_format: Format = VectorFormat.jsonl,
    output: Output = None,
    normalize: Normalize = True,
    collection: Collection = None,
    embed_model: EmbedModel = None,
    query_prompt: QueryPrompt = None,
    document_prompt: DocumentPrompt = None,
    quiet: Quiet = False,
    debug: Debug = False,
) -> None:
    """Print the embedding vector of each text (JSON Lines), or save them as .npy."""
    from ragcli import console, vectors

    with boundary(debug):
        if vector_format is VectorFormat.npy and output is None:
            raise UsageError("--format npy needs --output FILE", "or print JSON Lines on stdout")
        settings = inputs.settings(
            collection=collection,
            embed_model=embed_model,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
        )
        result = vectors.embed(settings, inputs.read_texts(texts), encode_as.value, normalize)
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
