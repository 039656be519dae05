"""Bounds in three tiers: red lines no one overrides, the organisation's policy, personalisation inside both."""

from valuemulch.bounds._acts import Act, option_stance, read_acts
from valuemulch.bounds._apply import BoundedAnswer, Reason, apply_bounds, audit, population_answers
from valuemulch.bounds._catalogue import (
    RedLine,
    catalogue,
    out_of_scope,
    redline_ids,
    semantic_settings,
    training_statements,
)
from valuemulch.bounds._detect import Detector, Flag, Score, default_detector, rule_redlines, tag_redlines
from valuemulch.bounds._guard import Guard, Verdict
from valuemulch.bounds._measure import DetectorReport, measure, probe_set, survey_set
from valuemulch.bounds._org_policy import OrgPolicy, Topic, load_org_policy
from valuemulch.bounds._probes import ADVERSARIAL_COMMUNITY, Probe, adversarial_norms, probes, reviewed_crossings
from valuemulch.bounds._text import canonical
from valuemulch.bounds._tier1 import GuardJudge, Tier1, judge

__all__ = [
    "ADVERSARIAL_COMMUNITY",
    "Act",
    "BoundedAnswer",
    "Detector",
    "DetectorReport",
    "Flag",
    "Guard",
    "GuardJudge",
    "OrgPolicy",
    "Probe",
    "Reason",
    "RedLine",
    "Score",
    "Tier1",
    "Topic",
    "Verdict",
    "adversarial_norms",
    "apply_bounds",
    "audit",
    "canonical",
    "catalogue",
    "default_detector",
    "judge",
    "load_org_policy",
    "measure",
    "option_stance",
    "out_of_scope",
    "population_answers",
    "probe_set",
    "probes",
    "read_acts",
    "redline_ids",
    "reviewed_crossings",
    "rule_redlines",
    "semantic_settings",
    "survey_set",
    "tag_redlines",
    "training_statements",
]
