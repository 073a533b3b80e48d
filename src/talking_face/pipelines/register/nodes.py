"""Thin node over talking_face.registry: the model card, registration and the promotion gate."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pandas as pd

from talking_face.models.sync_expert import load_expert
from talking_face.provenance import git_commit
from talking_face.registry import register_and_gate
from talking_face.registry.card import model_card, training_data
from talking_face.registry.promotion import DEFAULT_MODEL_NAME


def register_model(
    model_state: dict,
    metrics: dict,
    clips: list[dict],
    version_of_data: str,
    manifest: pd.DataFrame,
    evaluation_table: str,
    params: dict,
    evaluate_params: dict,
    expert_state: dict,
) -> tuple[dict, str]:
    """Registers the bundle (once per identical bundle) with its model card as description, tags it, sets
    `challenger`, runs the gate for `champion`; (the decision as recorded on the version, the card)."""
    commit = git_commit(Path.cwd())
    card = model_card(
        params.get("model_name") or DEFAULT_MODEL_NAME,
        training_data(manifest),
        version_of_data,
        evaluation_table,
        reproduce_commands(commit),
        list(params.get("limits") or []),
        commit,
        float(model_state.get("mouth_strength", 1.0)),
        part_layers(model_state),
    )
    expert = load_expert(expert_state)
    decision = register_and_gate(model_state, metrics, clips, version_of_data, params, evaluate_params, description=card,
                                 expert=expert)  # fmt: skip
    return decision.to_dict(), card


def part_layers(model_state: dict) -> str:
    """One line on the bundle's part layers (models.layer) for its card."""
    layers = []
    if model_state.get("mouth"):
        gain = float(model_state["mouth"]["weights"]["gain"])
        layers.append(f"the mouth opened by a speech-to-opening network (gain {gain:.2f}, fitted on held-out training people)")
    if model_state.get("eyelids"):
        layers.append("blinks drawn as the lids lowered")
    return "; ".join(layers) or "none: the generator's own mouth and eyes"


def reproduce_commands(commit: str | None) -> list[str]:
    """Check out the code, install the locked environment, fetch the data, run what ran (`dvc repro` inside
    DVC, else this `kedro run` command line, else `make train`)."""
    if os.environ.get("DVC_STAGE"):
        run = "dvc repro"
    elif Path(sys.argv[0]).name == "kedro" and sys.argv[1:2] == ["run"]:
        run = shlex.join(["kedro", *sys.argv[1:]])
    else:
        run = "make train"
    checkout = [f"git checkout {commit}"] if commit else []
    return [*checkout, "make install", "dvc pull", run]
