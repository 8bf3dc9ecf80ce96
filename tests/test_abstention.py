"""The abstention decision: confidence from evidence and verification, and the two gates."""

from __future__ import annotations

import math

import pytest

from ragcli import abstention
from ragcli.abstention import Calibration, confidence, withheld_after, withheld_before


def test_confidence_is_the_logistic_model_of_evidence_and_verification() -> None:
    model = Calibration(intercept=-3.0, evidence=2.0, verified=4.0)
    assert model.confidence(0.5, 0.5) == pytest.approx(1 / (1 + math.exp(-(-3 + 1 + 2))))
    assert model.confidence(0.5, 0.5) == pytest.approx(0.5)
    assert model.best_case(0.5) == pytest.approx(1 / (1 + math.exp(-2.0)))  # verified = 1
    alone = Calibration(intercept=-1.0, evidence=4.0)
    assert alone.confidence(0.25, 0.9) == pytest.approx(0.5)  # its verification weighs 0
    assert alone.best_case(0.25) == pytest.approx(0.5)


def test_the_shipped_models_rise_with_evidence_and_verification() -> None:
    assert confidence(0.7, 0.9) > confidence(0.4, 0.9) > confidence(0.4, 0.3)
    # without a verification, the evidence-only model
    assert confidence(0.6, None) == abstention.EVIDENCE_ONLY.confidence(0.6, None)
    assert 0.0 < abstention.ABSTAIN_THRESHOLD < 1.0


def test_the_gate_before_generating() -> None:
    assert not withheld_before(0.0, threshold=0.0)  # 0: never on confidence
    assert withheld_before(0.99, threshold=1.0)  # no confidence reaches 1
    assert withheld_before(0.3, threshold=0.0, min_score=0.35)  # an explicit --min-score
    assert not withheld_before(0.4, threshold=0.0, min_score=0.35)
    # under the floor, where no judged answer was right: not generated
    assert withheld_before(abstention.EVIDENCE_FLOOR - 0.01, threshold=0.1)
    assert not withheld_before(abstention.EVIDENCE_FLOOR - 0.01, threshold=0.0)
    # above it, withheld only when even a verification of 1 could not reach the threshold
    for evidence in (0.3, 0.5, 0.7, 0.9):
        best = max(
            abstention.WITH_VERIFICATION.best_case(evidence),
            abstention.EVIDENCE_ONLY.confidence(evidence, None),
        )
        assert withheld_before(evidence, 0.5) == (best < 0.5)


def test_the_decision_after_generating() -> None:
    assert withheld_after(0.8, 0.9, threshold=0.5) is None
    assert withheld_after(0.4, 0.9, threshold=0.5) == "low confidence"
    assert withheld_after(0.8, 0.3, threshold=0.5, min_verified=0.5) == "not verified"
    assert withheld_after(0.8, None, threshold=0.5, min_verified=0.5) is None  # cannot verify
    assert withheld_after(None, None, threshold=0.5) is None
    assert withheld_after(0.1, 0.1, threshold=0.0) is None
