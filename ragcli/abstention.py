"""Whether ``ask`` gives its answer: a confidence fitted on judged answers, and a threshold.

An answer that passed its own checks (the model did not decline, a sentence says something its
passages back) may still be wrong: small models answer a question the passages do not answer
from the sentences nearest to it. ``ask`` therefore estimates the probability that the answer is
right from what it knows once it has answered:

- ``evidence``: the best cosine similarity between the question and a retrieved passage;
- ``verified``: the generator's probability of "yes" when asked whether the passages state the
  answer to the question (one scored token, the prompt cache holding the passages).

A logistic model of the two, fitted by ``benchmarks/abstention.py`` on judged answers from
several collections, gives ``confidence``; below the threshold the answer is withheld (reason
"low confidence", exit 7). A question is withheld before anything is generated ("weak
retrieval") when its evidence is under ``EVIDENCE_FLOOR``, where no judged answer was right and
the model has no data, or cannot reach the threshold even with a verification of 1. A
generator that cannot score a reply gets the model fitted on the evidence alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Calibration:
    """P(the answer is right) = sigmoid(intercept + evidence x e + verified x v)."""

    intercept: float
    evidence: float
    verified: float = 0.0  # 0: the verification is not used

    def confidence(self, evidence: float, verified: float | None) -> float:
        z = self.intercept + self.evidence * evidence
        if self.verified:
            z += self.verified * (verified if verified is not None else 0.0)
        return 1.0 / (1.0 + math.exp(-z))

    def best_case(self, evidence: float) -> float:
        """The confidence the verification could bring at most: the gate before generating."""
        return self.confidence(evidence, 1.0 if self.verified > 0 else 0.0)


# Fitted by ``python benchmarks/abstention.py`` on the answers of ``eval --answers`` to the
# 400 squad2-tune questions and the 29 sample questions, each set weighing the same (README,
# "Measuring answers").
WITH_VERIFICATION = Calibration(intercept=-3.529, evidence=2.196, verified=3.898)
EVIDENCE_ONLY = Calibration(intercept=-1.208, evidence=3.117)
ABSTAIN_THRESHOLD = 0.50
# The lowest evidence of a right answer among those answers was 0.277 (SQuAD); an off-topic
# question scores about 0.16.
EVIDENCE_FLOOR = 0.25


def withheld_before(
    evidence: float,
    threshold: float,
    min_score: float | None = None,
    models: tuple[Calibration, Calibration] = (WITH_VERIFICATION, EVIDENCE_ONLY),
) -> bool:
    """Whether to withhold before generating: the evidence is under ``min_score`` (when one is
    set) or under ``EVIDENCE_FLOOR``, or no verification could lift the confidence to
    ``threshold`` (a threshold of 0 withholds nothing on confidence or floor). ``models``:
    the calibrations with and without verification (others than the shipped ones are tried
    by ``benchmarks/abstention.py``)."""
    if min_score is not None and evidence < min_score:
        return True
    if threshold <= 0:
        return False
    if evidence < EVIDENCE_FLOOR:
        return True
    verifying, alone = models
    return max(verifying.best_case(evidence), alone.confidence(evidence, None)) < threshold


def confidence(
    evidence: float,
    verified: float | None,
    models: tuple[Calibration, Calibration] = (WITH_VERIFICATION, EVIDENCE_ONLY),
) -> float:
    """The probability that an answer which passed its checks is right."""
    verifying, alone = models
    return (verifying if verified is not None else alone).confidence(evidence, verified)


def withheld_after(
    confidence: float | None,
    verified: float | None,
    threshold: float,
    min_verified: float | None = None,
) -> str | None:
    """Why a generated answer that passed its own checks is withheld, or None to give it."""
    if min_verified is not None and verified is not None and verified < min_verified:
        return "not verified"
    if confidence is not None and confidence < threshold:
        return "low confidence"
    return None
