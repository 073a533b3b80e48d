"""The built-in sample dataset: determinism, espeak-ng sentences whose phoneme timing pocketsphinx hears too,
a mouth that opens by viseme and shuts for p, b and m, blinks, a face dlib finds, and the mp4 round trip
(with its phoneme CSV) through the Kedro datasets."""

from dataclasses import replace

import av
import numpy as np
import pandas as pd
import pytest
import pyworld
from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from talking_face.datasets import TranscribedVideoDataset, VideoDataset
from talking_face.datasets.transcribed import phonemes_path
from talking_face.face.detect import detect_faces, landmarks
from talking_face.features.eyes import blink_onsets
from talking_face.features.phonemes import Phone, openness_track, speech_openness
from talking_face.sample import make_clip, render_clip, sample_plan
from talking_face.sample.contact_sheet import contact_sheet, pick_frames
from talking_face.sample.espeak import speak
from talking_face.sample.motion import mouth_opening
from talking_face.sample.sentences import SENTENCES
from talking_face.sample.speech import Voice, say, synthesize

FPS, RATE = 25, 16000


def _eye_aspect_ratio(points: np.ndarray) -> float:
    def one(eye: np.ndarray) -> float:
        return (np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])) / (2 * np.linalg.norm(eye[0] - eye[3]))

    return (one(points[36:42]) + one(points[42:48])) / 2


def _track(frames: np.ndarray) -> list[np.ndarray | None]:
    """dlib's 68 landmarks per frame, None where no face is found."""
    tracked = []
    for frame in frames:
        boxes = detect_faces(frame)
        tracked.append(landmarks(frame, boxes[0]) if len(boxes) else None)
    return tracked


@pytest.fixture(scope="module")
def speaker():
    """The first default speaker, blinking at the top of the allowed range so a short clip has blinks."""
    return replace(sample_plan(n_speakers=1, clips_per_speaker=1)[0].speaker, blink_rate=0.5)


@pytest.fixture(scope="module")
def tracked_clip(speaker):
    clip = render_clip(speaker, seed=3, seconds=3.0, fps=FPS, sample_rate=RATE)  # its schedule holds two blinks
    return clip, _track(clip.frames)


def test_same_seed_gives_identical_clips_and_another_seed_does_not(speaker):
    frames_a, audio_a = make_clip(speaker, seed=3, seconds=1.0)
    frames_b, audio_b = make_clip(speaker, seed=3, seconds=1.0)
    frames_c, audio_c = make_clip(speaker, seed=4, seconds=1.0)
    assert frames_a.dtype == np.uint8 and frames_a.shape == (25, 256, 256, 3)
    assert audio_a.dtype == np.float32 and audio_a.shape == (RATE,)
    assert np.array_equal(frames_a, frames_b) and np.array_equal(audio_a, audio_b)
    assert not np.array_equal(audio_a, audio_c) and not np.array_equal(frames_a, frames_c)
    assert sample_plan(seed=7) == sample_plan(seed=7) != sample_plan(seed=8)


def test_plan_lays_out_speakers_and_clips_with_distinct_seeds():
    plan = sample_plan(n_speakers=3, clips_per_speaker=2, seconds=1.5, seed=1)
    assert [spec.partition_id for spec in plan] == [f"spk0{s}/clip0{c}" for s in (1, 2, 3) for c in (1, 2)]
    assert len({spec.seed for spec in plan}) == len(plan)
    assert len({spec.speaker.look for spec in plan}) == 3
    assert len({spec.speaker.voice for spec in plan}) == 3
    assert all(0.2 <= spec.speaker.blink_rate <= 0.5 for spec in plan)


def test_every_sentence_is_spoken_as_arpabet_phonemes_in_time_order():
    for voice in (Voice("m3"), Voice("f2", pitch=70)):
        for sentence in SENTENCES:
            samples, rate, phones = say(sentence, voice)
            assert phones, sentence
            starts = np.array([phone.start_s for phone in phones])
            assert np.all(np.diff(starts) > 0) and all(phone.end_s > phone.start_s for phone in phones), sentence
            assert phones[-1].end_s <= len(samples) / rate + 1e-9


@pytest.mark.parametrize("voice", [Voice("m3", pitch=30), Voice("f4", pitch=70)], ids=["male", "female"])
def test_pocketsphinx_hears_the_phonemes_espeak_says_when_it_says_them(voice):
    speech = synthesize(3.0, seed=5, voice=voice)
    assert len(speech.samples) == 3 * RATE and np.abs(speech.samples).max() <= 1.0
    assert speech.sentences[0] in SENTENCES and speech.phones[-1].end_s <= 3.0
    n_frames = 3 * FPS
    said = openness_track(speech.phones, n_frames, FPS)
    heard = speech_openness(speech.samples, n_frames, RATE, FPS)
    assert np.corrcoef(said, heard)[0, 1] > 0.5, "the recogniser's openness should follow espeak's own phonemes"


def test_pyworld_finds_voicing_in_the_vowels_and_none_in_the_pauses():
    speech = synthesize(3.0, seed=2, voice=Voice("f1", pitch=60))
    f0, times = pyworld.harvest(speech.samples.astype(np.float64), RATE, frame_period=10.0)
    label = np.array([next((p.label for p in speech.phones if p.start_s <= t < p.end_s), "") for t in times])
    vowels = np.isin(label, ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"])
    pauses = label == ""
    assert vowels.mean() > 0.2 and pauses.mean() > 0.1
    assert (f0[vowels] > 0).mean() > 0.9 and (f0[pauses] > 0).mean() < 0.1


def test_espeak_refuses_a_voice_it_does_not_have_and_speech_needs_a_length():
    with pytest.raises(ValueError, match="no voice 'xx-nowhere'"):
        speak("Hello.", voice="xx-nowhere")
    with pytest.raises(ValueError, match="positive number of seconds, got 0"):
        synthesize(0, seed=1)


def test_mouth_shuts_for_a_bilabial_and_ramps_instead_of_snapping():
    phones = [Phone("AA", 0.1, 0.4), Phone("M", 0.4, 0.44), Phone("AA", 0.44, 0.8), Phone("IY", 0.8, 1.0)]
    opening = mouth_opening(phones, n_frames=30, fps=FPS)
    assert opening[0] == 0 and opening[6:9].max() == pytest.approx(1.0) and opening[22:25].max() == pytest.approx(0.4)
    assert opening[10] < 0.1, "lips should close for the m"
    assert np.abs(np.diff(opening)).max() <= 0.4 + 1e-6, "no faster than the full range in 0.1 s (40 ms frames)"


def test_dlib_finds_the_face_in_nearly_every_frame_of_every_speaker():
    for spec in sample_plan(clips_per_speaker=1, seconds=1.0):
        frames, _ = make_clip(spec.speaker, spec.seed, spec.seconds)
        found = np.mean([len(detect_faces(frame)) > 0 for frame in frames])
        assert found >= 0.95, f"{spec.partition_id}: face found in {found:.0%} of frames"


def test_the_rendered_mouth_opens_by_viseme_and_shuts_for_p_b_and_m(tracked_clip):
    clip, tracked = tracked_clip
    ok = np.array([points is not None for points in tracked])
    assert ok.mean() >= 0.95
    points = np.stack([p for p in tracked if p is not None])
    eye_distance = np.linalg.norm(points[:, 36:42].mean(1) - points[:, 42:48].mean(1), axis=1)
    inner_gap = np.linalg.norm(points[:, [61, 62, 63]] - points[:, [67, 66, 65]], axis=2).mean(1) / eye_distance
    assert np.corrcoef(inner_gap, clip.opening[ok])[0, 1] > 0.8
    bilabial_frames = sorted({int((p.start_s + p.end_s) / 2 * FPS) for p in clip.phones if p.label in {"P", "B", "M"}})
    assert len(bilabial_frames) >= 2
    assert clip.opening[bilabial_frames].max() < 0.2, "every p, b and m should nearly shut the mouth"
    wide = clip.opening[ok] > 0.6
    shut = np.isin(np.flatnonzero(ok), bilabial_frames)
    assert wide.any() and shut.any()
    assert inner_gap[wide].mean() - inner_gap[shut].mean() > 0.15, "open vowels should show a clearly open mouth"


def test_blink_schedule_averages_the_configured_rate():
    for rate in (0.2, 0.35, 0.5):
        onsets = blink_onsets(2000.0, rate, np.random.default_rng(0))
        assert len(onsets) / 2000.0 == pytest.approx(rate, rel=0.1)
        assert np.diff(onsets).min() >= 0.5 / rate


def test_eye_aspect_ratio_dips_once_per_scheduled_blink(tracked_clip):
    clip, tracked = tracked_clip
    ear = np.array([_eye_aspect_ratio(p) if p is not None else np.nan for p in tracked])
    closed = ear < 0.75 * np.nanmedian(ear)
    starts = np.flatnonzero(closed & ~np.r_[False, closed[:-1]])
    ends = np.flatnonzero(closed & ~np.r_[closed[1:], False])
    shut = clip.closure > 0.5
    assert len(clip.blink_times) >= 2
    assert len(starts) == int((shut & ~np.r_[False, shut[:-1]]).sum()), f"EAR dips at frames {starts}"
    for start, end in zip(starts, ends):
        assert clip.closure[start : end + 1].max() > 0.5, f"EAR dip at frames {start}-{end} without a blink"


def test_video_dataset_round_trip_is_h264_aac_at_25_fps_in_sync(tmp_path, speaker):
    clip = render_clip(speaker, seed=2, seconds=1.5)
    path = tmp_path / "spk01" / "clip01.mp4"
    dataset = VideoDataset(filepath=str(path))
    dataset.save((clip.frames, clip.audio, FPS, RATE))
    assert dataset.exists() and not list(path.parent.glob(".part-*"))
    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
        assert float(video.average_rate) == FPS and audio.codec_context.sample_rate == RATE
    loaded = dataset.load()
    assert loaded.frames.shape == clip.frames.shape and loaded.fps == FPS
    assert np.abs(loaded.frames.astype(int) - clip.frames).mean() < 5
    assert abs(len(loaded.audio) - len(clip.audio)) <= 1024, "audio duration should match the video's"
    n = len(clip.audio)
    lags = np.arange(-256, 257)
    xcorr = [np.dot(clip.audio[256 : n - 256], loaded.audio[256 + lag : n - 256 + lag]) for lag in lags]
    assert abs(lags[int(np.argmax(xcorr))]) <= 2, "the decoded audio should not lag the video"


def test_partitioned_dataset_lays_clips_out_as_speaker_folders_with_their_phonemes(tmp_path, speaker):
    clip = render_clip(speaker, seed=1, seconds=1.0)
    frames = clip.frames
    partitions = PartitionedDataset(path=str(tmp_path), dataset=TranscribedVideoDataset, filename_suffix=".mp4")
    partitions.save({"spk01/clip01": lambda: (clip.frames, clip.audio, FPS, RATE, clip.phones)})
    video = tmp_path / "spk01" / "clip01.mp4"
    assert video.is_file() and phonemes_path(video) == tmp_path / "spk01" / "clip01.phonemes.csv"
    table = pd.read_csv(phonemes_path(video))
    assert list(table.columns) == ["phoneme", "start_s", "end_s"]
    assert list(table["phoneme"]) == [p.label for p in clip.phones]
    assert np.allclose(table["start_s"], [p.start_s for p in clip.phones], atol=1e-4)
    loaded = partitions.load()
    assert list(loaded) == ["spk01/clip01"]
    assert loaded["spk01/clip01"]().frames.shape == frames.shape


def test_video_dataset_refuses_bad_clips_naming_the_file(tmp_path):
    path = tmp_path / "bad.mp4"
    with pytest.raises(DatasetError, match=r"bad\.mp4: frames must be uint8"):
        VideoDataset(filepath=str(path)).save((np.zeros((5, 32, 32, 3), np.float32), np.zeros(800, np.float32), FPS, RATE))
    with pytest.raises(DatasetError, match=r"bad\.mp4: audio must be mono"):
        VideoDataset(filepath=str(path)).save((np.zeros((5, 32, 32, 3), np.uint8), np.zeros((2, 800), np.float32), FPS, RATE))
    with pytest.raises(DatasetError, match=r"bad\.mp4: expected \(frames, audio, fps, sample_rate, phones\)"):
        TranscribedVideoDataset(filepath=str(path)).save((np.zeros((5, 32, 32, 3), np.uint8), np.zeros(800, np.float32), FPS, RATE))
    assert not path.exists() and not list(tmp_path.iterdir())


def test_contact_sheet_shows_the_loudest_frame_of_each_clip(tracked_clip):
    clip, _ = tracked_clip
    chosen = pick_frames(clip.loudness, 6)
    assert len(chosen) == 6 and np.all(np.diff(chosen) > 0) and int(np.argmax(clip.loudness)) in chosen
    figure = contact_sheet({"a/1": (clip.frames, clip.audio, FPS, RATE), "b/1": (clip.frames, clip.audio, FPS, RATE)})
    assert len([ax for ax in figure.axes if ax.images]) == 12
