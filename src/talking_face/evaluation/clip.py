"""All metrics of one generated clip against its real clip, and the static-frame baseline to compare with."""

from __future__ import annotations

import numpy as np

from talking_face.evaluation import blinks, cpbd, lip_sync, metrics, sync
from talking_face.evaluation.face_track import LandmarkTrack, track_landmarks
from talking_face.evaluation.lip_reading import lip_reading_wer
from talking_face.features.eyes import eye_aspect_ratio
from talking_face.features.phonemes import speech_openness
from talking_face.models.sync_expert import SyncExpert

DEFAULT_PARAMS = {
    "fps": 25.0,
    "sample_rate": 16000,  # of the `audio` given to evaluate_clip
    "skip_first_frame": True,  # frame 0 is the source image itself: leave it out of SSIM, PSNR and LMD
    "psnr_cap_db": 100.0,  # per-frame PSNR of identical frames (+inf) is capped here before averaging
    "ear_threshold": blinks.RELATIVE_THRESHOLD,  # of the clip's open EAR (blinks.relative_ear)
    "blink_min_frames": blinks.BLINK_MIN_FRAMES,
    "sync_max_lag": sync.MAX_LAG,
    "mouth_normalise_by": "mouth_width",  # or "face_size"
    "identity_frames": 8,  # generated frames embedded for identity (the embedding network dominates the cost)
    "redetect_every": 5,  # run dlib's face detector on every n-th frame, reusing its box in between
    "lip_reading_model": None,  # path to a lip-reading model for WER; none ships
    "expert_max_offset": lip_sync.MAX_OFFSET,  # frames either side searched by the lip-sync expert
    "shifted_audio_s": 0.5,  # the real video is also scored with its audio this much late: the out-of-sync level
    "open_mouth": 0.15,  # inner-lip gap over mouth width above which the real mouth counts as open
}


def static_baseline(source_frame: np.ndarray, n: int) -> np.ndarray:
    """The static-frame baseline: `source_frame` [H, W, 3] repeated for `n` frames, uint8 [n, H, W, 3]."""
    return np.repeat(np.asarray(source_frame)[None], n, axis=0)


def evaluate_clip(
    real_frames: np.ndarray,
    generated_frames: np.ndarray,
    audio: np.ndarray,
    source_image: np.ndarray,
    params: dict | None = None,
    real_track: LandmarkTrack | None = None,
    generated_track: LandmarkTrack | None = None,
    transcript: str = "",
    speech: np.ndarray | None = None,
    expert: SyncExpert | None = None,
) -> dict:
    """Every metric of one generated clip against its real clip, as a flat dict.

    `real_frames` and `generated_frames` are square face crops of the same size, uint8 [T, S, S, 3];
    `audio` is the clip's mono audio at `params["sample_rate"]`; `source_image` is the crop the clip was
    generated from; `transcript` the spoken words (only used for WER); `speech` the mouth opening the speech
    asks for per frame (`features.phonemes.speech_openness`, computed when not given); `expert` the lip-sync
    expert (its keys are left out without one). Landmarks are tracked once per
    sequence and shared by LMD, blinks and sync; pass `real_track` / `generated_track` to reuse tracks
    already computed (the real one is the same for the model and the baseline; the EAR plot needs them).

    Keys: the keys of `reference_metrics` (ssim, psnr, lmd_mouth, lmd_all, motion_corr, motion_amplitude,
    mouth_interior), identity_cosine and identity_euclidean (unitless), the no-reference keys of
    `video_metrics`, face_detected_fraction (of generated frames), n_frames, wer (None unless a
    lip-reading model is configured) and wer_note.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    real_frames, generated_frames = np.asarray(real_frames), np.asarray(generated_frames)
    if real_frames.shape != generated_frames.shape or real_frames.ndim != 4:
        shapes = f"real frames {real_frames.shape} and generated frames {generated_frames.shape}"
        raise ValueError(f"{shapes} must both be [T, S, S, 3]")
    if real_track is None:
        real_track = track_landmarks(real_frames, p["redetect_every"])
    if generated_track is None:
        generated_track = track_landmarks(generated_frames, p["redetect_every"])
    result = {"n_frames": real_frames.shape[0], **reference_metrics(real_frames, generated_frames, p, real_track, generated_track)}
    source_embedding = metrics.image_embedding(source_image)
    frame_embeddings = metrics.sequence_embeddings(generated_frames, generated_track.boxes, p["identity_frames"])
    identity = metrics.identity_distance(source_embedding, frame_embeddings)
    result["identity_cosine"], result["identity_euclidean"] = identity["cosine"], identity["euclidean"]
    result.update(video_metrics(generated_frames, audio, p, generated_track, speech, expert))
    result["face_detected_fraction"] = generated_track.detected_fraction
    wer = lip_reading_wer(generated_frames, transcript, p["lip_reading_model"])
    result["wer"], result["wer_note"] = wer.value, wer.reason
    return result


def reference_metrics(
    real_frames: np.ndarray, generated_frames: np.ndarray, params: dict, real_track: LandmarkTrack,
    generated_track: LandmarkTrack,
) -> dict:
    """The metrics against the real frames: ssim, psnr (dB), lmd_mouth and lmd_all (pixels of a 256 crop),
    frame 0 left out when `params["skip_first_frame"]` (it is the source itself); and over the whole clip
    the mouth's motion agreement with the real mouth (`lip_sync.motion_agreement`: motion_corr,
    motion_amplitude) and mouth_interior, the grey level inside the generated inner lips on the frames where
    the real mouth is open (`lip_sync.mouth_interior`)."""
    count, crop_size = real_frames.shape[0], real_frames.shape[2]
    compared = slice(1 if params["skip_first_frame"] and count > 1 else 0, None)
    real, generated = real_frames[compared], generated_frames[compared]
    result = {
        "ssim": float(np.mean(metrics.ssim_per_frame(real, generated))),
        "psnr": float(np.mean(np.minimum(metrics.psnr_per_frame(real, generated), params["psnr_cap_db"]))),
    }
    for name, points in (("lmd_mouth", metrics.MOUTH_POINTS), ("lmd_all", metrics.ALL_POINTS)):
        distances = metrics.lmd_per_frame(
            real_track.landmarks[compared], generated_track.landmarks[compared], crop_size, points
        )
        result[name] = float(np.mean(distances))
    opening = sync.mouth_opening(generated_track.landmarks, params["mouth_normalise_by"])
    real_opening = sync.mouth_opening(real_track.landmarks, params["mouth_normalise_by"])
    result.update(lip_sync.motion_agreement(opening, real_opening))
    open_frames = sync.mouth_opening(real_track.landmarks) > params["open_mouth"]
    result["mouth_interior"] = lip_sync.mouth_interior(generated_frames, generated_track.landmarks, open_frames)
    return result


def video_metrics(
    frames: np.ndarray,
    audio: np.ndarray,
    params: dict | None = None,
    track: LandmarkTrack | None = None,
    speech: np.ndarray | None = None,
    expert: SyncExpert | None = None,
) -> dict:
    """The metrics that need no reference video: cpbd (mean over frames, unitless), blinks (blink_count,
    duration_s and blinks_per_s, 1/s), sync_corr and sync_lag (the mouth opening against the loudness:
    Pearson r, frames) and the `talking_metrics`. On the real clip they give the level a perfect model
    would reach (the ground-truth row of the table), computed once per clip.
    """
    p = {**DEFAULT_PARAMS, **(params or {})}
    if track is None:
        track = track_landmarks(frames, p["redetect_every"])
    ear = eye_aspect_ratio(track.landmarks)
    opening = sync.mouth_opening(track.landmarks, p["mouth_normalise_by"])
    energy = sync.energy_envelope(audio, len(frames), p["sample_rate"], p["fps"])
    matched = sync.av_sync(opening, energy, p["sync_max_lag"])
    blink_count = len(blinks.detect_blinks(blinks.relative_ear(ear), p["ear_threshold"], p["blink_min_frames"]))
    return {
        "cpbd": mean_cpbd(frames),
        "blink_count": blink_count,
        "duration_s": len(frames) / p["fps"],
        "blinks_per_s": blink_count / (len(frames) / p["fps"]) if len(frames) else float("nan"),
        "sync_corr": matched.correlation,
        "sync_lag": matched.lag,
        **talking_metrics(frames, audio, p, track, speech, expert),
    }


def talking_metrics(
    frames: np.ndarray, audio: np.ndarray, params: dict, track: LandmarkTrack, speech: np.ndarray | None = None,
    expert: SyncExpert | None = None,
) -> dict:
    """Does the mouth talk with the speech: phone_sync_corr and phone_sync_lag (the mouth opening against
    the opening the speech's phonemes ask for, `speech` or `features.phonemes.speech_openness`),
    phone_offset_ok (1 when that lag is within a frame of 0) and, with an `expert`, expert_distance,
    expert_confidence, expert_offset and expert_offset_ok (`lip_sync.expert_sync`)."""
    opening = sync.mouth_opening(track.landmarks, params["mouth_normalise_by"])
    if speech is None:
        speech = speech_openness(audio, len(frames), params["sample_rate"], params["fps"])
    phoneme = sync.av_sync(opening, speech, params["sync_max_lag"])
    result = {
        "phone_sync_corr": phoneme.correlation,
        "phone_sync_lag": phoneme.lag,
        "phone_offset_ok": float(abs(phoneme.lag) <= 1 and phoneme.correlation > 0),
    }
    if expert is not None:
        verdict = lip_sync.expert_sync(expert, frames, audio, params["sample_rate"], params["fps"], params["expert_max_offset"])
        result.update(expert_distance=verdict.distance, expert_confidence=verdict.confidence,
                      expert_offset=verdict.offset, expert_offset_ok=float(abs(verdict.offset) <= 1))  # fmt: skip
    return result


def mean_cpbd(frames: np.ndarray) -> float:
    """Mean CPBD over frames (frames without measurable edges are left out); repeated frames cost once."""
    values = []
    for index, frame in enumerate(frames):
        repeated = index and np.array_equal(frame, frames[index - 1])
        values.append(values[-1] if repeated else cpbd.cpbd_sharpness(frame))
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
