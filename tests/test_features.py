"""Feature extraction on a real GRID clip and on synthetic inputs whose true values are known."""

from __future__ import annotations

import numpy as np
import pytest

from talking_face.face.heatmaps import CONTOUR_GROUPS, contour_heatmaps
from talking_face.face.track import FaceTrackError, detect_track
from talking_face.features.audio import audio_features, pitch_track, quantize_energy, stft_energy
from talking_face.features.extract import extract_clip, feature_summary, shape_problems
from talking_face.features.flow import farneback_flow, flow_to_color
from talking_face.features.schema import FEATURE_KEYS, HEATMAP_SIZE, N_HEATMAPS
from talking_face.media.errors import MediaError
from talking_face.media.video import read_frames, write_video

RATE, FPS, HOP = 16000, 25, 640


@pytest.fixture(scope="module")
def grid_clip(grid_dir):
    path = grid_dir / "bbaf2n.mpg"
    return path, extract_clip(path, path, {"crop_size": 64})


def harmonic_tone(f0: float, seconds: float, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    return (amplitude * tone / np.abs(tone).max()).astype(np.float32)


def test_grid_clip_follows_the_schema_with_one_length(grid_clip):
    path, features = grid_clip
    n_frames = len(read_frames(path, fps=25)[0])
    assert set(FEATURE_KEYS) <= set(features)
    assert shape_problems(features) == []
    for key in FEATURE_KEYS:
        if key not in ("fps", "audio"):
            assert len(features[key]) == n_frames, key
    assert len(features["audio"]) == n_frames * HOP
    assert features["frames"].shape[1:] == (64, 64, 3)
    assert features["heatmaps"].shape[1:] == (N_HEATMAPS, HEATMAP_SIZE, HEATMAP_SIZE)


def test_grid_landmarks_sit_inside_the_crop_on_a_face(grid_clip):
    _, features = grid_clip
    points = features["landmarks"]
    assert (points >= 0).all() and (points < 64).all()
    # dlib's order: eyes (36-47) above the nose tip (33) above the mouth (48-67) above the chin (8).
    eyes_y, nose_y = points[:, 36:48, 1].mean(), points[:, 33, 1].mean()
    mouth_y, chin_y = points[:, 48:68, 1].mean(), points[:, 8, 1].mean()
    assert eyes_y < nose_y < mouth_y < chin_y
    summary = feature_summary("bbaf2n", features)
    assert summary["shapes_ok"] and summary["nan_count"] == 0 and summary["landmarks_inside"] == 1.0
    assert 0.05 < summary["voiced_fraction"] < 0.95  # a spoken sentence with pauses


def _distance_to_polyline(pixels: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance of each pixel centre to the segments joining consecutive points."""
    best = np.full(len(pixels), np.inf)
    for a, b in zip(points[:-1], points[1:]):
        ab = b - a
        t = np.clip(((pixels - a) @ ab) / max(ab @ ab, 1e-9), 0, 1)
        best = np.minimum(best, np.linalg.norm(pixels - (a + t[:, None] * ab), axis=1))
    return best


def test_heatmaps_peak_on_their_contours(grid_clip):
    _, features = grid_clip
    heatmaps = features["heatmaps"] / 255.0
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1
    rows, cols = np.mgrid[0:HEATMAP_SIZE, 0:HEATMAP_SIZE]
    pixels = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    scale = HEATMAP_SIZE / 64
    for t in (0, 40):
        points = (features["landmarks"][t] + 0.5) * scale - 0.5
        for channel, indices in enumerate(CONTOUR_GROUPS.values()):
            heat = heatmaps[t, channel].ravel()
            distance = _distance_to_polyline(pixels, points[list(indices)])
            assert heat.max() == 1.0
            assert distance[heat.argmax()] < 1.5
            assert heat[distance < 4].sum() / heat.sum() > 0.9


def test_heatmap_of_a_point_set_is_centred_on_it():
    points = np.zeros((1, 68, 2), dtype=np.float32)
    points[0, :, 0] = np.linspace(10, 50, 68)  # a horizontal line at y = 20.3 in a 64-pixel crop
    points[0, :, 1] = 20.3
    heatmaps = contour_heatmaps(points, crop_size=64, size=96, sigma=1.5)
    brow = heatmaps[0, list(CONTOUR_GROUPS).index("brow_left")].astype(np.float64)
    centre_row = (brow.sum(axis=1) * np.arange(96)).sum() / brow.sum()
    # Pixel centres scale about the half-pixel: y = 20.3 in the crop is row 30.7 of the heatmap.
    assert abs(centre_row - ((20.3 + 0.5) * 1.5 - 0.5)) < 0.1


def test_farneback_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    texture = (rng.random((24, 24)) * 255).astype(np.uint8)
    import cv2

    base = cv2.resize(texture, (96, 96), interpolation=cv2.INTER_CUBIC)
    base = cv2.GaussianBlur(base, (0, 0), 1.0)
    dx, dy = 3, -2
    moved = np.roll(base, (dy, dx), axis=(0, 1))
    crops = np.stack([np.repeat(base[..., None], 3, axis=2), np.repeat(moved[..., None], 3, axis=2)])
    flow = farneback_flow(crops).astype(np.float32)
    inner = flow[0, :, 16:-16, 16:-16]
    assert np.median(inner[0]) == pytest.approx(dx, abs=0.25)
    assert np.median(inner[1]) == pytest.approx(dy, abs=0.25)
    assert not flow[1].any()  # the last frame has no successor
    # Computed on a half-size crop and scaled back up, the shift is still recovered.
    coarse = farneback_flow(crops, max_size=48).astype(np.float32)[0, :, 16:-16, 16:-16]
    assert np.median(coarse[0]) == pytest.approx(dx, abs=0.4)
    picture = flow_to_color(flow[0])
    assert picture.shape == (96, 96, 3) and picture.dtype == np.uint8 and picture.max() > 200


@pytest.mark.parametrize("f0", [110.0, 150.0, 240.0])
def test_pitch_of_a_harmonic_tone_is_within_2_percent(f0):
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), harmonic_tone(f0, 1.5), np.zeros(RATE // 2, np.float32)])
    features = audio_features(audio, n_frames=len(audio) // HOP, fps=FPS)
    voiced = features["f0"] > 0
    tone_frames = slice(int(0.7 * FPS), int(1.8 * FPS))
    assert voiced[tone_frames].all()
    assert np.median(features["f0"][voiced]) == pytest.approx(f0, rel=0.02)
    silence = slice(0, int(0.3 * FPS))
    assert not voiced[silence].any() and (features["pitch"][silence] == 0).all()
    assert (features["pitch"][tone_frames] > 0).all()


def test_pitch_levels_rise_with_frequency():
    levels = []
    for f0 in (100.0, 200.0, 400.0):
        features = audio_features(harmonic_tone(f0, 1.0), n_frames=25, fps=FPS)
        levels.append(np.median(features["pitch"][5:20]))
    assert levels[0] < levels[1] < levels[2]
    assert levels[2] - levels[1] == pytest.approx(levels[1] - levels[0], abs=1)  # log-spaced


def test_energy_levels_are_monotone_in_loudness():
    tone = harmonic_tone(200.0, 1.0, amplitude=1.0)
    levels = []
    for gain in (0.001, 0.01, 0.1, 0.5):
        features = audio_features(tone * gain, n_frames=25, fps=FPS)
        levels.append(np.median(features["energy"][5:20]))
    assert all(a < b for a, b in zip(levels, levels[1:]))
    assert quantize_energy(np.array([0.0]), 0.01, 1000.0)[0] == 0


def test_the_window_of_frame_t_is_centred_on_t_over_fps():
    audio = np.zeros(2 * RATE, np.float32)
    centre = 20 * HOP  # frame 20 is shown at 0.8 s
    audio[centre - 80 : centre + 80] = harmonic_tone(300.0, 0.01, amplitude=0.8)
    features = audio_features(audio, n_frames=50, fps=FPS)
    assert np.argmax(features["energy_raw"]) == 20
    assert np.argmax(features["mel"].mean(axis=1)) == 20
    # Frames 19 and 21 are equally far from the burst, so they hear it equally.
    assert features["mel"][19].mean() == pytest.approx(features["mel"][21].mean(), abs=0.5)


def test_pitch_track_frames_follow_the_hop():
    f0 = pitch_track(harmonic_tone(150.0, 1.0), RATE, 256, 60.0, 500.0)
    assert len(f0) == RATE // 256 + 1
    assert len(stft_energy(harmonic_tone(150.0, 1.0), 1024, 256)) == len(f0)


def test_a_30_fps_clip_is_resampled_to_25_fps(grid_dir, tmp_path):
    frames, _ = read_frames(grid_dir / "bbaf2n.mpg", fps=30)  # 3 s at 30 fps
    path = write_video(tmp_path / "thirty.mp4", frames, fps=30, audio=harmonic_tone(150.0, 3.0))
    features = extract_clip(path, path, {"crop_size": 32})
    assert len(features["frames"]) == pytest.approx(75, abs=1)
    assert len(features["mel"]) == len(features["frames"]) == len(features["flow"])
    assert float(features["fps"]) == 25.0


def test_frames_without_a_face_get_boxes_from_their_neighbours(grid_dir):
    frames, _ = read_frames(grid_dir / "bbaf2n.mpg", fps=25)
    truth = detect_track(frames, detect_every=1)
    blanked = frames.copy()
    blanked[20:30] = 128  # two of the 16 sampled frames (every 5th) lose the face
    track = detect_track(blanked, detect_every=5, max_faceless_fraction=0.2)
    assert np.abs(track[20:30] - truth[20:30]).max() < 8  # px, on a 125 px face
    with pytest.raises(FaceTrackError, match="no face found in 2 of 16 sampled frames"):
        detect_track(blanked, detect_every=5, max_faceless_fraction=0.1)


def test_a_clip_without_a_face_is_rejected_with_the_reason(tmp_path):
    rng = np.random.default_rng(1)
    noise = (rng.random((20, 96, 128, 3)) * 255).astype(np.uint8)
    path = write_video(tmp_path / "noise.mp4", noise, fps=25, audio=np.zeros(RATE, np.float32))
    with pytest.raises(MediaError, match="no face found in .* sampled frames") as caught:
        extract_clip(path, path, {"crop_size": 32})
    assert str(path) in str(caught.value)
