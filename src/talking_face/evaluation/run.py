"""The evaluation loop: every test clip generated from its first frame and its audio, exactly as a user
would (`serving.animate`), scored against the real frames beside the static-frame baseline and the real
video's own no-reference metrics.

A clip is a feature file (see `features.schema`): its face crops are the real frames, its 16 kHz audio the
speech. The per-clip table has one row per clip and system: "model", "baseline" (the source frame
repeated) and "real" (the real video: CPBD, blinks, sync and identity only, the level a perfect model
reaches).
"""

from __future__ import annotations

import hashlib
import json
import logging
import zlib
from dataclasses import dataclass, field

import cv2
import librosa
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from talking_face.evaluation import lip_sync, metrics, sync
from talking_face.evaluation.clip import DEFAULT_PARAMS, evaluate_clip, static_baseline, video_metrics
from talking_face.evaluation.face_track import track_landmarks
from talking_face.features.eyes import eye_aspect_ratio
from talking_face.features.phonemes import speech_openness
from talking_face.models.sync_expert import SyncExpert
from talking_face.features.schema import IDENTITY_KEYS, file_identity
from talking_face.serving.animate import animate, frame_count
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.photo import PasteBack, whole_photo

logger = logging.getLogger(__name__)

SYSTEMS = ("model", "baseline", "real")


@dataclass
class ClipExample:
    """What the report needs to show one clip: real and generated frames, CAM attention, audio, EAR curves."""

    real: np.ndarray  # uint8 [T, S, S, 3]
    generated: np.ndarray  # uint8 [T, S, S, 3]
    attention: np.ndarray  # float16 [T, S, S] in [0, 1], the generator's CAM attention
    audio: np.ndarray  # float32 mono at `sample_rate`
    fps: float
    sample_rate: int
    ear: dict[str, np.ndarray] = field(default_factory=dict)  # {"real" | "generated" | "baseline": EAR [T]}
    opening: dict[str, np.ndarray] = field(default_factory=dict)  # the same systems' inner-lip gap [T]

    @property
    def baseline(self) -> np.ndarray:
        return static_baseline(self.real[0], len(self.real))


@dataclass
class EvaluationResult:
    per_clip: pd.DataFrame  # one row per (clip, system)
    examples: dict[str, ClipExample]  # the first `n_examples` clips, by clip_id


def select_clips(
    feature_summary: pd.DataFrame,
    feature_files: dict[str, str],
    splits: list[str],
    max_clips_per_split: int | None = None,
) -> list[dict]:
    """The test clips to evaluate: accepted clips of `splits` (in that order, then by clip_id) that have a
    feature file, at most `max_clips_per_split` each (None: all). Each entry is {clip_id, speaker, split,
    path} (and corpus, when the summary has one) plus the feature file's content_hash and params_hash, which
    identify what was measured."""
    chosen = []
    for split in splits:
        rows = feature_summary[feature_summary["split"] == split].sort_values("clip_id")
        rows = rows[rows["clip_id"].isin(list(feature_files))]
        if max_clips_per_split is not None:
            rows = rows.head(int(max_clips_per_split))
        for row in rows.itertuples():
            path = feature_files[row.clip_id]
            identity = file_identity(path)
            corpus = {"corpus": str(row.corpus)} if "corpus" in feature_summary else {}
            chosen.append({"clip_id": row.clip_id, "speaker": str(row.speaker), **corpus, "split": split, "path": path,
                           **identity})
    return chosen


# How generated frames reach the metrics; metrics scored otherwise (the crop resized) are not comparable.
FRAMES_SCORED = "pasted back into the real first frame at its resolution"


def evaluation_version(clips: list[dict], params: dict, expert: SyncExpert | None = None) -> str:
    """A short hash of what a set of metrics was measured on: the clips (ids, splits, feature content), the
    metric parameters and the lip-sync expert's version (a new expert re-scores the champion). Metrics
    with the same evaluation version are comparable."""
    identity = [{key: clip.get(key, "") for key in ("clip_id", "split", *IDENTITY_KEYS)} for clip in clips]
    metric_params = {**DEFAULT_PARAMS, **(params.get("metrics") or {})}
    measured = {"clips": identity, "metrics": metric_params, "frames": FRAMES_SCORED,
                "sync_expert": getattr(expert, "version", None)}  # fmt: skip
    text = json.dumps(measured, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_clip_media(path: str) -> tuple[np.ndarray, np.ndarray, float]:
    """The real face crops, the audio and the frame rate of one feature file (nothing else is read)."""
    with np.load(path, allow_pickle=False) as archive:
        missing = [key for key in ("frames", "audio", "fps") if key not in archive.files]
        if missing:
            reason = str(archive["error"]) if "error" in archive.files else f"missing keys {missing}"
            raise ValueError(f"{path}: not a usable feature file ({reason})")
        return archive["frames"], archive["audio"].astype(np.float32), float(archive["fps"])


def generate_clip(
    model: TalkingFaceModel, source: np.ndarray, audio: np.ndarray, sample_rate: int, fps: float, label: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """The whole clip generated from `source` (uint8 [S, S, 3]) and `audio` through `animate` and the
    paste-back at the source's resolution, the users' generation path: frames uint8 [T, S, S, 3] and CAM
    attention float16 [T, S, S]. Blinks come at the users' default rate, drawn from a seed of `label`, so
    clips do not all blink at the same moments.

    A model trained at another crop size gets the source resized to its size and its frames composed into
    the source at the source's size (`serving.photo.PasteBack`, the crop as the photo), so that models of
    different sizes are scored on the same real frames; audio at another rate is resampled to the model's.
    """
    model_fps = float(model.features["fps"])
    if abs(model_fps - fps) > 1e-6:
        raise ValueError(f"{label or 'clip'}: clip is at {fps:g} fps but the model generates {model_fps:g} fps")
    model_rate = int(model.features["audio"]["sample_rate"])
    if model_rate != sample_rate:
        audio = librosa.resample(audio, orig_sr=sample_rate, target_sr=model_rate)
    size = source.shape[0]
    photo = whole_photo(source, model.image_size)
    paste_back = PasteBack(photo)
    images, attention = [], []
    total = frame_count(len(audio), model_rate, model_fps)
    frames = animate(model, photo.crop, audio, blink_seed=zlib.crc32(label.encode()))
    for frame in tqdm(frames, total=total, desc=f"generate {label}".strip(), unit="frame", leave=False):
        images.append(paste_back(frame))
        attention.append(_resized(np.clip(frame.attention, 0.0, 1.0), size))
    return np.stack(images), np.stack(attention).astype(np.float16)


def evaluate_model(
    model: TalkingFaceModel,
    clips: list[dict],
    params: dict | None = None,
    n_examples: int = 0,
    expert: SyncExpert | None = None,
) -> EvaluationResult:
    """Generates and scores every clip of `clips` (from `select_clips`); keeps the frames of the first
    `n_examples` clips for the report. `params["metrics"]` overrides `evaluation.clip.DEFAULT_PARAMS`
    (fps and sample_rate always come from each clip); `expert`, the lip-sync expert, adds its keys."""
    metric_params = {**DEFAULT_PARAMS, **((params or {}).get("metrics") or {})}
    rows, examples = [], {}
    example_sets, shown_sets = {_set_key(clip) for clip in clips}, set()
    model.eval()
    for clip in tqdm(clips, desc="evaluate clips", unit="clip"):
        real, audio, fps = load_clip_media(clip["path"])
        # A feature file holds exactly T frames' worth of audio (features.schema), which gives its rate.
        clip_params = {**metric_params, "fps": fps, "sample_rate": int(round(len(audio) * fps / len(real)))}
        generated, attention = generate_clip(model, real[0], audio, clip_params["sample_rate"], fps, clip["clip_id"])
        if len(generated) != len(real):
            logger.warning("%s: %d generated frames for %d real ones; comparing the first %d",
                           clip["clip_id"], len(generated), len(real), min(len(generated), len(real)))
            count = min(len(generated), len(real))
            real, generated, attention = real[:count], generated[:count], attention[:count]
        scores, ear, opening = score_clip(real, generated, audio, clip_params, expert)
        identity = {key: clip[key] for key in ("clip_id", "speaker", "corpus", "split") if key in clip}
        rows.extend({**identity, "system": system, **values} for system, values in scores.items())
        # One example per corpus and split before a second of any: the report shows every kind of face.
        if len(examples) < n_examples and (_set_key(clip) not in shown_sets or shown_sets >= example_sets):
            rate = clip_params["sample_rate"]
            examples[clip["clip_id"]] = ClipExample(real, generated, attention, audio, fps, rate, ear, opening)
            shown_sets.add(_set_key(clip))
    return EvaluationResult(per_clip=pd.DataFrame(rows, columns=_columns(rows)), examples=examples)


def score_clip(
    real: np.ndarray, generated: np.ndarray, audio: np.ndarray, params: dict, expert: SyncExpert | None = None
) -> tuple[dict, dict, dict]:
    """Metrics of the model's frames and of the static baseline against `real`, and the real video's own;
    plus the EAR curve and the inner-lip gap of each. Landmarks of the real frames and the speech's phonemes are found once and
    shared."""
    source = real[0]
    baseline = static_baseline(source, len(real))
    tracks = {"real": track_landmarks(real, params["redetect_every"])}
    tracks["generated"] = track_landmarks(generated, params["redetect_every"])
    tracks["baseline"] = track_landmarks(baseline, params["redetect_every"])
    speech = speech_openness(audio, len(real), params["sample_rate"], params["fps"])
    shared = {"speech": speech, "expert": expert}
    scores = {
        "model": evaluate_clip(real, generated, audio, source, params, tracks["real"], tracks["generated"], **shared),
        "baseline": evaluate_clip(real, baseline, audio, source, params, tracks["real"], tracks["baseline"], **shared),
        "real": real_reference(real, audio, source, params, tracks["real"], **shared),
    }
    ear = {name: eye_aspect_ratio(track.landmarks) for name, track in tracks.items()}
    opening = {name: sync.mouth_opening(track.landmarks, params["mouth_normalise_by"]) for name, track in tracks.items()}
    return scores, ear, opening


def real_reference(
    real: np.ndarray, audio: np.ndarray, source: np.ndarray, params: dict, track, speech: np.ndarray | None = None,
    expert: SyncExpert | None = None,
) -> dict:
    """The real video's no-reference metrics, its identity distance from its own first frame, its motion
    agreement with itself (1 and 1), its mouth interior where it is open and, with an `expert`, the
    expert's confidence with the audio `params["shifted_audio_s"]` late (expert_shifted_confidence: what
    out of sync scores)."""
    embeddings = metrics.sequence_embeddings(real, track.boxes, params["identity_frames"])
    identity = metrics.identity_distance(metrics.image_embedding(source), embeddings)
    opening = sync.mouth_opening(track.landmarks, params["mouth_normalise_by"])
    result = {
        "n_frames": len(real),
        "identity_cosine": identity["cosine"],
        "identity_euclidean": identity["euclidean"],
        **video_metrics(real, audio, params, track, speech, expert),
        **lip_sync.motion_agreement(opening, opening),
        "mouth_interior": lip_sync.mouth_interior(real, track.landmarks, sync.mouth_opening(track.landmarks) > params["open_mouth"]),
        "face_detected_fraction": track.detected_fraction,
    }
    if expert is not None:
        late = lip_sync.delayed(audio, params["shifted_audio_s"], params["sample_rate"])
        shifted = lip_sync.expert_sync(expert, real, late, params["sample_rate"], params["fps"], params["expert_max_offset"])
        result["expert_shifted_confidence"] = shifted.confidence
    return result


def _set_key(clip: dict) -> tuple[str, str]:
    return clip.get("split", ""), clip.get("corpus", "")


def _columns(rows: list[dict]) -> list[str]:
    columns = ["clip_id", "speaker", "corpus", "split", "system"] if rows and "corpus" in rows[0] else [
        "clip_id", "speaker", "split", "system"]
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    return columns


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[0] == size and image.shape[1] == size:
        return image
    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)
