"""What people look at: the metrics table laid out like the paper's Table 1 (with its published GRID rows),
real | generated | baseline video frames, the CAM attention strip (paper's Figure 7) and the EAR curves
(paper's Figure 8). Figures are matplotlib `Figure`s without pyplot state (Agg-safe)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from talking_face.evaluation import blinks
from talking_face.evaluation.run import ClipExample
from talking_face.evaluation.summary import set_names, split_metrics

# (column title, metric key, format) in the order of the paper's Table 1; the last two columns are ours.
COLUMNS = (
    ("SSIM↑", "ssim", "{:.3f}"),
    ("PSNR↑ (dB)", "psnr", "{:.2f}"),
    ("CPBD↑", "cpbd", "{:.3f}"),
    ("WER↓", "wer", "{:.1f}"),
    ("ACD-C↓", "identity_cosine", "{:.4f}"),
    ("ACD-E↓", "identity_euclidean", "{:.3f}"),
    ("blinks/s", "blinks_per_s", "{:.2f}"),
    ("LMD↓", "lmd_mouth", "{:.2f}"),
    ("LMD all↓", "lmd_all", "{:.2f}"),
    ("sync r↑", "sync_corr", "{:.3f}"),
)
# The talking table under each set's: the lip-sync expert, phoneme sync, motion against the real mouth.
TALKING_COLUMNS = (
    ("expert conf.↑", "expert_confidence", "{:.3f}"),
    ("expert dist.↓", "expert_distance", "{:.3f}"),
    ("expert offset ok", "expert_offset_ok", "{:.0%}"),
    ("conf., audio +0.5 s", "expert_shifted_confidence", "{:.3f}"),
    ("phoneme sync r↑", "phone_sync_corr", "{:.3f}"),
    ("phoneme offset ok", "phone_offset_ok", "{:.0%}"),
    ("motion r↑", "motion_corr", "{:.3f}"),
    ("motion amplitude", "motion_amplitude", "{:.2f}"),
    ("mouth interior", "mouth_interior", "{:.0f}"),
    ("blinks (rate, 95% CI)", "blink_rate", "{:.2f}"),
)
SYSTEM_ROWS = (
    ("MAN (this model)", "model"),
    ("Static frame (baseline)", "baseline"),
    ("Real video (reference)", "real"),
)

# "Table 1 - Comparison of the proposed method (MAN-keypoint and MAN-optical) with other previous works for
# GRID data set" as printed in ITU Journal on Future and Evolving Technologies 2(4), 2021, p. 56 (the journal
# publication of the MAN work), transcribed as published; None where it prints "-".
# Columns: SSIM, PSNR, CPBD, WER, ACD-C, ACD-E, blinks/s, LMD.
PAPER_SOURCE = (
    "Published rows: Table 1 (GRID) of the MAN work as printed in ITU Journal on Future and Evolving "
    "Technologies 2(4), 2021, p. 56, transcribed as published. The table of the arXiv version (2012.07304) "
    "could not be retrieved offline: check it before quoting these rows as that version's."
)
PAPER_GRID_ROWS = (
    ("FOMM", ("0.833", "26.72", "0.214", "38.21", "0.004", "0.088", "0.56", "0.718")),
    ("OneShotA2V", ("0.881", "28.571", "0.262", "27.5", "0.005", "0.09", "0.15", "0.91")),
    ("RSDGAN", ("0.818", "27.100", "0.268", "23.1", None, "1.47e-4", "0.39", None)),
    ("Speech2Vid", ("0.720", "22.662", "0.255", "58.2", "0.007", "1.48e-4", None, None)),
    ("ATVGnet", ("0.83", "32.15", None, None, None, None, None, "1.29")),
    ("X2face", ("0.80", "29.39", None, None, None, None, None, "1.48")),
    ("CascadedGAN", ("0.81", "27.1", "0.26", "23.1", None, "1.47e-4", "0.45", None)),
    ("MAN-optical (paper)", ("0.908", "29.78", "0.272", "23.7", "0.005", "1.41e-4", "0.45", "0.77")),
    ("MAN-keypoint (paper)", ("0.887", "29.01", "0.269", "25.2", "0.006", "1.41e-4", "0.48", "0.80")),
)
SPLIT_TITLES = {"test_unseen": "Unseen speakers (test_unseen)", "test_seen": "Seen speakers (test_seen)"}
NOTES = (
    "SSIM, PSNR and LMD compare each generated frame with the real one (the first frame, the source image "
    "itself, is left out); the real video's row has only the no-reference metrics and its identity distance "
    "from its own first frame.",
    "LMD: mean distance of dlib's mouth points (48-67; 'LMD all': all 68), each set centred on its mean, in "
    "pixels of a 256x256 crop. ACD-C / ACD-E: 1 - cosine similarity / L2 distance between dlib "
    "face-recognition embeddings of generated frames and the source image (dlib calls two faces the same "
    "person below 0.6). The paper does not state the scale of its LMD or the embedding of its ACD "
    "(its ACD-E is ~1e-4), so compare those columns only within our rows.",
    "sync r: Pearson correlation of mouth opening and audio energy at the best lag within +/-5 frames (mean "
    "lag in brackets); not in the paper. A model does its job only where it beats the static baseline on "
    "LMD and sync: the baseline already scores high SSIM and PSNR.",
    "Talking: expert conf. / dist. are our lip-sync expert's LSE-C / LSE-D style confidence and distance "
    "(trained on this run's training clips; not comparable with published SyncNet figures); offset ok: "
    "clips whose best offset is within a frame of 0; 'audio +0.5 s': the real video scored with its audio "
    "half a second late (what out of sync scores). Phoneme sync r: mouth opening against the opening "
    "pocketsphinx's phonemes ask for. Motion r / amplitude: the inner-lip gap against the real one's "
    "(still photo 0 / 0, real video 1 / 1). Mouth interior: grey level inside the inner lips where the real "
    "mouth is open (0-255; a real open mouth is dark). Blinks: all clips' blinks over their whole length, "
    "with the exact Poisson interval.",
)


def metrics_table(summary: dict[str, float], splits: list[str], wer_note: str = "", title: str = "") -> str:
    """Markdown: per split (and per corpus of a split, when there are several), our model, the static
    baseline and the real video on the same clips, then the paper's rows."""
    header = "| Method | " + " | ".join(name for name, _, _ in COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    lines = [f"# {title or 'Evaluation'}", ""]
    for split in set_names(summary, splits) or splits:
        count = int(summary.get(f"{split}.n_clips", 0))
        lines += [f"## {_set_title(split)}: {count} clip{'s' if count != 1 else ''}", "", header, rule]
        for label, system in SYSTEM_ROWS:
            values = split_metrics(summary, split, system)
            cells = [_cell(values, key, fmt, system, wer_note) for _, key, fmt in COLUMNS]
            if "sync_corr" in values and "sync_lag" in values:
                cells[-1] += f" ({values['sync_lag']:+.1f})"
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "Talking:", "", "| Method | " + " | ".join(name for name, _, _ in TALKING_COLUMNS) + " |",
                  "|---|" + "---:|" * len(TALKING_COLUMNS)]  # fmt: skip
        for label, system in SYSTEM_ROWS:
            values = split_metrics(summary, split, system)
            cells = [_talking_cell(values, key, fmt) for _, key, fmt in TALKING_COLUMNS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Published GRID results (paper's Table 1)", "", header, rule]
    for method, values in PAPER_GRID_ROWS:
        cells = [value if value is not None else "–" for value in values] + ["–", "–"]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines += ["", PAPER_SOURCE, ""]
    if wer_note:
        lines += [f"- WER: {wer_note}."]
    lines += [f"- {note}" for note in NOTES]
    return "\n".join(lines) + "\n"


def _set_title(name: str) -> str:
    split, _, corpus = name.partition("/")
    title = SPLIT_TITLES.get(split, split)
    return f"{title}, corpus {corpus}" if corpus else title


def _cell(values: dict[str, float], key: str, fmt: str, system: str, wer_note: str) -> str:
    if key == "wer" and key not in values and wer_note:
        return "n/a"
    if system == "real" and key in ("ssim", "psnr", "lmd_mouth", "lmd_all"):
        return "(ref.)"
    value = values.get(key)
    return fmt.format(value) if value is not None and math.isfinite(value) else "–"


def _talking_cell(values: dict[str, float], key: str, fmt: str) -> str:
    value = values.get(key)
    if value is None or not math.isfinite(value):
        return "–"
    if key == "blink_rate" and "blink_rate_low" in values:
        return f"{value:.2f} ({values['blink_rate_low']:.2f}-{values['blink_rate_high']:.2f}, {values['blinks_total']:.0f})"
    return fmt.format(value)


def wer_note(per_clip: pd.DataFrame) -> str:
    """Why WER has no value (the lip-reading model is not configured), or "" when it was measured."""
    if "wer_note" not in per_clip or pd.to_numeric(per_clip.get("wer"), errors="coerce").notna().any():
        return ""
    notes = per_clip["wer_note"].dropna().unique()
    return str(notes[0]) if len(notes) else ""


def side_by_side(example: ClipExample, panel_size: int = 256) -> np.ndarray:
    """uint8 [T, H, 3 * panel_size, 3] frames: real | generated | baseline, each under its name."""
    band = max(12, panel_size // 10) // 2 * 2  # even, as H.264 needs
    labels = []
    for name in ("real", "generated", "baseline"):
        label = np.full((band, panel_size, 3), 255, dtype=np.uint8)
        scale = band / 40.0
        cv2.putText(label, name, (4, int(band * 0.75)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
        labels.append(label)
    header = np.concatenate(labels, axis=1)
    frames = []
    for images in zip(example.real, example.generated, example.baseline):
        panels = [cv2.resize(image, (panel_size,) * 2, interpolation=cv2.INTER_CUBIC) for image in images]
        frames.append(np.concatenate([header, np.concatenate(panels, axis=1)], axis=0))
    return np.stack(frames)


def attention_strip(example: ClipExample, title: str, n_frames: int = 8) -> Figure:
    """The paper's Figure 7: real frames, generated frames, and the generator's CAM attention over the
    generated frames, at `n_frames` times evenly spread over the clip."""
    count = len(example.real)
    indices = np.unique(np.linspace(0, count - 1, num=min(n_frames, count)).round().astype(int))
    figure = Figure(figsize=(1.4 * len(indices) + 0.8, 4.6), dpi=100, layout="constrained")
    axes = figure.subplots(3, len(indices), squeeze=False)
    for column, index in enumerate(indices):
        axes[0, column].imshow(example.real[index])
        axes[1, column].imshow(example.generated[index])
        axes[2, column].imshow(example.generated[index])
        attention = example.attention[index].astype(np.float32)
        overlay = axes[2, column].imshow(attention, cmap="jet", vmin=0, vmax=1, alpha=0.5)
        axes[0, column].set_title(f"{index / example.fps:.2f} s", fontsize=8)
    for row, name in enumerate(("real", "generated", "CAM attention")):
        axes[row, 0].set_ylabel(name, fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(overlay, ax=axes[2, :].tolist(), shrink=0.8, label="attention")
    figure.suptitle(title, fontsize=10)
    return figure


def ear_figure(example: ClipExample, title: str, threshold: float, min_frames: int) -> Figure:
    """The paper's Figure 8: eye aspect ratio of the real and generated clip over time, relative to each
    clip's open level as blinks are counted, blinks shaded."""
    curves = {name: blinks.relative_ear(example.ear[name]) for name in ("real", "generated") if name in example.ear}
    return blinks.plot_ear_curve(curves, example.fps, threshold, min_frames, title=title, ylabel="EAR / open EAR")


def mouth_strip(example: ClipExample, title: str, n_frames: int = 12, step: int = 2) -> Figure:
    """The lower face, real above generated, at every `step`-th frame of the stretch where the real mouth
    moves most, over the inner-lip gap of both through the whole clip (the stretch shaded): whether the
    generated mouth opens and closes with the speech, as a person judges it."""
    count = len(example.real)
    span = min(count, n_frames * step)
    real_gap = np.nan_to_num(example.opening.get("real", np.zeros(count)))
    start = max(range(count - span + 1), key=lambda first: float(np.std(real_gap[first:first + span])))
    indices = np.arange(start, start + span, step)
    figure = Figure(figsize=(1.1 * len(indices) + 0.8, 3.8), dpi=100, layout="constrained")
    grid = figure.add_gridspec(3, len(indices), height_ratios=(1, 1, 1.4))
    half = example.real.shape[1] // 2
    for row, (name, frames) in enumerate((("real", example.real), ("generated", example.generated))):
        for column, index in enumerate(indices):
            axis = figure.add_subplot(grid[row, column])
            axis.imshow(frames[index, half:])
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"{index / example.fps:.2f} s", fontsize=7)
            if column == 0:
                axis.set_ylabel(name, fontsize=9)
    curves = figure.add_subplot(grid[2, :])
    seconds = np.arange(count) / example.fps
    for name in ("real", "generated"):
        if name in example.opening:
            curves.plot(seconds[: len(example.opening[name])], example.opening[name], label=name, linewidth=1)
    curves.axvspan(start / example.fps, (start + span - 1) / example.fps, color="grey", alpha=0.2)
    curves.set_xlabel("s", fontsize=8)
    curves.set_ylabel("inner-lip gap", fontsize=8)
    curves.legend(fontsize=7, loc="upper right")
    figure.suptitle(title, fontsize=10)
    return figure
