"""Registration and the promotion gate against a real MLflow registry (a temporary SQLite store) with real
registered pyfunc versions of small untrained bundles. Evaluation results are passed in as summaries, the
way the `evaluate` pipeline hands them over, except where the champion must be re-evaluated for real."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from talking_face.evaluation.run import evaluate_model, select_clips
from talking_face.evaluation.summary import summarise
from talking_face.registry import DEFAULT_RULES, bundle_hash, gate, promote_version, register_and_gate
from talking_face.registry import store
from talking_face.registry.card import MAX_CHARS, model_card, training_data
from talking_face.conditioning.bundle import TalkingFaceModel
from tests.tiny_models import make_feature_clips, tiny_bundle

EVALUATE = {"splits": ["test_unseen"]}
# The registry's mechanics under rules on the mouth's figures alone (the talking rules: tests/test_talking.py).
LIP_RULES = {
    **DEFAULT_RULES,
    "against_champion": [{"metric": "lmd_mouth", "better": "lower"}, {"metric": "sync_corr", "better": "higher"},
                         {"metric": "ssim", "better": "higher", "tolerance": 0.02}],
    "against_baseline": [{"metric": "lmd_mouth", "better": "lower"}, {"metric": "ssim", "better": "higher", "tolerance": 0.0},
                         {"metric": "psnr", "better": "higher", "tolerance": 0.0}],
    "against_real": [],
    "floors": [],
}  # fmt: skip
FAKE_CLIPS = [{"clip_id": "spk09_clip01", "split": "test_unseen", "content_hash": "c0ffee", "params_hash": "p1"}]


def summary(lmd: float, sync: float, ssim: float, baseline_lmd: float = 6.0) -> dict[str, float]:
    """An evaluation summary as `evaluation.summary.summarise` writes it, with chosen values."""
    return {
        "test_unseen.n_clips": 4.0,
        "test_unseen.model.lmd_mouth": lmd,
        "test_unseen.model.sync_corr": sync,
        "test_unseen.model.ssim": ssim,
        "test_unseen.baseline.lmd_mouth": baseline_lmd,
        "test_unseen.baseline.sync_corr": 0.0,
        "test_unseen.baseline.ssim": 0.75,
        "test_unseen.model.psnr": 25.0,
        "test_unseen.baseline.psnr": 24.0,
    }


@pytest.fixture(scope="module")
def tracking(tmp_path_factory):
    folder = tmp_path_factory.mktemp("registry")
    previous = os.getcwd()
    os.chdir(folder)  # a SQLite store keeps artifacts under ./mlruns
    try:
        yield f"sqlite:///{folder / 'mlflow.db'}"
    finally:
        os.chdir(previous)


@pytest.fixture
def name(request) -> str:
    return f"tf-{request.node.name.replace('_', '-')[:60]}"


def register(tracking, name, state, metrics, clips=FAKE_CLIPS, data="data-1"):
    return register_and_gate(state, metrics, clips, data, {"model_name": name, "gate": LIP_RULES}, EVALUATE, tracking_uri=tracking)


def aliases(tracking, name) -> dict[str, int]:
    return dict(MlflowClient(tracking, tracking).get_registered_model(name).aliases)


def tags(tracking, name, version) -> dict[str, str]:
    return dict(MlflowClient(tracking, tracking).get_model_version(name, str(version)).tags)


def snapshot(tracking, name) -> tuple:
    client = MlflowClient(tracking, tracking)
    versions = {v.version: dict(v.tags) for v in client.search_model_versions(f"name='{name}'")}
    return versions, aliases(tracking, name)


def test_gate_rules_without_a_registry():
    champion = summary(lmd=5.0, sync=0.30, ssim=0.80)
    assert gate(summary(4.0, 0.35, 0.79), champion, LIP_RULES).passed  # SSIM 0.01 lower: inside the 0.02 tolerance
    assert not gate(summary(4.0, 0.35, 0.77), champion, LIP_RULES).passed  # SSIM 0.03 lower
    assert not gate(summary(4.0, 0.30, 0.80), champion, LIP_RULES).passed  # sync not strictly higher
    worse_than_baseline = gate(summary(7.0, 0.9, 0.9), None, LIP_RULES)
    assert not worse_than_baseline.passed and "baseline" in worse_than_baseline.reason
    missing = gate({"test_unseen.model.lmd_mouth": 1.0}, None, LIP_RULES)
    assert not missing.passed and "no value" in missing.reason
    seen_only = gate(summary(4.0, 0.35, 0.79), champion, {**LIP_RULES, "split": "test_seen"})
    assert not seen_only.passed  # nothing was measured on test_seen


def test_gate_holds_the_still_photo_as_the_bar():
    """A champion reaches the static frame's SSIM and PSNR on the declared set, whatever its lip figures."""
    good = summary(lmd=4.0, sync=0.5, ssim=0.80)
    assert gate(good, None, LIP_RULES).passed
    blurry = gate({**good, "test_unseen.model.ssim": 0.74}, None, LIP_RULES)
    assert not blurry.passed and blurry.reason.startswith("ssim on test_unseen: candidate 0.74 fails")
    assert "lmd_mouth on test_unseen" in blurry.reason and "psnr on test_unseen" in blurry.reason  # every check
    assert not gate({**good, "test_unseen.model.psnr": 23.9}, None, LIP_RULES).passed
    assert gate({**good, "test_unseen.model.ssim": 0.75}, None, LIP_RULES).passed  # tolerance 0: equal reaches the bar
    lenient = {**LIP_RULES, "against_baseline": [{"metric": "ssim", "better": "higher", "tolerance": 0.02}]}
    assert gate({**good, "test_unseen.model.ssim": 0.74}, None, lenient).passed
    # The declared set may be one corpus of a split; the other corpora do not decide.
    per_corpus = {key.replace("test_unseen.", "test_unseen/grid."): value for key, value in good.items()}
    worse_elsewhere = {**per_corpus, **{key.replace("test_unseen.", "test_unseen/voxceleb2."): value
                                        for key, value in summary(lmd=9.0, sync=0.0, ssim=0.5).items()}}
    decided = gate(worse_elsewhere, None, {**LIP_RULES, "split": "test_unseen/grid"})
    assert decided.passed and "on test_unseen/grid" in decided.reason and "voxceleb2" not in decided.reason


def test_fingerprints_follow_content_not_files():
    state = tiny_bundle(1)
    assert bundle_hash(TalkingFaceModel.from_state(state).state()) == bundle_hash(state)
    assert bundle_hash(tiny_bundle(2)) != bundle_hash(state)


def test_model_card_lists_corpora_and_keeps_whole_table_sections_within_mlflows_limit():
    manifest = pd.DataFrame({
        "clip_id": [f"c{index}" for index in range(6)], "speaker": ["s1", "s1", "s2", "a7", "a8", "s3"],
        "corpus": ["grid", "grid", "grid", "crema-d", "crema-d", "grid"], "layout": "generic",
        "split": ["train", "train", "train", "train", "test_unseen", "test_unseen"],
    })
    data = training_data(manifest)
    assert data.corpora == {"crema-d": 1, "grid": 3} and data.speakers == ["a7", "s1", "s2"]
    section = "## Unseen speakers ({corpus})\n\n| Method | SSIM |\n|---|---:|\n| MAN (this model) | 0.5 |\n" + "x" * 900
    table = "# MAN on the test clips\n\n" + "\n".join(section.format(corpus=f"corpus {n}") for n in range(8))
    card = model_card("m", data, "dvc:abc", table, ["git checkout 123", "make train"], ["no WER"], "123", 0.5)
    assert len(card) <= MAX_CHARS and "- corpora: crema-d (1 clip), grid (3 clips)" in card
    assert "- mouth strength at generation: 0.5 (chosen after training" in card
    assert "#### Unseen speakers (corpus 0)" in card and "(corpus 7)" not in card and "more in the run's" in card
    assert card.index("## Reproduce") < card.index("git checkout 123") < card.index("## Limits")
    assert "- trained on 3 crema-d/grid speakers (4 clips)" in card and "- no WER" in card


def test_first_model_is_promoted_only_if_it_beats_the_baseline(tracking, name):
    first = register(tracking, name, tiny_bundle(1), summary(lmd=7.0, sync=0.2, ssim=0.8))
    assert first.registered and first.decision == "rejected" and not first.promoted
    assert aliases(tracking, name) == {"challenger": 1}
    recorded = tags(tracking, name, 1)
    assert recorded["promotion.decision"] == "rejected" and "baseline" in recorded["promotion.reason"]
    assert float(recorded["metrics.test_unseen.model.lmd_mouth"]) == 7.0

    second = register(tracking, name, tiny_bundle(2), summary(lmd=5.0, sync=0.2, ssim=0.8))
    assert second.decision == "promoted" and second.reason.startswith("first model, beats the baseline on test_unseen")
    assert second.decided_on == "test_unseen"
    assert aliases(tracking, name) == {"challenger": 2, "champion": 2}


def test_gate_both_ways_against_the_champion(tracking, name):
    register(tracking, name, tiny_bundle(1), summary(lmd=5.0, sync=0.30, ssim=0.80))
    worse = register(tracking, name, tiny_bundle(2), summary(lmd=5.5, sync=0.40, ssim=0.82))
    assert worse.decision == "rejected" and worse.champion_after == 1
    assert aliases(tracking, name) == {"champion": 1, "challenger": 2}
    reason = tags(tracking, name, 2)["promotion.reason"]
    assert "champion stays version 1" in reason
    # Every check is named, the failed one first: LMD fails, sync and SSIM meet the champion's.
    assert reason.index("lmd_mouth on test_unseen: candidate 5.5 fails") < reason.index("sync_corr on test_unseen: candidate 0.4 meets")

    better = register(tracking, name, tiny_bundle(3), summary(lmd=4.0, sync=0.35, ssim=0.79))
    assert better.decision == "promoted" and better.champion_before == 1 and better.champion_after == 3
    assert aliases(tracking, name) == {"champion": 3, "challenger": 3}
    assert tags(tracking, name, 3)["promotion.compared_with"] == "version 1"


def test_registering_twice_changes_nothing(tracking, name):
    champion_state, challenger_state = tiny_bundle(1), tiny_bundle(2)
    register(tracking, name, champion_state, summary(lmd=5.0, sync=0.3, ssim=0.8))
    register(tracking, name, challenger_state, summary(lmd=5.5, sync=0.3, ssim=0.8))
    before = snapshot(tracking, name)
    again = register(tracking, name, TalkingFaceModel.from_state(challenger_state).state(), summary(lmd=5.5, sync=0.3, ssim=0.8))
    assert not again.registered and again.version == 2 and again.decision == "rejected"
    assert snapshot(tracking, name) == before
    # Re-running the champion's registration finds it already champion; challenger moves back to it, as
    # after its own first run, and nothing else changes.
    champion_again = register(tracking, name, champion_state, summary(lmd=5.0, sync=0.3, ssim=0.8))
    assert champion_again.decision == "already champion" and not champion_again.registered
    versions, now = snapshot(tracking, name)
    assert versions == before[0] and now == {"champion": 1, "challenger": 1}


def test_manual_promotion_with_and_without_force(tracking, name):
    register(tracking, name, tiny_bundle(1), summary(lmd=5.0, sync=0.3, ssim=0.8))
    register(tracking, name, tiny_bundle(2), summary(lmd=5.5, sync=0.3, ssim=0.8))
    refused = promote_version(name, 2, tracking_uri=tracking, rules=LIP_RULES)
    assert refused.decision == "rejected" and aliases(tracking, name)["champion"] == 1

    client = MlflowClient(tracking, tracking)
    client.set_model_version_tag(name, "2", store.METRICS_EVALUATION_VERSION, "other-clips")
    elsewhere = promote_version(name, 2, tracking_uri=tracking, rules=LIP_RULES)
    assert elsewhere.decision == "rejected" and "different test clips" in elsewhere.reason

    forced = promote_version(name, "2", force=True, tracking_uri=tracking, rules=LIP_RULES)
    assert forced.decision == "promoted by force" and forced.promoted
    assert aliases(tracking, name)["champion"] == 2
    assert tags(tracking, name, 2)["promotion.decision"] == "promoted by force"
    with pytest.raises(ValueError, match="no such registered model version"):
        promote_version(name, 99, tracking_uri=tracking)


def test_champion_is_re_evaluated_from_its_registered_bundle_on_new_data(tracking, name, tmp_path):
    features = make_feature_clips(tmp_path / "clips", [("spk00_clip01", "test_unseen")])
    files = {clip_id: str(tmp_path / "clips" / f"{clip_id}.npz") for clip_id in features["clip_id"]}
    clips = select_clips(features, files, ["test_unseen"])
    champion_state = tiny_bundle(1)
    register(tracking, name, champion_state, summary(lmd=5.0, sync=0.3, ssim=0.8), clips, data="data-1")

    candidate = register(tracking, name, tiny_bundle(2), summary(lmd=0.5, sync=0.99, ssim=0.99, baseline_lmd=9.0), clips, data="data-2")
    assert candidate.champion_reevaluated and candidate.decision == "promoted"
    expected = summarise(evaluate_model(TalkingFaceModel.from_state(champion_state), clips, EVALUATE).per_clip, ["test_unseen"])
    stored = tags(tracking, name, 1)
    assert stored[store.METRICS_DATA_VERSION] == "data-2" and stored[store.DATA_VERSION] == "data-1"
    for key, value in expected.items():
        assert float(stored[f"metrics.{key}"]) == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert float(stored["metrics.test_unseen.model.lmd_mouth"]) != 5.0
    with pytest.raises(MlflowException):
        MlflowClient(tracking, tracking).get_model_version(name, "3")  # re-evaluating registers nothing

    # By hand, a version whose metrics come from other clips is re-evaluated when the clips are given.
    MlflowClient(tracking, tracking).set_model_version_tag(name, "1", store.METRICS_EVALUATION_VERSION, "older")
    manual = promote_version(name, 1, tracking_uri=tracking, clips=clips, evaluate_params=EVALUATE, rules=LIP_RULES)
    assert manual.champion_reevaluated and manual.decision == "rejected" and aliases(tracking, name)["champion"] == 2
    assert tags(tracking, name, 1)[store.METRICS_EVALUATION_VERSION] == candidate.evaluation_version
