"""Source code: cut at function and class boundaries, each block carrying its symbol path
(``"Greeter > greet"``) as its heading and its exact line span, the lines kept verbatim.

Python is read with the standard ``ast``; the other languages with tree-sitter and the
language's own grammar wheel (``tree-sitter-go``, ...), imported when a file of that language is
read. Code between definitions (imports, constants) sits under the enclosing definition's path
(``None`` at the top of a file), cut at blank lines. A file that cannot be parsed, a minified one,
or a language whose grammar is not installed is still read: cut at blank lines, with a note.
"""

from __future__ import annotations

import ast
import importlib
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from ragcli.loaders.parsed import Parsed
from ragcli.loaders.text import decode_text
from ragcli.records import Block

# A definition longer than this is cut at its blank lines, and a run of lines without one into
# even pieces of at most this many lines, so a chunk (200 tokens by default: some 20 lines of
# code) can end between lines rather than inside one.
MAX_BLOCK_LINES = 25
# Lines averaging more characters than this: minified or generated code, read as plain lines.
MINIFIED_LINE_CHARS = 500
# Larger files are read as plain lines: Python's ast takes some 180 bytes of memory per byte of
# source, a tree-sitter tree some 70, and files this size are generated rather than written.
MAX_PYTHON_BYTES = 4 * 2**20
MAX_TREE_BYTES = 10 * 2**20
# Definitions nested deeper than this (class in class in ...) stay inside their parent.
_MAX_DEPTH = 8

# A line that only closes what a definition opened: "}", "};", "end", "})" ...
_CLOSER = re.compile(r"\s*(?:[})\];,]+|end)\s*;?\s*(?://.*|#.*|/\*.*\*/)?\s*")


@dataclass
class _Def:
    """A definition: its 1-based inclusive line span, the path segments it adds (a Go method
    adds its receiver type and its name), and the definitions nested in it."""

    start: int
    end: int
    names: list[str]
    children: list[_Def] = field(default_factory=list)


class _Emitter:
    """Turns a file's lines and its definitions into blocks with headings and line spans."""

    def __init__(self, lines: list[str], joined: set[int] | None = None) -> None:
        self.lines = lines
        self.joined = joined or set()  # blank lines inside a statement: not a place to cut
        self.blocks: list[Block] = []

    def region(self, start: int, end: int, path: list[str], defs: list[_Def], top: bool) -> None:
        """Lines ``start..end`` under ``path``, with their definitions in them."""
        heading = " > ".join(path) or None
        cursor = start
        for d in self._normalised(defs, start, end, top):
            self.gap(cursor, d.start - 1, heading)
            if d.children:
                self.region(d.start, d.end, path + d.names, d.children, top=False)
            else:
                self.leaf(d.start, d.end, " > ".join(path + d.names))
            cursor = d.end + 1
        self.gap(cursor, end, heading)

    def _normalised(self, defs: list[_Def], start: int, end: int, top: bool) -> list[_Def]:
        """Definitions in order, none sharing a line with another or with the parent's first
        line; repeated names numbered ("x (2)") so each definition is its own section; lines
        after the last one that only close the parent ("}", "end") joined to it."""
        kept: list[_Def] = []
        for d in sorted(defs, key=lambda d: (d.start, -d.end)):
            if d.start < start or (not top and d.start == start):
                continue
            d.end = min(d.end, end)
            if kept and d.start <= kept[-1].end:  # on a line of the one before (minified code)
                kept[-1].end = max(kept[-1].end, d.end)
                continue
            kept.append(d)
        seen: dict[tuple[str, ...], int] = {}
        for d in kept:
            key = tuple(d.names)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] > 1:
                d.names = [*d.names[:-1], f"{d.names[-1]} ({seen[key]})"]
        if kept and not top:  # "}" or "end" closing the parent: with its last definition
            rest = range(kept[-1].end + 1, end + 1)
            filled = [n for n in rest if self.lines[n - 1].strip()]
            if filled and all(_CLOSER.fullmatch(self.lines[n - 1]) for n in filled):
                kept[-1].end = filled[-1]
        return kept

    def leaf(self, start: int, end: int, heading: str) -> None:
        """A definition with nothing cut out of it: one block, or cut at blank lines if long."""
        if end - start + 1 <= MAX_BLOCK_LINES:
            text = "\n".join(self.lines[start - 1 : end])
            self.blocks.append(
                Block(text, line_start=start, line_end=end, heading=heading, whole=True)
            )
        else:
            self.gap(start, end, heading)

    def gap(self, start: int, end: int, heading: str | None) -> None:
        """Lines ``start..end`` as blocks of consecutive non-blank lines."""
        run_start: int | None = None
        for number in range(start, end + 2):
            blank = number > end or (
                not self.lines[number - 1].strip() and number not in self.joined
            )
            if not blank and run_start is None:
                run_start = number
            elif blank and run_start is not None:
                pieces = -(-(number - run_start) // MAX_BLOCK_LINES)  # of even length
                step = -(-(number - run_start) // pieces)
                for first in range(run_start, number, step):
                    last = min(first + step, number) - 1
                    text = "\n".join(self.lines[first - 1 : last])
                    self.blocks.append(
                        Block(text, line_start=first, line_end=last, heading=heading, whole=True)
                    )
                run_start = None


def _too_large(size: int, limit: int) -> str:
    return (
        f"too large for symbol paths ({size / 2**20:.1f} MiB; the limit is "
        f"{limit / 2**20:.0f} MiB): cut at blank lines"
    )


def _plain(text: str, note: str | None) -> Parsed:
    """The file cut at blank lines only, with no symbol paths."""
    lines = text.split("\n")
    emitter = _Emitter(lines)
    emitter.gap(1, len(lines), None)
    return Parsed(emitter.blocks, notes=[note] if note else [])


def _structured(lines: list[str], defs: list[_Def], joined: set[int], title: str | None) -> Parsed:
    emitter = _Emitter(lines, joined)
    emitter.region(1, len(lines), [], defs, top=True)
    return Parsed(emitter.blocks, title=title)


# ---------------------------------------------------------------------------------------------
# Python


def parse_python(data: bytes) -> Parsed:
    """Python: functions, classes and their methods (nested classes too), each with its
    decorators, docstring and the comment lines right above it; the title is the first line of
    the module docstring."""
    text = decode_text(data)
    lines = text.split("\n")
    if len(data) > MAX_PYTHON_BYTES:
        return _plain(text, _too_large(len(data), MAX_PYTHON_BYTES))
    try:
        with warnings.catch_warnings():  # invalid escapes etc.: the file's business, not ours
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
    except SyntaxError as e:
        where = f" (line {e.lineno})" if e.lineno else ""
        return _plain(text, f"not valid Python{where}; cut at blank lines")
    except (ValueError, RecursionError, MemoryError) as e:  # NUL bytes, absurd nesting
        return _plain(text, f"not readable as Python ({type(e).__name__}); cut at blank lines")
    docstring = ast.get_docstring(tree)
    title = next((line.strip() for line in (docstring or "").splitlines() if line.strip()), None)
    joined: set[int] = set()
    return _structured(lines, _python_defs(tree.body, lines, joined, 0, 0), joined, title)


def _python_defs(
    body: list[ast.stmt], lines: list[str], joined: set[int], bound: int, depth: int
) -> list[_Def]:
    """The definitions among ``body``'s statements; ``bound``: the last line before them. The
    blank lines inside the other statements (a docstring's) go to ``joined``."""
    defs: list[_Def] = []
    previous_end = bound
    for node in body:
        end = node.end_lineno or node.lineno
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            while start - 1 > previous_end and lines[start - 2].lstrip().startswith("#"):
                start -= 1  # the comment lines right above belong to the definition
            children: list[_Def] = []
            if isinstance(node, ast.ClassDef) and depth < _MAX_DEPTH:
                children = _python_defs(node.body, lines, joined, node.lineno, depth + 1)
            defs.append(_Def(start, end, [node.name], children))
        else:
            _join_blank_lines(lines, node.lineno, end, joined)
        previous_end = end
    return defs


def _join_blank_lines(lines: list[str], first: int, last: int, joined: set[int]) -> None:
    """Mark the blank lines inside one statement (lines ``first..last``) as no place to cut,
    unless it is long enough to need cutting anyway."""
    if last - first < MAX_BLOCK_LINES:
        joined.update(n for n in range(first + 1, last) if not lines[n - 1].strip())


# ---------------------------------------------------------------------------------------------
# tree-sitter languages

_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_C_TRANSPARENT = frozenset(
    {"preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef",
     "linkage_specification", "declaration_list"}
)  # fmt: skip
_C_TYPES = frozenset({"type_definition", "enum_specifier", "struct_specifier", "union_specifier"})


@dataclass(frozen=True)
class _Grammar:
    """Which nodes of a tree-sitter grammar are definitions, and how to walk to them."""

    label: str  # the language as people write it, for notes
    module: str  # the grammar's Python module
    function: str  # its function that returns the language
    package: str  # the grammar's package on PyPI
    leaves: frozenset[str]  # definitions read whole (functions, methods, types)
    containers: frozenset[str] = frozenset()  # definitions with definitions inside (classes)
    wrappers: frozenset[str] = frozenset()  # hold a definition and lend it their span (export)
    transparent: frozenset[str] = frozenset()  # walked through at the same level (#ifdef)
    attached: frozenset[str] = _COMMENTS  # join the definition right after them
    multiline: frozenset[str] = frozenset()  # definitions only when over one line (types)
    needs_body: frozenset[str] = frozenset()  # definitions only with a body (not abstract)


_JS_LEAVES = frozenset(
    {"function_declaration", "generator_function_declaration", "method_definition"}
)


def _typescript(label: str, function: str) -> _Grammar:
    return _Grammar(
        label, "tree_sitter_typescript", function, "tree-sitter-typescript",
        leaves=_JS_LEAVES | {"type_alias_declaration", "enum_declaration"},
        containers=frozenset(
            {"class_declaration", "abstract_class_declaration", "interface_declaration",
             "internal_module", "module"}
        ),
        wrappers=frozenset({"export_statement", "ambient_declaration", "expression_statement"}),
        attached=_COMMENTS | {"decorator"},
        multiline=frozenset({"type_alias_declaration", "enum_declaration"}),
    )  # fmt: skip


GRAMMARS: dict[str, _Grammar] = {
    "javascript": _Grammar(
        "JavaScript", "tree_sitter_javascript", "language", "tree-sitter-javascript",
        leaves=_JS_LEAVES, containers=frozenset({"class_declaration"}),
        wrappers=frozenset({"export_statement"}), attached=_COMMENTS | {"decorator"},
    ),
    "typescript": _typescript("TypeScript", "language_typescript"),
    "tsx": _typescript("TSX", "language_tsx"),
    "go": _Grammar(
        "Go", "tree_sitter_go", "language", "tree-sitter-go",
        leaves=frozenset({"function_declaration", "method_declaration", "type_declaration"}),
        multiline=frozenset({"type_declaration"}),
    ),
    "rust": _Grammar(
        "Rust", "tree_sitter_rust", "language", "tree-sitter-rust",
        leaves=frozenset(
            {"function_item", "struct_item", "enum_item", "union_item", "macro_definition"}
        ),
        containers=frozenset({"impl_item", "trait_item", "mod_item"}),
        attached=_COMMENTS | {"attribute_item"},
        multiline=frozenset({"struct_item", "enum_item", "union_item"}),
    ),
    "java": _Grammar(
        "Java", "tree_sitter_java", "language", "tree-sitter-java",
        leaves=frozenset(
            {"method_declaration", "constructor_declaration", "compact_constructor_declaration",
             "annotation_type_declaration"}
        ),  # fmt: skip
        containers=frozenset(
            {"class_declaration", "interface_declaration", "enum_declaration",
             "record_declaration"}
        ),  # fmt: skip
        transparent=frozenset({"enum_body_declarations"}),
        needs_body=frozenset({"method_declaration"}),
    ),
    "c": _Grammar(
        "C", "tree_sitter_c", "language", "tree-sitter-c",
        leaves=frozenset({"function_definition", "type_definition", "enum_specifier"}),
        containers=frozenset({"struct_specifier", "union_specifier"}),
        transparent=_C_TRANSPARENT, multiline=_C_TYPES,
    ),
    "cpp": _Grammar(
        "C++", "tree_sitter_cpp", "language", "tree-sitter-cpp",
        leaves=frozenset({"function_definition", "type_definition", "enum_specifier"}),
        containers=frozenset(
            {"struct_specifier", "union_specifier", "class_specifier", "namespace_definition"}
        ),
        wrappers=frozenset({"template_declaration"}),
        transparent=_C_TRANSPARENT, multiline=_C_TYPES | {"class_specifier"},
    ),
    "ruby": _Grammar(
        "Ruby", "tree_sitter_ruby", "language", "tree-sitter-ruby",
        leaves=frozenset({"method", "singleton_method"}),
        containers=frozenset({"class", "module", "singleton_class"}),
    ),
    "shell": _Grammar(
        "shell", "tree_sitter_bash", "language", "tree-sitter-bash",
        leaves=frozenset({"function_definition"}),
    ),
    "csharp": _Grammar(
        "C#", "tree_sitter_c_sharp", "language", "tree-sitter-c-sharp",
        leaves=frozenset(
            {"method_declaration", "constructor_declaration", "destructor_declaration",
             "operator_declaration", "conversion_operator_declaration", "enum_declaration",
             "property_declaration"}
        ),  # fmt: skip
        containers=frozenset(
            {"class_declaration", "struct_declaration", "interface_declaration",
             "record_declaration", "namespace_declaration"}
        ),  # fmt: skip
        multiline=frozenset({"enum_declaration", "property_declaration"}),
        needs_body=frozenset({"method_declaration"}),
    ),
    "php": _Grammar(
        "PHP", "tree_sitter_php", "language_php", "tree-sitter-php",
        leaves=frozenset({"function_definition", "method_declaration"}),
        containers=frozenset(
            {"class_declaration", "interface_declaration", "trait_declaration",
             "enum_declaration", "namespace_definition"}
        ),  # fmt: skip
        needs_body=frozenset({"method_declaration"}),
    ),
}  # fmt: skip

_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
_CLASS_VALUES = frozenset({"class"})
# Declarator nodes of C and C++ that name what is declared.
_C_NAMES = frozenset(
    {"identifier", "field_identifier", "qualified_identifier", "destructor_name",
     "operator_name", "type_identifier", "template_function", "operator_cast"}
)  # fmt: skip


@cache
def _language(grammar: _Grammar) -> Any:
    """The grammar's tree-sitter Language (ImportError or ValueError when not usable)."""
    from tree_sitter import Language

    module = importlib.import_module(grammar.module)
    return Language(getattr(module, grammar.function)())


def _first_line(node: Any) -> int:
    return int(node.start_point.row) + 1


def _last_line(node: Any) -> int:
    """1-based last line of a node; one that ends at a line's start ends on the line before."""
    row, column = node.end_point.row, node.end_point.column
    return max(int(row) + (1 if column else 0), _first_line(node))


class _Walker:
    """Finds the definitions in a tree-sitter tree of ``source``."""

    def __init__(self, source: bytes, lines: list[str], grammar: _Grammar) -> None:
        self.source, self.lines, self.grammar = source, lines, grammar
        self.joined: set[int] = set()  # blank lines inside statements between definitions

    def name(self, node: Any) -> str:
        if node is None:
            return ""
        text = self.source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")
        return " ".join(text.split())[:80]

    def field_name(self, node: Any, name: str = "name") -> str:
        return self.name(node.child_by_field_name(name))

    def declarator_name(self, node: Any) -> str:
        """The name a C or C++ declarator chain ends in (``*make``, ``Box::area``)."""
        current = node.child_by_field_name("declarator")
        for _ in range(32):
            if current is None:
                return ""
            if current.type in _C_NAMES:
                return self.name(current)
            following = current.child_by_field_name("declarator")
            if following is None:
                following = next(iter(current.named_children), None)
            current = following
        return ""

    def go_receiver(self, node: Any) -> str:
        """The type a Go method is declared on (``func (s *Server[T]) Start()``: ``Server``)."""
        receiver = node.child_by_field_name("receiver")
        declaration = next(iter(receiver.named_children), None) if receiver is not None else None
        kind = declaration.child_by_field_name("type") if declaration is not None else None
        return re.split(r"[\[(]", self.name(kind).lstrip("*").strip())[0].strip()

    def names(self, node: Any, kind: str) -> list[str]:
        """The path segments a definition node adds ("" where it has no usable name)."""
        if kind == "method_declaration" and node.child_by_field_name("receiver") is not None:
            receiver, method = self.go_receiver(node), self.field_name(node)
            return [receiver, method] if receiver else [method]
        if kind == "type_declaration":  # Go: type X struct, or a group of them
            specs = [
                self.field_name(c)
                for c in node.named_children
                if c.type in ("type_spec", "type_alias")
            ]
            return [", ".join(s for s in specs if s)]
        if kind == "impl_item":  # Rust: impl<T> Stack<T> -> impl Stack, impl Display for Point
            target = self.field_name(node, "type").split("<")[0].strip()
            trait = self.field_name(node, "trait")
            return [f"impl {trait} for {target}" if trait else f"impl {target}"]
        if kind in ("function_definition", "type_definition") and node.child_by_field_name(
            "declarator"
        ):
            return [self.declarator_name(node)]  # C and C++
        if kind == "singleton_method":  # Ruby: def self.make
            return [f"{self.field_name(node, 'object')}.{self.field_name(node)}"]
        if kind == "singleton_class":  # Ruby: class << self
            return [f"class << {self.field_name(node, 'value')}"]
        if kind == "namespace_definition" and node.child_by_field_name("name") is None:
            return ["(anonymous namespace)"]
        return [self.field_name(node)]

    def definition(self, node: Any) -> tuple[list[str], Any | None] | None:
        """(path segments, body to look for nested definitions in, or None) of a definition."""
        grammar, kind = self.grammar, node.type
        if kind in grammar.wrappers:
            for child in node.named_children:
                found = self.definition(child)
                if found is not None:
                    return found
            return None
        if kind in ("lexical_declaration", "variable_declaration"):  # const f = () => {...}
            return self.bound_definition(node)
        if kind in ("public_field_definition", "field_definition"):  # handle = () => {...}
            value = node.child_by_field_name("value")
            if value is None or value.type not in _FUNCTION_VALUES:
                return None
            name = self.field_name(node) or self.field_name(node, "property")
            return ([name], None) if name else None
        if kind not in grammar.leaves and kind not in grammar.containers:
            return None
        body = node.child_by_field_name("body")
        if kind in grammar.multiline and _last_line(node) == _first_line(node):
            return None
        if (kind in grammar.needs_body or kind in grammar.containers) and body is None:
            return None  # abstract or declared only: part of the code around it
        names = self.names(node, kind)
        if not all(names):
            return None
        return names, body if kind in grammar.containers else None

    def bound_definition(self, node: Any) -> tuple[list[str], Any | None] | None:
        """A JavaScript or TypeScript ``const``/``let``/``var`` binding a function or class."""
        for declarator in node.named_children:
            if declarator.type != "variable_declarator":
                continue
            value = declarator.child_by_field_name("value")
            name = self.field_name(declarator)
            if value is None or not name:
                continue
            if value.type in _FUNCTION_VALUES:
                return [name], None
            if value.type in _CLASS_VALUES:
                return [name], value.child_by_field_name("body")
        return None

    def defs(self, scope: Any, depth: int, through: int = 0) -> list[_Def]:
        """The definitions directly in ``scope`` (through any transparent nodes), each starting
        at the comments, decorators or attributes that lead into it."""
        grammar = self.grammar
        defs: list[_Def] = []
        previous_end = 0  # last line of the sibling before
        lead: int | None = None  # first line of the leading comments run, if one is open
        lead_end = 0
        for child in scope.named_children:
            kind = child.type
            first, last = _first_line(child), _last_line(child)
            if (kind in grammar.transparent or kind == "ERROR") and through < 64:
                defs += self.defs(child, depth, through + 1)
                lead, previous_end = None, last
                continue
            if kind in grammar.attached:
                if first <= previous_end:  # a comment after code on its line: not a leading one
                    lead = None
                elif lead is None or first > lead_end + 1:  # a blank line ends a run
                    lead = first
                lead_end = previous_end = last
                continue
            found = self.definition(child)
            if found is not None:
                names, body = found
                start = lead if lead is not None and lead_end >= first - 1 else first
                children: list[_Def] = []
                if body is not None and depth < _MAX_DEPTH:
                    children = self.defs(body, depth + 1)
                defs.append(_Def(start, last, names, children))
            elif last > first + 1:
                _join_blank_lines(self.lines, first, last, self.joined)
            lead, previous_end = None, last
        return defs


_CPP_HINT = re.compile(
    r"^\s*(?:class\s+\w+\s*[:{]|namespace\b|template\s*<|public:|private:)", re.M
)


def parse_code(data: bytes, language: str) -> Parsed:
    """Source code in ``language`` (a key of ``GRAMMARS``, or "python") as blocks per definition."""
    if language == "python":
        return parse_python(data)
    grammar = GRAMMARS[language]
    text = decode_text(data)
    lines = text.split("\n")
    if len(text) > MINIFIED_LINE_CHARS * len(lines):
        return _plain(
            text,
            f"minified or generated code (lines average over {MINIFIED_LINE_CHARS} "
            "characters): cut at blank lines, no symbol paths",
        )
    if len(data) > MAX_TREE_BYTES:
        return _plain(text, _too_large(len(data), MAX_TREE_BYTES))
    if language == "c" and _CPP_HINT.search(text):  # a C++ header named .h
        grammar = GRAMMARS["cpp"]
    try:
        parser_language = _language(grammar)
    except (ImportError, AttributeError, ValueError, OSError) as e:
        return _plain(
            text,
            f"{grammar.label} grammar not available ({grammar.package}: {type(e).__name__}): "
            "cut at blank lines, no symbol paths",
        )
    source = text.encode("utf-8")
    tree = _parse_tree(parser_language, _ascii(source))
    if tree is None:
        return _plain(
            text,
            f"{grammar.label} parse failed: cut at blank lines",
        )
    walker = _Walker(source, lines, grammar)
    defs = walker.defs(tree.root_node, 0)
    if not defs and _mostly_errors(tree.root_node, len(source)):
        return _plain(text, f"not valid {grammar.label}; cut at blank lines")
    return _structured(lines, defs, walker.joined, None)


def _mostly_errors(root: Any, size: int) -> bool:
    """Whether most of the file is syntax errors (prose under a code extension), not just a
    macro or an extension here and there that the grammar does not know."""
    if root.type == "ERROR":
        return True
    wrong = sum(c.end_byte - c.start_byte for c in root.children if c.type == "ERROR")
    return wrong * 2 > size


_NOT_ASCII = bytes(range(128)) + b"_" * 128


def _ascii(source: bytes) -> bytes:
    """``source`` with every byte outside ASCII made ``_``: the same lines and byte offsets
    (names are read from the real source by them), identifiers still identifiers, strings
    and comments still strings and comments. tree-sitter-bash 0.25's scanner corrupts memory
    on some non-ASCII text and crashed the interpreter (SIGSEGV) within seconds of fuzzing
    with mixed code lines and random characters, and again on replays of one 150-byte input;
    on ASCII it ran 300,000 fuzzed inputs and 900 replays without a crash."""
    return source.translate(_NOT_ASCII)


def _parse_tree(language: Any, source: bytes) -> Any | None:
    """The syntax tree of ``source``, or None when tree-sitter fails.

    Parsed from the bytes at once, with no time limit: tree-sitter 0.26's chunked-reader
    form, the only one that honours a progress callback, is reported to crash the interpreter
    (SIGSEGV) when the callback fires. The size limits bound the parse instead
    (``MAX_TREE_BYTES``; it is about linear in the source).
    """
    from tree_sitter import Parser

    try:
        return Parser(language).parse(source)
    except ValueError:  # "Parsing failed"
        return None


def _loaders(
    extensions: Iterable[str], language: str, fmt: str
) -> dict[str, tuple[str, Callable[[bytes], Parsed]]]:
    parser: Callable[[bytes], Parsed] = partial(parse_code, language=language)
    return {extension: (fmt, parser) for extension in extensions}


# Extension -> (format name, parser), merged into ``reading.LOADERS``. The format name is the
# language, so ``--type python`` selects Python files.
CODE_LOADERS: dict[str, tuple[str, Callable[[bytes], Parsed]]] = {
    ".py": ("python", parse_python),
    ".pyi": ("python", parse_python),
    **_loaders([".js", ".mjs", ".cjs", ".jsx"], "javascript", "javascript"),
    **_loaders([".ts", ".mts", ".cts"], "typescript", "typescript"),
    **_loaders([".tsx"], "tsx", "typescript"),
    **_loaders([".go"], "go", "go"),
    **_loaders([".rs"], "rust", "rust"),
    **_loaders([".java"], "java", "java"),
    **_loaders([".c", ".h"], "c", "c"),
    **_loaders([".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx"], "cpp", "cpp"),
    **_loaders([".rb"], "ruby", "ruby"),
    **_loaders([".sh", ".bash"], "shell", "shell"),
    **_loaders([".cs"], "csharp", "csharp"),
    **_loaders([".php"], "php", "php"),
}
