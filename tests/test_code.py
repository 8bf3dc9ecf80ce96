"""The source-code loader: blocks per definition with symbol paths and exact line spans, the
lines verbatim; plain lines with a note for code it cannot structure."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ragcli.chunking import split_document
from ragcli.errors import LoaderError
from ragcli.filters import parse_types
from ragcli.loaders import LOADERS, load_documents, parse_code, parse_python
from ragcli.loaders import code as code_module
from ragcli.records import Document


def _words(texts: list[str] | tuple[str, ...]) -> list[int]:
    return [len(t.split()) for t in texts]


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source).lstrip("\n"))
    return path


def _load(path: Path) -> Document:
    (document,) = load_documents(path, path.name)
    return document


def _spans(document: Document) -> list[tuple[str | None, int | None, int | None]]:
    return [(b.heading, b.line_start, b.line_end) for b in document.blocks]


PYTHON = '''
"""Greeting helpers.

Say hello to people.
"""

import functools
import os

DEFAULT = "hello"


@functools.cache
def shout(text):
    return text.upper()


class Greeter:
    """Greets one person."""

    greeting = DEFAULT

    def __init__(self, name):
        self.name = name

    # The greeting, with the name.
    def greet(self):
        return f"{self.greeting}, {self.name}"

    class Options:
        loud = False

        def level(self):
            return 2 if self.loud else 1


if __name__ == "__main__":
    print(Greeter(os.getlogin()).greet())
'''


def test_python_definitions_carry_symbol_paths_and_line_spans(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "greet.py", PYTHON))
    assert document.format == "python"
    assert document.title == "Greeting helpers."
    assert document.notes == []
    assert _spans(document) == [
        (None, 1, 4),  # the module docstring
        (None, 6, 7),  # imports, a paragraph
        (None, 9, 9),  # a constant
        ("shout", 12, 14),  # the decorator belongs to its function
        ("Greeter", 17, 18),  # class line and docstring
        ("Greeter", 20, 20),
        ("Greeter > __init__", 22, 23),
        ("Greeter > greet", 25, 27),  # the comment right above belongs to the method
        ("Greeter > Options", 29, 30),
        ("Greeter > Options > level", 32, 33),
        (None, 36, 37),
    ]
    assert all(b.whole and not b.is_heading for b in document.blocks)
    greet = document.blocks[7]
    assert greet.text == (
        "    # The greeting, with the name.\n"
        "    def greet(self):\n"
        '        return f"{self.greeting}, {self.name}"'
    )  # verbatim, indentation kept


def test_chunks_never_mix_definitions_and_carry_line_spans(tmp_path: Path) -> None:
    long_body = "\n".join(
        f"    value_{i} = compute_something(value_{i - 1}, factor={i}, label='step {i}')"
        + ("\n" if i % 7 == 0 else "")
        for i in range(1, 61)
    )
    source = PYTHON + f"\n\ndef long_one(value_0):\n{long_body}\n    return value_60\n"
    document = _load(_write(tmp_path, "long.py", source))
    long_blocks = [b for b in document.blocks if b.heading == "long_one"]
    assert len(long_blocks) > 3  # 60+ lines: cut at its blank lines, each piece its own span
    assert long_blocks[0].line_start == 40 and long_blocks[-1].line_end == 109
    chunks = split_document(document, _words, 120, 10)
    assert len(chunks) > len({b.heading for b in document.blocks})
    for chunk in chunks:
        assert chunk.line_start is not None and chunk.line_end is not None
        inside = [
            b
            for b in document.blocks
            if b.line_start is not None
            and b.line_end is not None
            and b.line_start <= chunk.line_end
            and b.line_end >= chunk.line_start
        ]
        assert inside and {b.heading for b in inside} == {chunk.heading}, chunk
    long_chunks = [c for c in chunks if c.heading == "long_one"]
    assert len(long_chunks) > 1
    assert all(c.text.startswith("long_one\n\n") for c in long_chunks[1:])  # path repeated
    assert min(c.line_start or 0 for c in long_chunks) == 40
    assert max(c.line_end or 0 for c in long_chunks) == 109


def test_same_name_twice_gets_its_own_section() -> None:
    source = (
        b"class P:\n    @property\n    def x(self):\n        return 1\n\n"
        b"    @x.setter\n    def x(self, v):\n        pass\n"
    )
    parsed = parse_python(source)
    assert [(b.heading, b.line_start, b.line_end) for b in parsed.blocks] == [
        ("P", 1, 1),
        ("P > x", 2, 4),
        ("P > x (2)", 6, 8),
    ]


JAVASCRIPT = """
import { api } from "./api.js";

// A shopping cart.
class Cart {
  constructor() {
    this.items = [];
  }

  add(item) {
    this.items.push(item);
  }
}

function total(cart) {
  return cart.items.length;
}

export const checkout = async (cart) => {
  await api.post(cart);
};
"""


def test_javascript_class_function_and_arrow_const(tmp_path: Path) -> None:
    document = _load(_write(tmp_path, "cart.mjs", JAVASCRIPT))
    assert document.format == "javascript"
    assert _spans(document) == [
        (None, 1, 1),
        ("Cart", 3, 4),  # the comment above joins the class
        ("Cart > constructor", 5, 7),
        ("Cart > add", 9, 12),  # the class's closing brace goes with its last method
        ("total", 14, 16),
        ("checkout", 18, 20),
    ]


def test_go_method_on_struct(tmp_path: Path) -> None:
    source = """
    package server

    import "net/http"

    // Server serves HTTP.
    type Server struct {
    \tPort int
    }

    // Start listens.
    func (s *Server) Start() error {
    \treturn http.ListenAndServe(":80", nil)
    }

    func New() *Server {
    \treturn &Server{Port: 80}
    }
    """
    document = _load(_write(tmp_path, "server.go", source))
    assert document.format == "go"
    assert _spans(document) == [
        (None, 1, 1),
        (None, 3, 3),
        ("Server", 5, 8),
        ("Server > Start", 10, 13),
        ("New", 15, 17),
    ]
    assert document.blocks[3].text.endswith('\treturn http.ListenAndServe(":80", nil)\n}')


def test_rust_impl_and_trait_impl(tmp_path: Path) -> None:
    source = """
    use std::fmt;

    /// A point.
    #[derive(Debug)]
    struct Point {
        x: i32,
    }

    impl Point {
        fn new(x: i32) -> Self {
            Point { x }
        }

        fn x(&self) -> i32 {
            self.x
        }
    }

    impl fmt::Display for Point {
        fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{}", self.x)
        }
    }
    """
    document = _load(_write(tmp_path, "point.rs", source))
    assert document.format == "rust"
    assert _spans(document) == [
        (None, 1, 1),
        ("Point", 3, 7),  # doc comment and attribute with the struct
        ("impl Point", 9, 9),
        ("impl Point > new", 10, 12),
        ("impl Point > x", 14, 17),
        ("impl fmt::Display for Point", 19, 19),
        ("impl fmt::Display for Point > fmt", 20, 23),
    ]


def test_c_functions_types_and_preprocessor(tmp_path: Path) -> None:
    source = """
    #ifndef POINT_H
    #define POINT_H
    #include <stdio.h>

    typedef struct {
        int x;
    } point;

    /* Prints a point. */
    static void print_point(const point *p) {
        printf("%d\\n", p->x);
    }

    int main(void) {
        return 0;
    }
    #endif
    """
    document = _load(_write(tmp_path, "point.c", source))
    assert document.format == "c"
    assert _spans(document) == [
        (None, 1, 3),
        ("point", 5, 7),
        ("print_point", 9, 12),
        ("main", 14, 16),
        (None, 17, 17),
    ]


def test_java_class_with_annotations_and_javadoc(tmp_path: Path) -> None:
    source = """
    package shop;

    /** A cart. */
    public class Cart {
        private int count;

        /** Adds one. */
        @Deprecated
        public void add() {
            count++;
        }

        public Cart() {
        }

        abstract static class Base {
            abstract int size();
        }
    }
    """
    document = _load(_write(tmp_path, "Cart.java", source))
    assert document.format == "java"
    assert _spans(document) == [
        (None, 1, 1),
        ("Cart", 3, 5),
        ("Cart > add", 7, 11),
        ("Cart > Cart", 13, 14),
        ("Cart > Base", 16, 19),  # abstract methods are not sections of their own
    ]


@pytest.mark.parametrize(
    ("name", "source", "headings"),
    [
        (
            "app.ts",
            "export interface Shape {\n  area(): number;\n}\n\n@Component()\n"
            "export class Box implements Shape {\n  @Input() size = 1;\n\n"
            "  area(): number {\n    return this.size ** 2;\n  }\n\n"
            "  handle = () => {\n    this.size++;\n  };\n}\n\n"
            "export function make(): Box {\n  return new Box();\n}\n",
            ["Shape", "Box", "Box > area", "Box > handle", "make"],
        ),
        (
            "view.tsx",
            "export const View = (p: Props) => {\n  return <div>{p.name}</div>;\n};\n",
            ["View"],
        ),
        (
            "shop.rb",
            "module Shop\n  class Cart\n    def add(x)\n      @items << x\n    end\n\n"
            "    def self.build\n      new\n    end\n  end\nend\n",
            ["Shop", "Shop > Cart", "Shop > Cart > add", "Shop > Cart > self.build"],
        ),
        (
            "deploy.sh",
            "#!/bin/sh\nset -e\n\nbuild() {\n  make all\n}\n\nfunction ship {\n  scp a b\n}\n"
            "\nbuild && ship\n",
            [None, "build", "ship", None],
        ),
        (
            "box.cpp",
            "namespace geo {\ntemplate <typename T>\nclass Box {\n public:\n"
            "  int area() const {\n    return 1;\n  }\n};\n}  // namespace geo\n\n"
            "int Box::size() {\n  return 2;\n}\n",
            ["geo", "geo > Box", "geo > Box > area", "Box::size"],
        ),
        (
            "box.h",  # a C++ header under C's extension
            "class Box {\n public:\n  int area() const {\n    return 1;\n  }\n};\n",
            ["Box", "Box > area"],
        ),
        (
            "Cart.cs",
            "namespace Shop {\n  public class Cart {\n    public int Count() {\n"
            "      return 0;\n    }\n  }\n}\n",
            ["Shop", "Shop > Cart", "Shop > Cart > Count"],
        ),
        (
            "cart.php",
            "<?php\nclass Cart {\n    public function add($x) {\n        return $x;\n    }\n}\n",
            [None, "Cart", "Cart > add"],
        ),
    ],
)
def test_other_languages(tmp_path: Path, name: str, source: str, headings: list) -> None:
    document = _load(_write(tmp_path, name, source))
    seen: list[str | None] = []
    for block in document.blocks:
        assert block.line_start is not None and block.line_end is not None
        if not seen or seen[-1] != block.heading:
            seen.append(block.heading)
    assert seen == headings
    assert document.notes == []
    lines = source.split("\n")
    for block in document.blocks:  # every block is exactly its lines of the file
        assert block.text == "\n".join(lines[block.line_start - 1 : block.line_end])


def test_extensions_and_type_filter_names() -> None:
    for extension, fmt in [
        (".py", "python"), (".js", "javascript"), (".cjs", "javascript"), (".ts", "typescript"),
        (".tsx", "typescript"), (".go", "go"), (".rs", "rust"), (".java", "java"), (".c", "c"),
        (".h", "c"), (".cpp", "cpp"), (".cc", "cpp"), (".hpp", "cpp"), (".rb", "ruby"),
        (".sh", "shell"), (".bash", "shell"), (".cs", "csharp"), (".php", "php"),
    ]:  # fmt: skip
        assert LOADERS[extension][0] == fmt
    assert parse_types(["python,py"]) == ("python",)
    assert parse_types(["ts", "tsx", "go"]) == ("typescript", "go")


# --- input the loader cannot structure -------------------------------------------------------


def test_invalid_python_falls_back_to_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path, "broken.py", "import os\n\ndef f(:\n    pass\n\n\nx = 1\n")
    document = _load(path)
    assert document.notes == ["not valid Python (line 3); cut at blank lines"]
    assert _spans(document) == [(None, 1, 1), (None, 3, 4), (None, 7, 7)]
    assert document.blocks[1].text == "def f(:\n    pass"


def test_binary_bytes_named_py_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)) * 40)
    with pytest.raises(LoaderError, match="binary file"):
        _load(path)


@pytest.mark.parametrize("content", [b"", b"\n\n   \n\t\n"])
def test_empty_python_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.py"
    path.write_bytes(content)
    with pytest.raises(LoaderError, match="empty file"):
        _load(path)


def test_prose_named_go_still_loads_as_text(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "notes.go",
        "Meeting notes, Tuesday.\nWe agreed to ship on Friday!\n\nOpen questions: none.\n",
    )
    document = _load(path)
    assert document.format == "go"
    assert document.notes == ["not valid Go; cut at blank lines"]
    assert _spans(document) == [(None, 1, 2), (None, 4, 4)]


def test_huge_minified_javascript_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "bundle.min.js"
    unit = "function a%d(b,c){return b+c}var x%d=[1,2,3].map(function(d){return d*2});"
    path.write_text("".join(unit % (i, i) for i in range(15_000)))
    assert path.stat().st_size > 1_000_000
    document = _load(path)  # about 0.1 s: lines this long are not parsed for symbols
    chunks = split_document(document, _words, 120, 10)
    assert document.notes == [
        "minified or generated code (lines average over 500 characters): cut at blank lines, "
        "no symbol paths"
    ]
    assert _spans(document) == [(None, 1, 1)]
    assert len(chunks) > 100 and all(c.line_start == 1 == c.line_end for c in chunks)
    assert "".join("".join(c.text for c in chunks).split()) == "".join(
        path.read_text().split()
    )  # nothing lost but the spaces where chunks were cut


def test_missing_grammar_falls_back_with_a_note(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = dataclasses.replace(code_module.GRAMMARS["go"], module="tree_sitter_nonexistent")
    monkeypatch.setitem(code_module.GRAMMARS, "go", broken)
    parsed = parse_code(b"package a\n\nfunc F() {\n}\n", "go")
    assert parsed.notes == [
        "Go grammar not available (tree-sitter-go: ModuleNotFoundError): cut at blank lines, "
        "no symbol paths"
    ]
    assert [(b.heading, b.line_start, b.line_end) for b in parsed.blocks] == [
        (None, 1, 1),
        (None, 3, 4),
    ]


def test_a_failed_parse_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_module, "_parse_tree", lambda language, source: None)
    source = "".join(f"function f{i}() {{\n  return {i};\n}}\n\n" for i in range(3000))
    parsed = parse_code(source.encode(), "javascript")
    assert parsed.notes == ["JavaScript parse failed: cut at blank lines"]
    assert len(parsed.blocks) == 3000 and all(b.heading is None for b in parsed.blocks)


def test_trees_are_parsed_from_bytes_with_no_progress_callback() -> None:
    """tree-sitter 0.26 crashes (SIGSEGV) when a progress callback fires while it reads a
    source through a callback; parsing from bytes warns if a progress callback is passed."""
    import warnings

    language = code_module._language(code_module.GRAMMARS["javascript"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tree = code_module._parse_tree(language, b"function f() {\n  return 1;\n}\n")
    assert tree is not None and tree.root_node.type == "program"


def test_file_too_large_for_symbol_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(code_module, "MAX_PYTHON_BYTES", 100)
    parsed = parse_python(PYTHON.encode())
    assert parsed.notes == [
        "too large for symbol paths (0.0 MiB; the limit is 0 MiB): cut at blank lines"
    ]
    assert all(b.heading is None and b.line_start for b in parsed.blocks)


# --- every line kept, once, verbatim ----------------------------------------------------------

_FRAGMENTS = [
    "", "", "\n", "class A:", "    def f(self):", "        return 1", "def g():", "    pass",
    "@dec", "# note", '"""doc', 'more"""', "x = 1", "class B {", "  m() {", "  }", "}", "};",
    "function h() {", "const k = () => {", "func (s *S) Run() {", "impl T {", "fn n() {",
    "end", "def r", "module M", "namespace N {", "#ifdef X", "#endif", "/** c */", "@Ann",
    "public void p() {", "int main(void) {", "struct S {", "type S struct {", "foo() {",
    "\tindented", "    ", "x" * 700, "é ü \u2028 \x0c",
]  # fmt: skip


@pytest.mark.parametrize("suffix", sorted(set(code_module.CODE_LOADERS)))
def test_every_line_is_kept_once_verbatim(suffix: str) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from ragcli.loaders.text import decode_text

    _, parse = LOADERS[suffix]

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=12)), max_size=40))
    def check(parts: list[str]) -> None:
        data = "\n".join(parts).encode("utf-8", "surrogatepass")
        try:
            parsed = parse(data)
        except LoaderError:
            return
        assert isinstance(parsed, code_module.Parsed)
        lines = decode_text(data).split("\n")
        covered: list[int] = []
        for block in parsed.blocks:
            assert block.whole and block.line_start and block.line_end
            assert block.text == "\n".join(lines[block.line_start - 1 : block.line_end])
            covered += range(block.line_start, block.line_end + 1)
        assert covered == sorted(set(covered))  # in order, no line twice
        assert {n for n, line in enumerate(lines, 1) if line.strip()} <= set(covered)

    check()


def test_long_run_without_blank_lines_is_cut_evenly() -> None:
    body = "".join(f"    total += {i}\n" for i in range(28))
    parsed = parse_python(f"def add():\n    total = 0\n{body}".encode())
    assert [(b.heading, b.line_start, b.line_end) for b in parsed.blocks] == [
        ("add", 1, 15),
        ("add", 16, 30),
    ]


def test_trailing_comment_is_not_a_leading_one() -> None:
    source = b"function a() {\n  return 1;\n} // end of a\nfunction b() {\n  return 2;\n}\n"
    parsed = parse_code(source, "javascript")
    assert [(b.heading, b.line_start, b.line_end) for b in parsed.blocks] == [
        ("a", 1, 3),
        ("b", 4, 6),
    ]


# A shell script on which tree-sitter-bash 0.25 crashed the interpreter (SIGSEGV) in 4 of 10
# runs of 1,000 parses: its scanner corrupts memory on some non-ASCII text. Random lines of
# code and characters crash it too, within seconds.
_CRASHED_BASH = (
    b"\xf3\x8d\x8a\xbajA\nW\nfunction h() {\n\xf2\x95\xb2\x8f\xf1\xb8\xaf\xb3?\xf2\xb6\xa9\xa2ZB"
    b"\xf1\x82\xbd\x93l\xf2\xbe\x8d\xa3\xe2\x99\xa9\n9\xf1\x84\x8b\x94[\nend\na\xef\x9f\xb7"
    b"\xf0\x95\x8b\x84\xf0\x99\xac\x977q8\n$\xf3\xa2\xae\xad\xf1\xad\x85\x81'M:F\xf2\x8d\xbe"
    b"\xac\xf2\xbb\xb3\x8a\n\xf3\xbf\x84\x9eg3\xf3\x98\xa2\x82\xf1\xbc\xb1\x82'YXJ\xf1\xb8\xb6"
    b"\x94\n\xf2\x9d\xbf\x8b\n\xf2\xa9\xb4\x80\xf3\xb1\x9e\x94{16\xf1\xa6\x8f\xba\xf4\x85\xa7"
    b"\x98{e"
)
_PARSE_MANY = """
import random, sys
from ragcli.loaders import code
data = open(sys.argv[1], "rb").read()
language = code._language(code.GRAMMARS["shell"])
for _ in range(1000):
    code._parse_tree(language, code._ascii(data))
rng = random.Random(int(sys.argv[2]))
lines = ["function h() {", "}", "end", "x=1", 'echo "$a"', "cat <<EOF", "EOF", "if [ -f x ]; then"]
for _ in range(20000):
    text = "\\n".join(
        rng.choice(lines) if rng.random() < 0.5
        else "".join(chr(rng.randint(32, 0x10FFFF)) for _ in range(rng.randint(0, 12)))
        for _ in range(rng.randint(0, 40))
    )
    code._parse_tree(language, code._ascii(text.encode("utf-8", "surrogatepass")))
"""


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shell_scripts_that_crashed_the_bash_grammar_parse(tmp_path: Path, seed: int) -> None:
    """In a child process, so a crash fails this test instead of ending the run."""
    script = tmp_path / "crash.sh"
    script.write_bytes(_CRASHED_BASH)
    done = subprocess.run(
        [sys.executable, "-c", _PARSE_MANY, str(script), str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_names_outside_ascii_are_read_from_the_source() -> None:
    source = "function größe() {\n  return 'naïve';\n}\n\nfunction ok() {\n  return 1;\n}\n"
    parsed = parse_code(source.encode(), "javascript")
    assert [b.heading for b in parsed.blocks] == ["größe", "ok"]
    assert parsed.blocks[0].text == "function größe() {\n  return 'naïve';\n}"
