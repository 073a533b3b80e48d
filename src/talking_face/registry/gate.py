"""The promotion gate: does a candidate model talk, and does it beat the current champion and the still photo?

Every comparison reads flat evaluation summaries ("<set>.<system>.<metric>", see evaluation.summary)
measured on the same test clips; `split` names the set the gate decides on: a split ("test_unseen") or one
corpus of it ("test_unseen/grid"). Four kinds of rule:
- against_baseline / against_champion: a metric, the better direction and optionally a `tolerance`
  (absolute) or `relative_tolerance` (a fraction of the other's value): without one the candidate must be
  strictly better; with one it must not be worse by more than it. The still photo is the bar for image
  fidelity: a mouth that moves may cost a little SSIM, so that tolerance is explicit.
- against_real: the candidate reaches at least `fraction` of the real video's own value on the same clips
  (the lip-sync expert's confidence, phoneme sync): the real video is the bar for talking.
- floors: the candidate's value lies in [`min`, `max`] (motion agreement with the real lips: a still mouth
  scores 0).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DEFAULT_RULES = {
    "split": "test_unseen",  # the paper evaluates on unseen speakers
    "against_champion": [
        {"metric": "expert_confidence", "better": "higher"},
        {"metric": "ssim", "better": "higher", "tolerance": 0.02},
    ],
    "against_baseline": [
        {"metric": "ssim", "better": "higher", "tolerance": 0.005},
        {"metric": "psnr", "better": "higher", "tolerance": 0.5},
        {"metric": "lmd_mouth", "better": "lower", "relative_tolerance": 0.05},
    ],
    "against_real": [
        {"metric": "expert_confidence", "fraction": 0.5},
        {"metric": "phone_sync_corr", "fraction": 0.5},
    ],
    "floors": [
        {"metric": "motion_corr", "min": 0.2},
        {"metric": "motion_amplitude", "min": 0.3},
    ],
}


@dataclass(frozen=True)
class Check:
    name: str  # e.g. "lmd_mouth vs champion"
    passed: bool
    detail: str  # the numbers behind the verdict


@dataclass(frozen=True)
class GateResult:
    passed: bool
    checks: tuple[Check, ...]
    split: str = DEFAULT_RULES["split"]  # the evaluation set the checks read

    @property
    def reason(self) -> str:
        """Every check with its numbers, the failed ones first."""
        ordered = sorted(self.checks, key=lambda check: check.passed)
        return "; ".join(check.detail for check in ordered) or "no checks configured"

    def to_dicts(self) -> list[dict]:
        return [asdict(check) for check in self.checks]


def gate(candidate: dict[str, float], champion: dict[str, float] | None, rules: dict | None = None) -> GateResult:
    """Checks `candidate` against the static baseline of its own summary and, when there is a champion,
    against `champion`'s summary of the same clips. With no champion (the first model) only the baseline
    rules apply."""
    rules = {**DEFAULT_RULES, **(rules or {})}
    split = rules["split"]
    checks = []
    for rule in rules["against_baseline"]:
        key = rule["metric"]
        baseline = candidate.get(f"{split}.baseline.{key}")
        checks.append(_compare(rule, candidate.get(f"{split}.model.{key}"), baseline, "baseline", split))
    for rule in rules.get("against_real") or []:
        key = rule["metric"]
        checks.append(_fraction(rule, candidate.get(f"{split}.model.{key}"), candidate.get(f"{split}.real.{key}"), split))
    for rule in rules.get("floors") or []:
        checks.append(_floor(rule, candidate.get(f"{split}.model.{rule['metric']}"), split))
    if champion is not None:
        for rule in rules["against_champion"]:
            key = rule["metric"]
            theirs = champion.get(f"{split}.model.{key}")
            checks.append(_compare(rule, candidate.get(f"{split}.model.{key}"), theirs, "champion", split))
    return GateResult(passed=all(check.passed for check in checks), checks=tuple(checks), split=split)


def _compare(rule: dict, ours: float | None, theirs: float | None, other: str, split: str) -> Check:
    metric, better = rule["metric"], rule["better"]
    if better not in ("lower", "higher"):
        raise ValueError(f"gate rule for {metric!r}: 'better' must be 'lower' or 'higher', got {better!r}")
    name = f"{metric} vs {other}"
    if not _finite(ours) or not _finite(theirs):
        missing = "candidate" if not _finite(ours) else other
        return Check(name, False, f"{metric} on {split}: no value for the {missing}")
    tolerance, relative = rule.get("tolerance"), rule.get("relative_tolerance")
    sign = 1.0 if better == "higher" else -1.0
    margin = sign * (ours - theirs)  # > 0: the candidate is better
    if relative is not None:
        passed, requirement = margin >= -float(relative) * abs(theirs), f"within {float(relative):.0%} of"
    elif tolerance is None:
        passed, requirement = margin > 0, f"{better} than"
    else:
        passed, requirement = margin >= -float(tolerance), f"within {tolerance:g} of"
    verdict = "meets" if passed else "fails"
    detail = f"{metric} on {split}: candidate {ours:.4g} {verdict} '{requirement} {other}' ({theirs:.4g})"
    return Check(name, bool(passed), detail)


def _fraction(rule: dict, ours: float | None, real: float | None, split: str) -> Check:
    """At least `fraction` of the real video's value (a real value at or below 0 measures nothing: fails)."""
    metric, fraction = rule["metric"], float(rule["fraction"])
    name = f"{metric} vs real video"
    if not _finite(ours) or not _finite(real):
        return Check(name, False, f"{metric} on {split}: no value for the {'candidate' if not _finite(ours) else 'real video'}")
    passed = real > 0 and ours >= fraction * real
    verdict = "meets" if passed else "fails"
    detail = f"{metric} on {split}: candidate {ours:.4g} {verdict} 'at least {fraction:g}x the real video's' ({real:.4g})"
    return Check(name, bool(passed), detail)


def _floor(rule: dict, ours: float | None, split: str) -> Check:
    metric = rule["metric"]
    low, high = float(rule.get("min", -math.inf)), float(rule.get("max", math.inf))
    name = f"{metric} range"
    if not _finite(ours):
        return Check(name, False, f"{metric} on {split}: no value for the candidate")
    passed = low <= ours <= high
    bounds = " and ".join(part for part in (f"at least {low:g}" * math.isfinite(low), f"at most {high:g}" * math.isfinite(high)) if part)
    detail = f"{metric} on {split}: candidate {ours:.4g} {'meets' if passed else 'fails'} '{bounds}'"
    return Check(name, bool(passed), detail)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))
