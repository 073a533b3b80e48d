"""The model card: the description of a registered model version, in Markdown.

What it was trained on (corpora, speakers, clips, data version, from the manifest), how it scored (the
evaluation table the `evaluate` pipeline writes, whatever rows it has: per corpus when evaluation reports
per corpus), the commands that rebuild it, and its known limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

TRAIN_SPLIT = "train"
MAX_CHARS = 5000  # MLflow's model version description column (enforced by PostgreSQL and MySQL stores)
MORE = "(more in the run's evaluation/metrics_table.md)"


@dataclass(frozen=True)
class TrainingData:
    corpora: dict[str, int]  # corpus (or layout, for manifests without a corpus column) -> training clips
    speakers: list[str]  # the training speakers
    clips: int  # training clips
    test_clips: dict[str, int]  # held-out split -> clips


def training_data(manifest: pd.DataFrame) -> TrainingData:
    """The training side of a manifest: its `corpus` column when it has one, else the layout of each clip."""
    source = "corpus" if "corpus" in manifest.columns else "layout"
    train = manifest[manifest["split"] == TRAIN_SPLIT]
    held_out = manifest[manifest["split"] != TRAIN_SPLIT]["split"].value_counts()
    return TrainingData(
        corpora={str(name): int(count) for name, count in train[source].value_counts().sort_index().items()},
        speakers=sorted(str(speaker) for speaker in train["speaker"].unique()),
        clips=len(train),
        test_clips={str(split): int(count) for split, count in held_out.sort_index().items()},
    )


def model_card(
    model_name: str,
    data: TrainingData,
    data_version: str,
    evaluation_table: str,
    reproduce: list[str],
    limits: list[str],
    commit: str | None = None,
    mouth_strength: float = 1.0,
    layers: str = "none",
) -> str:
    """The card as Markdown. `reproduce`: the commands that rebuild the model, in order; `limits`: known
    limits beyond the one the training data implies; `mouth_strength`: the one stored in the model; `layers`:
    one line on its part layers (models.layer)."""
    corpora = ", ".join(f"{name} ({_clips(count)})" for name, count in data.corpora.items()) or "none"
    held_out = ", ".join(f"{split}: {_clips(count)}" for split, count in data.test_clips.items()) or "none"
    head = [
        f"# {model_name}",
        "",
        "## Training data",
        f"- corpora: {corpora}",
        f"- speakers: {len(data.speakers)} ({', '.join(data.speakers)})",
        f"- training clips: {data.clips}; held out: {held_out}",
        f"- data version: `{data_version}`",
        f"- code: `{commit}`" if commit else "- code: not in a git repository",
        f"- mouth strength at generation: {mouth_strength:g} (chosen after training on held-out clips of the "
        "training speakers; `talking-face generate --mouth-strength` overrides it)",
        f"- part layers at generation: {layers}",
        "",
        "## Evaluation",
        "",
    ]
    tail = ["", "## Reproduce", "", "```bash", *reproduce, "```", "", "## Limits",
            *(f"- {limit}" for limit in [training_limit(data), *limits])]
    budget = MAX_CHARS - len("\n".join(head + tail)) - 2
    return "\n".join([*head, fitting_sections(evaluation_table, budget), *tail]) + "\n"


def fitting_sections(table: str, budget: int) -> str:
    """The evaluation table's headings moved two levels down (under the card's own), whole sections in
    order while they fit in `budget` characters (the report puts its own rows first)."""
    lines = ["##" + line if line.startswith("#") else line for line in table.strip().splitlines()]
    sections, current = [], []
    for line in lines:
        if line.startswith("###") and current:
            sections.append("\n".join(current))
            current = []
        current.append(line)
    sections.append("\n".join(current))
    kept = []
    for section in sections:
        if len("\n".join([*kept, section])) > budget - len(MORE) - 1:
            return "\n".join([*kept, MORE]) if kept else MORE
        kept.append(section)
    return "\n".join(kept) or "(no evaluation table)"


def training_limit(data: TrainingData) -> str:
    corpora = "/".join(data.corpora) or "no"
    return (
        f"trained on {len(data.speakers)} {corpora} speaker{'s' if len(data.speakers) != 1 else ''} "
        f"({_clips(data.clips)}): expect weaker results on faces, head turns, lighting and voices unlike theirs"
    )


def _clips(count: int) -> str:
    return f"{count} clip{'s' if count != 1 else ''}"
