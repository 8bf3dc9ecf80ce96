"""Generate the PDF document of the ragcli sample corpus.

Run from the repository root (dev-time only; needs ``fpdf2``)::

    python scripts/make_sample_pdf.py

This writes ``sample_corpus/harbour_trust_report_2023.pdf``, a four-page
annual report with one section per page. The output is deterministic (fixed
creation date and metadata), so re-running the script should not produce a
diff; the generated PDF is committed so that ragcli itself never needs
fpdf2.

About the sample corpus
-----------------------
``sample_corpus/`` is a small, entirely fictional corpus used for demos,
smoke tests and answer-quality evaluation. It describes Pellhaven, the only
town on the invented Marrowick Island, and its institutions, so that a
language model cannot answer questions about it from its training data:

* ``history.txt`` - plain-text history of the town (CRLF line endings and a
  non-ASCII Latin-1 character, on purpose).
* ``observatory.md`` - Gullstone Observatory (Markdown).
* ``ferry_cooperative.md`` - the ferry and tram cooperative handbook
  (Markdown, with a numbered and a bulleted list).
* ``guides/tidelight_festival.rst`` - the lantern festival
  (reStructuredText, with a ``.. note::`` directive).
* ``guides/netlace.html`` - the island lace craft (HTML with <style> and
  <script> blocks that must not be indexed, character entities and a
  table).
* ``guides/tidelog_manual.md`` - manual of the tide-gauge logging software
  (Markdown with code blocks and a pipe table).
* ``harbour_trust_report_2023.pdf`` - this script's output (PDF, 4 pages).
* ``questions.jsonl`` - evaluation questions: ``id``, ``question``,
  ``answer`` (short string a correct answer must contain,
  case-insensitively), ``source`` (path relative to ``sample_corpus/``),
  ``page`` (1-based, PDF only), ``lines`` ([first, last], 1-based, text
  formats only) and ``answerable``; unanswerable questions have null
  answer/source/page/lines.

Note that ``questions.jsonl`` lives inside the corpus folder; ingest should
skip it (it is not one of the supported document formats).
"""

from __future__ import annotations

import datetime
from pathlib import Path

from fpdf import FPDF

OUTPUT = Path(__file__).resolve().parent.parent / "sample_corpus" / "harbour_trust_report_2023.pdf"

TITLE = "Marrowick Harbour Trust - Annual Report 2023"
AUTHOR = "Marrowick Harbour Trust"

# One (heading, paragraphs) section per page.
SECTIONS: list[tuple[str, list[str]]] = [
    (
        "1. Foreword from the Chair",
        [
            "The Marrowick Harbour Trust is the independent body that owns and "
            "manages the harbour of Pellhaven on behalf of the islanders. It "
            "maintains the quays, the breakwaters, the slipways and the "
            "navigation marks, and it sets the dues paid by every vessel that "
            "uses the harbour.",
            "This report is introduced by Marisol Devenack, who has chaired the "
            "Harbour Trust since 2019. In her foreword she thanks the harbour "
            "staff and the volunteer boatmen for a year in which the harbour "
            "recorded 1,318 vessel visits, the highest figure since the Trust "
            "began keeping records. She also pays tribute to the crew of the "
            "pilot launch, who answered eleven call-outs during the winter "
            "storms without a single injury.",
            "The Chair notes that the year was dominated by the works on the "
            "north breakwater, described on page three, and by the long "
            "discussion with islanders about a new pontoon for visiting boats, "
            "described on the final page of this report.",
        ],
    ),
    (
        "2. Finances and Harbour Dues",
        [
            "Income from harbour dues rose for the fourth year running, driven "
            "mainly by the growth in visiting yachts during the summer months. "
            "Fishing boats registered on Marrowick Island continue to pay a "
            "reduced annual due, which the Trust has agreed to freeze until "
            "at least 2026.",
            "The overnight berthing fee for visiting yachts was held at "
            "19 pounds per night for the third year in a row. The Trustees "
            "considered an increase but decided that a stable fee was more "
            "important for encouraging return visits, and that the rising "
            "number of visitors would cover higher costs.",
            "The largest single item of expenditure was the breakwater "
            "contract. The Trust's reserve fund, built up over many years for "
            "exactly this purpose, covered the whole cost, so no loan was "
            "needed. The reserve will be rebuilt gradually from surplus income "
            "over the coming decade. The full audited accounts are available "
            "from the harbour office on request.",
        ],
    ),
    (
        "3. Works on the North Breakwater",
        [
            "The north breakwater protects the inner harbour from the winter "
            "swell that runs in past the Hook. Surveys in 2021 showed that its "
            "outer end had been undermined by scour, and that in a severe "
            "storm waves were overtopping the wall and damaging boats moored "
            "behind it.",
            "The breakwater was extended by 140 metres between March and "
            "August 2023. The work was carried out by the contractor Hallow "
            "and Brisk Marine, using granite armour stone brought to the "
            "island by barge. The new section ends in a rounded head with a "
            "green navigation light, which was switched on for the first time "
            "on the evening of 30 August.",
            "During the works the ferry berth remained open throughout, and "
            "the contractor's barge movements were timed to avoid the "
            "Saltwren's sailings. Islanders have already reported that the "
            "inner harbour is noticeably calmer during easterly gales.",
        ],
    ),
    (
        "4. Outlook for 2024 and Beyond",
        [
            "The most important project for the coming years is a new floating "
            "pontoon for visiting yachts, to be moored in the shelter of the "
            "extended north breakwater. It will provide berths alongside for "
            "boats that currently have to lie at anchor or raft up against "
            "the fishing fleet.",
            "After a vote among harbour users, the new visitor pontoon will be "
            "named Gannet Row, after the line of gannets that can often be "
            "seen fishing just outside the harbour mouth. It is expected to "
            "open in the spring of 2025, subject to the delivery of the "
            "pontoon sections from the mainland.",
            "The Trustees will also begin a review of the slipway on Shore "
            "Row, which is increasingly used by kayakers and swimmers as well "
            "as by boats. Islanders are invited to send their views to the "
            "harbour office before the end of June 2024.",
        ],
    ),
]


def build() -> FPDF:
    pdf = FPDF(format="A4")
    pdf.set_title(TITLE)
    pdf.set_author(AUTHOR)
    pdf.set_subject("Annual report, fictional sample document for ragcli")
    pdf.set_creator("scripts/make_sample_pdf.py")
    # Fixed date so that the output is byte-for-byte reproducible.
    pdf.set_creation_date(datetime.datetime(2024, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc))
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(left=20, top=20, right=20)

    for heading, paragraphs in SECTIONS:
        pdf.add_page()
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 6, TITLE, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("Helvetica", style="B", size=16)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    return pdf


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    build().output(str(OUTPUT))
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
