"""The evaluation metrics on known cases: identical frames, a moved mouth, blur, blinks, lagged speech,
identity across GRID speakers, and the static-frame baseline on real GRID clips."""

import csv

import cv2
import numpy as np
import pytest
from skimage import data
from skimage.filters import gaussian

from talking_face.evaluation import blinks, cpbd, metrics, sync
from talking_face.evaluation.clip import evaluate_clip, static_baseline, video_metrics
from talking_face.evaluation.face_track import track_landmarks
from talking_face.evaluation.lip_reading import lip_reading_wer
from talking_face.face import detect
from talking_face.features.eyes import eye_aspect_ratio
from talking_face.media.audio import read_audio
from talking_face.media.video import read_frames

FPS = 25


def grid_face_crop(path, n_frames=None, size=256, scale=1.5, first_face=False):
    """A clip's face crop as the GRID README measures it: one square box from dlib on the first frame (with
    `first_face`, the first frame where dlib finds one: a few GRID clips start blurred)."""
    frames, _ = read_frames(path, fps=FPS)
    frames = frames[:n_frames]
    found = [detect.detect_faces(frame) for frame in (frames if first_face else frames[:1])[:25]]
    x0, y0, x1, y1 = next(boxes[0] for boxes in found if len(boxes))
    side = max(x1 - x0, y1 - y0) * scale
    left, top = int(round((x0 + x1 - side) / 2)), int(round((y0 + y1 - side) / 2))
    pad = int(side)
    padded = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    window = (slice(top + pad, top + pad + int(round(side))), slice(left + pad, left + pad + int(round(side))))
    return np.stack([cv2.resize(f[window], (size, size), interpolation=cv2.INTER_LINEAR) for f in padded])


@pytest.fixture(scope="module")
def speakers(grid_dir):
    with open(grid_dir / "speakers.csv") as handle:
        return {row["clip"]: row["speaker"] for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def clip(grid_dir):
    """The first 40 frames (1.6 s) of a real GRID clip as 256x256 crops, with its 16 kHz audio."""
    path = grid_dir / "pwij3p.mpg"
    frames = grid_face_crop(path, n_frames=40)
    audio = read_audio(path, 16000)[: 40 * 640]
    return frames, audio


@pytest.fixture(scope="module")
def clip_track(clip):
    return track_landmarks(clip[0])


def test_identical_frames_score_perfectly(clip, clip_track):
    frames = clip[0][:12]
    assert np.allclose(metrics.ssim_per_frame(frames, frames), 1.0)
    assert np.all(np.isinf(metrics.psnr_per_frame(frames, frames)))
    result = evaluate_clip(frames, frames.copy(), clip[1], frames[0], {"psnr_cap_db": 80.0})
    assert result["ssim"] == pytest.approx(1.0)
    assert result["psnr"] == 80.0
    assert result["lmd_mouth"] == 0.0 and result["lmd_all"] == 0.0
    assert result["n_frames"] == 12 and result["face_detected_fraction"] == 1.0


def test_lmd_ignores_translation_and_grows_with_a_shifted_lower_lip(clip_track):
    real = clip_track.landmarks[:1]
    assert metrics.lmd_per_frame(real, real + np.float32([7, -3]), 256)[0] == pytest.approx(0.0, abs=1e-4)
    lower_lip = [55, 56, 57, 58, 59, 65, 66, 67]
    distances = []
    for shift in (1.0, 2.0, 4.0):
        moved = real.copy()
        moved[:, lower_lip, 1] += shift
        distances.append(metrics.lmd_per_frame(real, moved, 256)[0])
        assert metrics.lmd_per_frame(real, moved, 256, metrics.ALL_POINTS)[0] < distances[-1]
    assert 0 < distances[0] < distances[1] < distances[2]
    # Landmarks of a 128-pixel crop are half as far apart and are scaled back to 256 pixels.
    moved = real.copy()
    moved[:, lower_lip, 1] += 4.0
    assert metrics.lmd_per_frame(real / 2, moved / 2, 128)[0] == pytest.approx(distances[2])


def _lower_the_lower_lip(image, landmarks, pixels):
    """Warps the image so that the region below the mouth centre moves down by up to `pixels`."""
    height, width = image.shape[:2]
    mouth = landmarks[48:68]
    centre_x, centre_y = mouth.mean(axis=0)
    mouth_width = np.ptp(mouth[:, 0])
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    below = np.clip((ys - centre_y) / 4, 0, 1) * np.exp(-np.clip(ys - centre_y - 10, 0, None) / (0.5 * mouth_width))
    weight = np.exp(-(((xs - centre_x) / (0.6 * mouth_width)) ** 2)) * below
    return cv2.remap(image, xs, ys - pixels * weight, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_lmd_grows_as_the_real_mouth_is_warped_open(clip, clip_track):
    frame, landmarks = clip[0][0], clip_track.landmarks[0]
    warped = np.stack([_lower_the_lower_lip(frame, landmarks, pixels) for pixels in (0, 4, 8)])
    tracked = track_landmarks(warped, redetect_every=1).landmarks
    distances = metrics.lmd_per_frame(np.repeat(landmarks[None], 3, axis=0), tracked, 256)
    assert distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances[0] < distances[1] < distances[2]


def _blurred(image, sigma):
    if sigma == 0:
        return image
    return np.round(gaussian(image, sigma=sigma, channel_axis=-1, preserve_range=True)).astype(np.uint8)


def test_cpbd_falls_monotonically_as_a_photo_is_blurred():
    image = data.astronaut()
    scores = [cpbd.cpbd_sharpness(_blurred(image, sigma)) for sigma in (0, 0.5, 1.0, 1.5)]
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores[0] > scores[1] > scores[2] > scores[3]


def test_cpbd_falls_as_a_grid_frame_is_blurred(clip):
    frame = clip[0][0]
    scores = [cpbd.cpbd_sharpness(_blurred(frame, sigma)) for sigma in (0, 0.5, 1.0)]
    assert all(0.0 <= score <= 1.0 for score in scores)
    assert scores[0] > scores[1] > scores[2]


def test_cpbd_of_a_flat_image_is_undefined():
    assert np.isnan(cpbd.cpbd_sharpness(np.full((64, 64, 3), 128, dtype=np.uint8)))


def _eye_landmarks(openings):
    """68-point sets whose two eyes are hexagons 30 px wide with lids `opening` px from the eye's axis."""
    points = np.zeros((len(openings), 68, 2), dtype=np.float32)
    for first, offset in ((36, 0.0), (42, 60.0)):
        for t, opening in enumerate(openings):
            points[t, first : first + 6] = [
                (offset, 0), (offset + 10, -opening), (offset + 20, -opening),
                (offset + 30, 0), (offset + 20, opening), (offset + 10, opening),
            ]
    return points


def test_blink_rate_of_a_synthetic_blink_sequence():
    openings = np.full(250, 4.5)  # 10 s at 25 fps; EAR = 4 * opening / 60 = 0.3 while open
    for start in (30, 110, 200):  # three blinks of 4 frames
        openings[start : start + 4] = 0.75
    openings[160] = 0.75  # a one-frame dip: tracking noise rather than a blink at min_frames=2
    ear = eye_aspect_ratio(_eye_landmarks(openings))
    assert ear[0] == pytest.approx(0.3) and ear[30] == pytest.approx(0.05)
    assert blinks.detect_blinks(ear, 0.2, 2) == [(30, 34), (110, 114), (200, 204)]
    assert blinks.blinks_per_second(ear, FPS, 0.2, 2) == pytest.approx(3 / 10)
    assert blinks.blinks_per_second(ear, FPS, 0.2, 1) == pytest.approx(4 / 10)
    assert blinks.blinks_per_second(ear, FPS, 0.2, 5) == 0.0


def test_blinks_are_counted_against_the_clips_own_open_level():
    """On small crops dlib keeps the lids apart: a real blink may bottom out above 0.2 while still dropping
    well below the clip's open level, which is what the relative threshold sees, at any face size."""
    openings = np.full(250, 4.5)
    for start in (30, 110, 200):
        openings[start : start + 4] = 3.0  # EAR 0.3 -> 0.2: a 64-pixel GRID blink's depth
    ear = eye_aspect_ratio(_eye_landmarks(openings))
    assert blinks.blinks_per_second(ear, FPS, blinks.EAR_THRESHOLD, 2) == 0.0  # the absolute threshold misses them
    relative = blinks.relative_ear(ear)
    assert relative[0] == pytest.approx(1.0) and relative[31] == pytest.approx(2 / 3)
    assert blinks.detect_blinks(relative, blinks.RELATIVE_THRESHOLD, 2) == [(30, 34), (110, 114), (200, 204)]
    assert np.allclose(blinks.relative_ear(0.5 * ear), relative)  # the same count at any EAR scale
    assert blinks.detect_blinks(blinks.relative_ear(np.full(100, 0.3)), blinks.RELATIVE_THRESHOLD, 2) == []


def test_ear_plot_marks_the_threshold_and_each_blink(tmp_path):
    openings = np.full(100, 4.5)
    openings[20:24] = openings[60:64] = 0.75
    ear = eye_aspect_ratio(_eye_landmarks(openings))
    figure = blinks.plot_ear_curve({"real": ear, "static": np.full(100, 0.3)}, FPS, threshold=0.2)
    axes = figure.axes[0]
    assert len(axes.lines) == 3  # two curves and the threshold
    assert len(axes.patches) == 2  # one shaded span per blink
    figure.savefig(tmp_path / "ear.png")
    assert (tmp_path / "ear.png").stat().st_size > 0


def _speech_like_audio(seconds=4.0, rate=16000, seed=0):
    """Noise whose loudness rises and falls like syllables, at random."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    loudness = np.interp(np.arange(n), np.linspace(0, n, 25), rng.uniform(0, 1, 25))
    return (rng.standard_normal(n) * 0.3 * loudness).astype(np.float32)


def test_energy_envelope_is_the_rms_of_each_frame():
    audio = np.zeros(16000 // 2, dtype=np.float32)  # 0.5 s of audio for 20 frames (0.8 s) of video
    audio[10 * 640 : 11 * 640] = 0.5 * np.sin(2 * np.pi * 500 * np.arange(640) / 16000)
    energy = sync.energy_envelope(audio, n_frames=20, sample_rate=16000, fps=25)
    assert energy.shape == (20,)
    assert energy[10] == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert np.all(np.delete(energy, 10) == 0)


@pytest.mark.parametrize("lag", [-3, 0, 2])
def test_sync_finds_the_lag_of_a_mouth_that_follows_the_energy(lag):
    energy = sync.energy_envelope(_speech_like_audio(), n_frames=100)
    padded = np.pad(energy, 5, mode="edge")
    opening = 0.05 + 0.8 * padded[5 - lag : 5 - lag + 100]  # opening[t] = a + b * energy[t - lag]
    found = sync.av_sync(opening, energy, max_lag=5)
    assert found.lag == lag
    assert found.correlation > 0.99


def test_sync_of_a_static_face_is_zero():
    energy = sync.energy_envelope(_speech_like_audio(), n_frames=100)
    assert sync.av_sync(np.full(100, 0.2), energy) == sync.SyncResult(correlation=0.0, lag=0)


def test_mouth_opening_grows_as_the_lips_part(clip_track):
    landmarks = np.repeat(clip_track.landmarks[:1], 3, axis=0)
    landmarks[1, 65:68, 1] += 3.0
    landmarks[2, 65:68, 1] += 6.0
    for normalise_by in ("mouth_width", "face_size"):
        opening = sync.mouth_opening(landmarks, normalise_by)
        assert opening[0] < opening[1] < opening[2]
        assert np.allclose(sync.mouth_opening(landmarks * 2, normalise_by), opening)


def test_real_mouth_follows_the_speech_and_the_static_face_does_not(clip, clip_track):
    frames, audio = clip
    real = video_metrics(frames, audio, track=clip_track)
    assert real["sync_corr"] > 0.3 and abs(real["sync_lag"]) <= 2
    baseline = video_metrics(static_baseline(frames[0], len(frames)), audio)
    assert baseline["sync_corr"] == 0.0 and baseline["blinks_per_s"] == 0.0


def test_identity_distance_is_small_for_the_same_speaker_and_larger_for_others(grid_dir, speakers):
    same = [clip for clip, speaker in speakers.items() if speaker == "grid_c"]
    others = [clip for clip, speaker in speakers.items() if speaker != "grid_c"][:2]
    source = grid_face_crop(grid_dir / f"{same[0]}.mpg", n_frames=1)[0]
    source_embedding = metrics.image_embedding(source)
    assert metrics.identity_distance(source_embedding, metrics.image_embedding(source)[None])["euclidean"] < 1e-6

    def distance(name):
        frames = grid_face_crop(grid_dir / f"{name}.mpg", n_frames=10)
        embeddings = metrics.sequence_embeddings(frames, track_landmarks(frames).boxes, count=3)
        return metrics.identity_distance(source_embedding, embeddings)

    same_speaker = distance(same[1])
    for other in others:
        other_speaker = distance(other)
        assert other_speaker["euclidean"] > same_speaker["euclidean"]
        assert other_speaker["cosine"] > same_speaker["cosine"]


def test_static_baseline_on_a_real_clip(clip, clip_track):
    frames, audio = clip
    baseline = static_baseline(frames[0], len(frames))
    assert baseline.shape == frames.shape and baseline.dtype == np.uint8
    assert all(np.array_equal(frame, frames[0]) for frame in baseline)
    scores = evaluate_clip(frames, baseline, audio, frames[0], real_track=clip_track)
    assert 0.0 < scores["ssim"] < 1.0
    assert np.isfinite(scores["psnr"]) and scores["psnr"] < 100.0
    assert scores["lmd_mouth"] > 0.0 and scores["lmd_all"] > 0.0
    assert scores["identity_euclidean"] == pytest.approx(0.0, abs=1e-6)
    assert scores["sync_corr"] == 0.0
    assert 0.0 <= scores["cpbd"] <= 1.0
    assert scores["wer"] is None and "not configured" in scores["wer_note"]


def test_track_landmarks_falls_back_when_no_face_is_found(clip, clip_track):
    face = clip[0][0]
    grey = np.full_like(face, 128)
    track = track_landmarks(np.stack([grey, face, face, grey]), redetect_every=1)
    assert track.detected.tolist() == [False, True, True, False]
    assert track.boxes[0].tolist() == [0, 0, 255, 255]  # no earlier face: the whole crop
    assert np.array_equal(track.boxes[3], track.boxes[1])  # the previous frame's box
    assert np.array_equal(track.landmarks[1], clip_track.landmarks[0])
    # A 128-pixel crop is landmarked at 256 and its points come back in its own pixels.
    small = track_landmarks(cv2.resize(face, (128, 128), interpolation=cv2.INTER_AREA)[None])
    assert np.abs(small.landmarks[0] * 2 - clip_track.landmarks[0]).mean() < 2.0


def test_wer_says_why_it_is_missing(tmp_path):
    result = lip_reading_wer(np.zeros((1, 8, 8, 3), np.uint8), "bin blue at f two now")
    assert result.value is None and "not configured" in result.reason
    with pytest.raises(ValueError, match="lipreader.pt: lip-reading model not found"):
        lip_reading_wer(np.zeros((1, 8, 8, 3), np.uint8), "bin blue", tmp_path / "lipreader.pt")
    (tmp_path / "lipreader.pt").write_bytes(b"weights")
    with pytest.raises(ValueError, match="not supported"):
        lip_reading_wer(np.zeros((1, 8, 8, 3), np.uint8), "bin blue", tmp_path / "lipreader.pt")


def test_evaluate_clip_rejects_sequences_of_different_shapes():
    frames = np.zeros((5, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="must both be"):
        evaluate_clip(frames, frames[:4], np.zeros(3200, np.float32), frames[0])
