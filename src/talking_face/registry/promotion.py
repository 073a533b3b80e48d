"""Registering a trained model and moving the `champion` alias only when the model earns it.

`register_and_gate` (the `register` pipeline) logs the bundle as one pyfunc model version (or finds the
version that already holds the identical bundle), tags it with its evaluation metrics and data version,
points `challenger` at it, re-evaluates the champion when the champion's metrics were measured on other
data, and promotes the new version only if it passes the gate (see `gate.py`). `promote_version` is the
same decision by hand (`talking-face promote`), with `force` to skip the checks. Every decision is
recorded on the version as tags, logged, and returned as a `PromotionDecision`.
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from talking_face.atomic import torch_save
from talking_face.evaluation.run import evaluate_model, evaluation_version
from talking_face.evaluation.summary import summarise
from talking_face.models.sync_expert import SyncExpert
from talking_face.registry import store
from talking_face.registry.gate import DEFAULT_RULES, gate
from talking_face.registry.versions import bundle_hash
from talking_face.serving.pyfunc import log_pyfunc_model
from talking_face.serving.resolve import DEFAULT_MODEL_NAME

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 5000


@dataclass
class PromotionDecision:
    model_name: str
    version: int
    decision: str  # "promoted" | "rejected" | "already champion" | "promoted by force"
    reason: str
    champion_before: int | None  # the champion's version before this decision (None: there was none)
    champion_after: int | None
    registered: bool = False  # this call registered a new version (False: the identical bundle was there)
    champion_reevaluated: bool = False  # the champion was re-scored on the current test clips
    checks: list[dict] = field(default_factory=list)
    data_version: str = ""
    evaluation_version: str = ""
    decided_on: str = ""  # the evaluation set the gate read, e.g. "test_unseen" or "test_unseen/grid"

    @property
    def promoted(self) -> bool:
        """True when this version is the champion after the decision."""
        return self.champion_after == self.version

    def to_dict(self) -> dict:
        return {**asdict(self), "promoted": self.promoted}

    def line(self) -> str:
        return f"{self.model_name} version {self.version}: {self.decision}: {self.reason}"


def register_and_gate(
    state: dict,
    metrics: dict[str, float],
    clips: list[dict],
    data_version: str,
    params: dict | None = None,
    evaluate_params: dict | None = None,
    tracking_uri: str | None = None,
    description: str | None = None,
    expert: SyncExpert | None = None,
) -> PromotionDecision:
    """Registers the model bundle `state` with its evaluation summary `metrics` (measured on `clips` with
    `evaluate_params`) and runs the promotion gate. `params`: model_name, artifact_path and gate rules
    (see gate.DEFAULT_RULES); `description`: the new version's model card; `expert`: the lip-sync expert
    the metrics were measured with (a champion scored by another is re-scored with it). Idempotent: an identical bundle
    is not registered twice, and a second call with the same inputs leaves the registry as the first one
    left it."""
    params, evaluate_params = params or {}, evaluate_params or {}
    name = params.get("model_name") or DEFAULT_MODEL_NAME
    current = evaluation_version(clips, evaluate_params, expert)
    with store.tracking(tracking_uri) as client:
        version, created = register_bundle(client, state, name, params.get("artifact_path", "model"))
        tags = {store.METRICS_DATA_VERSION: data_version, store.METRICS_EVALUATION_VERSION: current}
        first_tags = {store.DATA_VERSION: data_version} if created else {}  # the data it was registered with
        if created and description:
            client.update_model_version(name, version.version, description=description)
        store.replace_metrics(client, version, metrics, {**tags, **first_tags})
        client.set_registered_model_alias(name, store.CHALLENGER, version.version)
        champion = store.by_alias(client, name, store.CHAMPION)
        other = champion is not None and champion.version != version.version
        reevaluated = other and _measured_elsewhere(champion, tags)
        if reevaluated:
            logger.info("Re-evaluating champion version %s on the current test clips: its metrics come from other data",
                        champion.version)
            champion_metrics = reevaluate(name, champion.version, clips, evaluate_params, tracking_uri, expert)
            store.replace_metrics(client, champion, champion_metrics, tags)
            champion = store.get_version(client, name, champion.version)
        decision = decide(client, name, int(version.version), champion, metrics, params.get("gate"), force=False)
    decision.registered, decision.champion_reevaluated = created, reevaluated
    decision.data_version, decision.evaluation_version = data_version, current
    _announce(decision)
    return decision


def promote_version(
    model_name: str,
    version: int | str,
    force: bool = False,
    tracking_uri: str | None = None,
    rules: dict | None = None,
    clips: list[dict] | None = None,
    evaluate_params: dict | None = None,
    expert: SyncExpert | None = None,
) -> PromotionDecision:
    """Moves `champion` to `version` by hand if it passes the gate against the current champion, using the
    metrics stored on both versions; `force=True` promotes whatever the checks say (and records them).

    Metrics are only compared when both were measured on the same test clips (their evaluation-version
    tags match). When they differ, `clips` (the `evaluation_clips` of a run) with `evaluate_params` (the
    `evaluate` parameters) re-evaluate the stale version(s) on those clips; without them the version is
    not promoted unless forced. Raises ValueError when the version does not exist.
    """
    with store.tracking(tracking_uri) as client:
        candidate = store.get_version(client, model_name, version)
        champion = store.by_alias(client, model_name, store.CHAMPION)
        reevaluated, mismatch = False, ""
        if champion is not None and champion.version != candidate.version and _evaluated_apart(candidate, champion):
            if clips is not None:
                evaluate_params = evaluate_params or {"splits": [(rules or DEFAULT_RULES)["split"].split("/")[0]]}
                current = evaluation_version(clips, evaluate_params, expert)
                for stale in (candidate, champion):
                    if stale.tags.get(store.METRICS_EVALUATION_VERSION) != current:
                        summary = reevaluate(model_name, stale.version, clips, evaluate_params, tracking_uri, expert)
                        store.replace_metrics(client, stale, summary, {store.METRICS_EVALUATION_VERSION: current})
                candidate = store.get_version(client, model_name, candidate.version)
                champion = store.get_version(client, model_name, champion.version)
                reevaluated = True
            else:
                mismatch = (
                    f"version {candidate.version} and the champion (version {champion.version}) were evaluated "
                    "on different test clips, so their metrics do not compare; pass the evaluation clips to "
                    "re-evaluate them"
                )
        metrics = store.version_metrics(candidate)
        decision = decide(client, model_name, int(candidate.version), champion, metrics, rules, force, mismatch)
    decision.champion_reevaluated = reevaluated
    decision.evaluation_version = candidate.tags.get(store.METRICS_EVALUATION_VERSION, "")
    decision.data_version = candidate.tags.get(store.DATA_VERSION, "")
    _announce(decision)
    return decision


def decide(
    client: MlflowClient,
    name: str,
    version: int,
    champion: ModelVersion | None,
    metrics: dict[str, float],
    rules: dict | None,
    force: bool,
    blocker: str = "",
) -> PromotionDecision:
    """Applies the gate to `version` of `name` (its summary `metrics`) against `champion`, moves the
    champion alias when it passes (or is forced) and records the decision on the version as tags.
    `blocker` is a reason the comparison cannot be trusted: then only `force` promotes."""
    before = int(champion.version) if champion is not None else None
    if before == version:  # nothing to decide, and nothing is changed
        reason = f"version {version} is already the champion"
        return PromotionDecision(name, version, "already champion", reason, before, before)
    result = gate(metrics, store.version_metrics(champion) if champion is not None else None, rules)
    reason = "; ".join(part for part in (blocker, result.reason) if part)
    if result.passed and not blocker:
        decision = "promoted"
        context = "first model, beats the baseline" if champion is None else "beats the champion and the baseline"
        reason = f"{context} on {result.split}: {reason}"
    elif force:
        decision, reason = "promoted by force", f"forced by hand; checks: {reason}"
    else:
        decision = "rejected"
        reason = (f"champion stays version {before}: " if champion is not None else "no champion yet: ") + reason
    after = version if decision != "rejected" else before
    if after == version:
        client.set_registered_model_alias(name, store.CHAMPION, str(version))
    compared = f"version {before}" if before is not None else "none (first model)"
    record = {store.DECISION: decision, store.REASON: reason[:MAX_REASON_CHARS], store.COMPARED_WITH: compared}
    store.set_tags(client, name, version, record)
    return PromotionDecision(name, version, decision, reason, before, after, checks=result.to_dicts(),
                             decided_on=result.split)


def register_bundle(
    client: MlflowClient, state: dict, name: str, artifact_path: str = "model"
) -> tuple[ModelVersion, bool]:
    """The version of `name` holding this exact bundle: the existing one (False) or a newly logged and
    registered pyfunc model (True), logged into the active MLflow run (the Kedro run), or else into a new
    "register" run of the store's registry experiment."""
    content = bundle_hash(state)
    existing = store.find_by_content(client, name, content)
    if existing is not None:
        logger.info("%s version %s already holds this model bundle (%s): not registering it again",
                    name, existing.version, content)
        return existing, False
    with tempfile.TemporaryDirectory(prefix="bundle-") as folder:
        bundle = torch_save(state, Path(folder) / "talking_face_model.pt")
        experiment = None if mlflow.active_run() else store.registry_experiment(client)
        with nullcontext() if experiment is None else mlflow.start_run(experiment_id=experiment, run_name="register"):
            info = log_pyfunc_model(bundle, artifact_path=artifact_path, registered_model_name=name)
    version = str(info.registered_model_version)
    store.set_tags(client, name, version, {store.CONTENT_HASH: content})
    return store.get_version(client, name, version), True


def reevaluate(
    name: str, version: int | str, clips: list[dict], evaluate_params: dict, tracking_uri: str | None = None,
    expert: SyncExpert | None = None,
) -> dict[str, float]:
    """The evaluation summary of a registered version on `clips`, from its own registered bundle, through
    the same evaluation code (and lip-sync expert) as the `evaluate` pipeline."""
    model = store.load_version_model(name, version, tracking_uri)
    result = evaluate_model(model, clips, evaluate_params, expert=expert)
    return summarise(result.per_clip, evaluate_params.get("splits") or sorted({clip["split"] for clip in clips}))


def _measured_elsewhere(version: ModelVersion, current: dict[str, str]) -> bool:
    """True when the version's stored metrics come from other data or other evaluation settings."""
    return any(version.tags.get(key) != value for key, value in current.items())


def _evaluated_apart(first: ModelVersion, second: ModelVersion) -> bool:
    tag = store.METRICS_EVALUATION_VERSION
    return not first.tags.get(tag) or first.tags.get(tag) != second.tags.get(tag)


def _announce(decision: PromotionDecision) -> None:
    """The decision in the log and, when an MLflow run is active, as tags of that run."""
    logger.info("Promotion: %s", decision.line())
    if mlflow.active_run() is not None:
        mlflow.set_tags({
            "registered_model": decision.model_name,
            "registered_model_version": str(decision.version),
            store.DECISION: decision.decision,
            store.REASON: decision.reason[:MAX_REASON_CHARS],
        })
