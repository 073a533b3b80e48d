"""The promotion gate: does a candidate model beat the current champion and the static-frame baseline?

Both comparisons read flat evaluation summaries ("<set>.<system>.<metric>", see evaluation.summary)
measured on the same test clips; `split` names the set the gate decides on: a split ("test_unseen") or one
corpus of it ("test_unseen/grid"). A rule names a metric, the better direction and optionally a tolerance:
without one the candidate must be strictly better; with one it must not be worse by more than it (0: at
least as good). The still photo is a bar of its own: a champion reaches its SSIM and PSNR.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DEFAULT_RULES = {
    "split": "test_unseen",  # the paper evaluates on unseen speakers
    "against_champion": [
        {"metric": "lmd_mouth", "better": "lower"},
        {"metric": "sync_corr", "better": "higher"},
        {"metric": "ssim", "better": "higher", "tolerance": 0.02},
    ],
    "against_baseline": [
        {"metric": "lmd_mouth", "better": "lower"},
        {"metric": "ssim", "better": "higher", "tolerance": 0.0},
        {"metric": "psnr", "better": "higher", "tolerance": 0.0},
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
    tolerance = rule.get("tolerance")
    sign = 1.0 if better == "higher" else -1.0
    margin = sign * (ours - theirs)  # > 0: the candidate is better
    if tolerance is None:
        passed, requirement = margin > 0, f"{better} than"
    else:
        passed, requirement = margin >= -float(tolerance), f"within {tolerance:g} of"
    verdict = "meets" if passed else "fails"
    detail = f"{metric} on {split}: candidate {ours:.4g} {verdict} '{requirement} {other}' ({theirs:.4g})"
    return Check(name, bool(passed), detail)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))
