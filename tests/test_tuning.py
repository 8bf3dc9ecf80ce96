"""ragcli tune: synthetic questions, the choice between settings, and its effect on search."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragcli import pipeline
from ragcli.cli import app
from ragcli.cli.tune import parse_duration
from ragcli.config import load_settings
from ragcli.errors import ModelError, UsageError
from ragcli.pipeline import comparing, tuning
from ragcli.pipeline.comparing import Interval, bootstrap
from ragcli.pipeline.tuning import DEFAULT, clean_question, rejection
from ragcli.retrieval import Fusion, fuse, tuned
from ragcli.store.location import location_for

pytestmark = pytest.mark.usefixtures("fake_models")
runner = CliRunner()


class QuestionWriter:
    """A generator that turns a passage into a question about its first capitalised name."""

    name = "fake-question-writer"
    load_seconds = 0.0
    context_window = 4096
    last_token_count = 0
    last_prompt_tokens = 0
    calls = 0

    def load(self) -> None:
        pass

    def prompt_tokens(self, messages: list[dict[str, str]]) -> int:
        return 0

    def stream(self, messages, max_new_tokens, temperature=0.0, seed=None) -> Iterator[str]:
        QuestionWriter.calls += 1
        passage = messages[-1]["content"]
        names = re.findall(r"\b[A-Z][a-z]{2,}\b", passage.split("\n", 1)[1])
        subject = names[1] if len(names) > 1 else "it"
        yield f"Question: What is known about {subject} here?"


@pytest.fixture
def long_corpus(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    root.mkdir()
    facts = [
        ("Brindle", "bridge", "opened in 1932 and spans the Osk river near the old mill"),
        ("Kettle", "works", "were founded by Ada Pell in 1870 and made copper kettles"),
        ("Corran", "lighthouse", "was kept by Ivo Sand, whose lamp burned whale oil until 1901"),
        ("Pellhaven", "harbour", "received its charter in 1762 from the county assembly"),
        ("Tidelight", "festival", "is held each August with lanterns floated on the tide"),
        ("Netlace", "guild", "repairs fishing nets by hand in the winter months every year"),
    ]
    for name, thing, rest in facts:
        (root / f"{name.lower()}.txt").write_text(
            f"The {name} {thing} {rest}. Visitors to the {name} {thing} often ask about "
            f"Marrow Street, which runs beside it for a mile and a half.\n"
        )
    return root


def test_fusion_methods() -> None:
    dense = [(1, 0.9), (2, 0.5), (3, 0.1)]
    lexical = [(4, 12.0), (2, 11.0), (3, 1.0)]
    rrf = [c.row_id for c in fuse(dense, lexical, Fusion(method="rrf"))]
    assert rrf[0] == 2  # second in both beats first in one
    dense_heavy = fuse(dense, lexical, Fusion(method="convex", alpha=0.9))
    assert dense_heavy[0].row_id == 1
    lexical_heavy = fuse(dense, lexical, Fusion(method="convex", alpha=0.1))
    assert lexical_heavy[0].row_id == 4
    # min-max normalised: the best of each list counts 1, its worst 0
    assert lexical_heavy[0].score == pytest.approx(0.1 * 0.0 + 0.9 * 1.0)
    assert Fusion() == Fusion(method="convex", alpha=0.6, feedback_weight=1.0, feedback_depth=3)
    with pytest.raises(UsageError, match="unknown fusion method"):
        Fusion(method="borda")
    assert Fusion.from_dict({**Fusion(alpha=0.3).to_dict(), "future": 1}) == Fusion(alpha=0.3)


def test_bootstrap_interval_is_paired() -> None:
    ours = {str(i): 0.5 + 0.01 * (i % 3) for i in range(50)}
    same = bootstrap(ours, ours)
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0) and not same.beyond_noise
    better = bootstrap({k: v + 0.1 for k, v in ours.items()}, ours)
    assert better.mean == pytest.approx(0.1) and better.beyond_noise
    mixed = {k: v + (0.2 if int(k) % 2 else -0.2) for k, v in ours.items()}
    interval = bootstrap(mixed, ours)
    assert interval.low < 0 < interval.high and not interval.beyond_noise


def test_synthetic_question_filters() -> None:
    assert (
        clean_question('Question: "What burned in the lamp?"\nmore') == "What burned in the lamp?"
    )
    assert clean_question("**Q:** Who kept it?") == "Who kept it?"
    passage = "The lighthouse keeper was Ivo Sand and the lamp burned whale oil until 1901."
    assert rejection("Which fuel did the lamp use?", passage) is None
    assert rejection("The lamp burned whale oil.", passage) == "not a question"
    assert rejection("Why?", passage) == "not a question"
    copied = "Was the lighthouse keeper was Ivo Sand and the lamp?"
    assert rejection(copied, passage) == "copies the passage"


def test_parse_duration() -> None:
    assert parse_duration("90") == 90 and parse_duration("90s") == 90
    assert parse_duration("10m") == 600 and parse_duration("1.5h") == 5400
    with pytest.raises(UsageError, match="invalid duration"):
        parse_duration("soon")


def test_tune_writes_questions_and_resumes(long_corpus: Path, store: str | None) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(long_corpus)])
    QuestionWriter.calls = 0
    report = tuning.tune(settings, count=4, dry_run=True, generator=QuestionWriter())
    assert report.source == "synthetic" and report.questions == 4
    assert report.generated == 4 and report.rejected == 0 and not report.written
    assert [r.setting for r in report.rows] == list(tuning.SETTINGS)
    assert all(0.0 <= r.ndcg <= 1.0 for r in report.rows)
    lines = Path(report.questions_file).read_text().splitlines()
    assert len(lines) == 4
    record = json.loads(lines[0])
    assert record["question"].startswith("What is known about") and record["rejected"] is None
    assert "retrieval" not in location_for(settings).read_manifest()  # dry run
    # a second tune reuses the questions; a larger one writes only the missing ones
    again = tuning.tune(settings, count=4, dry_run=True, generator=QuestionWriter())
    assert again.generated == 0 and QuestionWriter.calls == 4
    more = tuning.tune(settings, count=6, dry_run=True, generator=QuestionWriter())
    assert more.generated == 2 and more.questions == 6
    # a record cut short by a kill is dropped, its chunk asked again on a line of its own
    path = Path(report.questions_file)
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind("\n") + 20])
    after_kill = tuning.tune(settings, count=6, dry_run=True, generator=QuestionWriter())
    assert after_kill.generated == 1 and after_kill.questions == 6
    assert len(tuning.read_synthetic(path)) == 6
    # dropping the collection drops the questions written about it
    from ragcli import manage

    manage.drop(settings)
    assert not path.exists()


def test_tune_budget_stops_writing(long_corpus: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(long_corpus)])
    with pytest.raises(UsageError, match="usable question"):
        tuning.tune(settings, count=5, budget=0.0, generator=QuestionWriter())


def _favour(label: str):
    """Comparison.scores that give ``label`` the best score on every question."""

    def scores(self, setting):
        value = 0.9 if setting.label == label else 0.4
        return {q.qid: value for q in self.questions}

    return scores


def test_a_chosen_setting_changes_search(
    long_corpus: Path, monkeypatch: pytest.MonkeyPatch, store: str | None
) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(long_corpus)])
    before = pipeline.search(settings, "Who kept the lamp", top_k=3, explain=True)
    assert before.mode == "hybrid"
    monkeypatch.setattr(comparing.Comparison, "scores", _favour("lexical (BM25)"))
    report = tuning.tune(settings, count=4, generator=QuestionWriter())
    assert report.adopted and report.written
    assert report.best is not None and report.best.setting.mode == "lexical"
    assert report.best.against_default.mean == pytest.approx(0.5)
    entry = location_for(settings).read_manifest()["retrieval"]
    assert entry["mode"] == "lexical" and entry["questions"] == 4
    assert tuned(location_for(settings).read_manifest()) == ("lexical", Fusion())

    after = pipeline.search(settings, "Who kept the lamp", top_k=3, explain=True)
    lexical = pipeline.search(load_settings(mode="lexical"), "Who kept the lamp", top_k=3)
    assert after.mode == "lexical"
    assert [h.chunk_key for h in after.hits] == [h.chunk_key for h in lexical.hits]
    assert all(h.explain["dense_rank"] is None for h in after.hits)
    # --mode still wins over the tuned setting
    assert pipeline.search(load_settings(mode="hybrid"), "Who kept the lamp").mode == "hybrid"

    # when nothing beats the default any more, tune removes its earlier choice
    monkeypatch.setattr(comparing.Comparison, "scores", _favour(DEFAULT.label))
    kept = tuning.tune(settings, count=4, generator=QuestionWriter())
    assert not kept.adopted and kept.chosen is not None and kept.chosen.setting == DEFAULT
    assert "retrieval" not in location_for(settings).read_manifest()
    assert pipeline.search(settings, "Who kept the lamp").mode == "hybrid"


def test_tune_on_own_qrels_and_cli(long_corpus: Path, tmp_path: Path) -> None:
    settings = load_settings()
    pipeline.ingest(settings, [str(long_corpus)])
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "\n".join(
            json.dumps({"_id": str(i), "text": text})
            for i, text in enumerate(
                ["Who kept the lighthouse lamp?", "When was the harbour charter granted?",
                 "Who founded the kettle works?", "When is the lantern festival held?"]
            )
        )
    )  # fmt: skip
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(
        "query-id\tcorpus-id\tscore\n0\tcorran\t1\n1\tpellhaven\t1\n2\tkettle\t1\n3\ttidelight\t1\n"
    )
    done = runner.invoke(
        app, ["tune", "--queries", str(queries), "--qrels", str(qrels), "--dry-run", "--json"]
    )
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["source"] == "qrels" and data["questions"] == 4 and not data["written"]
    assert data["settings"][0]["label"] == DEFAULT.label
    assert data["settings"][0]["ndcg@10"] > 0.5  # the fake embedder and BM25 find these
    bad = runner.invoke(app, ["tune", "--queries", str(queries)])
    assert bad.exit_code == 2 and "go together" in bad.output


def test_interval_flags_noise() -> None:
    assert Interval(0.01, -0.01, 0.03).beyond_noise is False
    assert Interval(0.02, 0.005, 0.03).beyond_noise is True


class Judge(QuestionWriter):
    """A generator that says "yes" to a passage in proportion to the question words it holds."""

    def yes_probability(self, messages: list[dict[str, str]]) -> float | None:
        text = messages[-1]["content"]
        question, passage = text.split("\n\nPassage:\n", 1)
        asked = set(re.findall(r"\w+", question.lower())) - {"question", "who", "the", "what"}
        held = set(re.findall(r"\w+", passage.lower()))
        return len(asked & held) / max(len(asked), 1)


def test_llm_reranker_orders_by_the_generators_yes(
    long_corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ragcli.models import generation
    from ragcli.retrieval import LlmReranker

    monkeypatch.setattr(generation, "open_generator", lambda *a, **k: Judge())
    pipeline.ingest(load_settings(), [str(long_corpus)])
    result = pipeline.search(
        load_settings(rerank="llm"), "Who kept the Corran lighthouse lamp", top_k=2, explain=True
    )
    assert result.hits[0].source.endswith("corran.txt")
    assert result.hits[0].explain["rerank_score"] == pytest.approx(result.hits[0].score)
    assert result.hits[0].score >= result.hits[1].score
    reranker = LlmReranker(Judge)
    assert reranker.depth(4) == 10 and reranker.depth(2) == 6 and reranker.depth(20) == 20
    assert reranker.scores("Who kept it?", ["nothing here"]) == [0.0]

    class Unsure(QuestionWriter):
        def yes_probability(self, messages: list[dict[str, str]]) -> float | None:
            return None  # neither "yes" nor "no" among the likely first tokens

    assert LlmReranker(Unsure).scores("Who kept it?", ["a passage"]) == [0.5]

    class Mute(QuestionWriter):
        pass  # no yes_probability: this backend cannot score a reply

    with pytest.raises(ModelError, match="cannot score a reply"):
        LlmReranker(Mute).model  # noqa: B018
