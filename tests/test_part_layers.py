"""The composite head's part layers on real GRID video: the mouth opening network, trained on two speakers,
follows the lips of a third it never heard; the mouth layer opens a real photo's mouth (dlib sees the gap
grow and the inside darken) and changes nothing away from the mouth and the jaw; the eyelid layer closes its
eyes as far as a blink counts (dlib's eye aspect ratio) and changes nothing away from them; a model bundle
keeps its layers through its file and generation uses them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.conditioning.tensors import audio_conditioning, to_image_tensor
from talking_face.evaluation import lip_sync
from talking_face.evaluation.face_track import track_landmarks
from talking_face.evaluation.sync import mouth_opening
from talking_face.features.audio import AUDIO_DEFAULTS, audio_features
from talking_face.media.audio import read_audio
from talking_face.models import MANGenerator, model_config
from talking_face.models.layer import LAYER_KEYS
from talking_face.features.eyes import eye_aspect_ratio
from talking_face.models.eyelids import EyelidShape
from talking_face.models.mouth import MouthOpening, MouthShape
from talking_face.serving.animate import animate
from talking_face.training.mouth import held_out_people, train_mouth_opening
from tests.test_metrics import grid_face_crop
from tests.tiny_models import EXTRACT, tiny_bundle

FPS, RATE, SIZE = 25, 16000, 64


def speech_and_lips(path, folder) -> str:
    """A feature file with what the mouth opening learns from (mel, MFCC, landmarks) of one real clip."""
    frames = grid_face_crop(path, size=SIZE, first_face=True)
    audio = read_audio(path, RATE)[: len(frames) * 640]
    audio = np.pad(audio, (0, len(frames) * 640 - len(audio))).astype(np.float32)
    features = audio_features(audio, len(frames), FPS, AUDIO_DEFAULTS)
    out = folder / f"{path.stem}.npz"
    np.savez(out, **features, landmarks=track_landmarks(frames).landmarks)
    return str(out)


@pytest.fixture(scope="module")
def trained(grid_dir, tmp_path_factory):
    """The opening network trained on 10 clips of GRID s1 and 6 of s4, and an unseen speaker's clip."""
    more = grid_dir.parent / "grid_more"
    if not (more / "s1").is_dir() or not (more / "s4").is_dir():
        pytest.skip(f"GRID s1 and s4 clips not found under {more}")
    folder = tmp_path_factory.mktemp("mouth")
    clips = [(speech_and_lips(path, folder), speaker) for speaker, count in (("s1", 10), ("s4", 6))
             for path in sorted((more / speaker).glob("*.mpg"))[:count]]  # fmt: skip
    state, report = train_mouth_opening(clips, {"steps": 1500}, window_frames=5, seed=0)
    return state, report, np.load(speech_and_lips(grid_dir / "pwij3p.mpg", folder))


def windows(clip, size=5) -> tuple[torch.Tensor, torch.Tensor]:
    """The mel and MFCC windows of every frame, as generation gives them to the network."""
    rows = [audio_conditioning(clip, t, size) for t in range(len(clip["mel"]))]
    return torch.stack([row["mel"] for row in rows]), torch.stack([row["mfcc"] for row in rows])


@pytest.mark.slow
def test_the_opening_network_follows_the_lips_of_a_speaker_it_never_heard(trained):
    state, report, unseen = trained
    assert report["people"] == 2 and report["held_out_people"] == 1
    assert 0.25 <= report["gain"] <= 4.0 and report["held_out_correlation"] > 0  # one person to learn from: weak
    model = MouthOpening.from_state(state)
    with torch.no_grad():
        predicted = model(*windows(unseen)).numpy()
    real = mouth_opening(unseen["landmarks"])
    print("unseen r", np.corrcoef(predicted, real)[0, 1])
    assert np.corrcoef(predicted, real)[0, 1] > 0.35  # speech tells a new face's lips when to open
    shuffled = np.random.default_rng(0).permutation(predicted)
    assert abs(np.corrcoef(shuffled, real)[0, 1]) < 0.25
    assert predicted.min() >= 0


def test_held_out_people_are_a_seeded_share_and_never_everyone():
    people = [f"p{i}" for i in range(10)] * 3
    chosen = held_out_people(people, 0.2, seed=3)
    assert len(chosen) == 2 and chosen == held_out_people(people, 0.2, seed=3)
    assert held_out_people(["only"] * 5, 0.5, seed=0) == set()
    assert len(held_out_people(["a", "b"], 0.9, seed=0)) == 1


@pytest.fixture(scope="module")
def photo(grid_dir):
    """A real GRID face (64-pixel crop, mouth closed at the start) and its landmarks."""
    frames = grid_face_crop(grid_dir / "pwij3p.mpg", n_frames=1, size=SIZE)
    return frames[0], track_landmarks(frames).landmarks[0]


def composed(photo_crop, points, opening, strength=1.0) -> np.ndarray:
    """An untrained generator (it returns the photo) with the mouth layer opened to `opening`."""
    return through_generator(photo_crop, MouthShape.from_landmarks(points).layer(torch.tensor([opening]), SIZE, strength))


def through_generator(photo_crop, layer) -> np.ndarray:
    """The frame an untrained generator (it returns its source) makes of `photo_crop` with a part layer."""
    torch.manual_seed(0)
    generator = MANGenerator(model_config("cpu", overrides={"image_size": SIZE}).generator).eval()
    source = to_image_tensor(photo_crop)[None]
    conditioning = {
        "source": source, "mfcc": torch.zeros(1, 5, 13), "eyes": torch.zeros(1, 1, SIZE, SIZE),
        "motion": torch.zeros(1, 2, SIZE, SIZE), "parts": torch.zeros(1, 1, SIZE, SIZE),
        **{key: torch.zeros(1, 5, 256) for key in ("mel", "pitch", "energy")},
        **dict(zip(LAYER_KEYS, layer)),
    }  # fmt: skip
    with torch.no_grad():
        image = generator(conditioning).image
    return ((image[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def test_the_mouth_layer_opens_a_real_mouth_and_changes_nothing_away_from_it(photo):
    crop, points = photo
    still = mouth_opening(points[None])[0]
    assert np.array_equal(composed(crop, points, 0.4, strength=0.0), crop)  # strength 0: the photo itself
    opened = composed(crop, points, 0.4)
    seen = track_landmarks(np.stack([crop, opened])).landmarks
    gaps = mouth_opening(seen)
    assert gaps[1] > still + 0.15 and gaps[1] > gaps[0] + 0.15  # dlib finds the lips apart
    lips = lip_sync.mouth_interior(crop[None], seen[1:], np.ones(1, bool))  # the photo's lips where it opens
    interior = lip_sync.mouth_interior(opened[None], seen[1:], np.ones(1, bool))
    assert interior < lips - 25  # a dark interior between the lips, not a pale patch
    centre = points[60:68].mean(0).round().astype(int)
    changed = np.abs(opened.astype(int) - crop.astype(int)).max(-1) > 2
    width = np.linalg.norm(points[54] - points[48])
    rows, cols = np.nonzero(changed)
    assert rows.min() >= points[30, 1]  # nothing above the nose's tip
    assert np.all(np.abs(cols - centre[0]) < 1.6 * width)  # nor beside the mouth and the jaw
    above_nose = (slice(0, int(points[30, 1])), slice(None))
    assert np.array_equal(opened[above_nose], crop[above_nose])


@pytest.mark.parametrize("closure", [0.6, 0.75])  # a blink's peak is 0.75 (features.eyes.BLINK_DEPTH)
def test_the_eyelid_layer_closes_a_real_photos_eyes_as_far_as_a_blink_and_nothing_else(photo, closure):
    crop, points = photo
    lids = EyelidShape.from_landmarks(points, crop)
    assert np.array_equal(through_generator(crop, lids.layer(torch.zeros(1), SIZE)), crop)  # open: the photo
    closed = through_generator(crop, lids.layer(torch.tensor([closure]), SIZE))
    ear = eye_aspect_ratio(track_landmarks(np.stack([crop, closed]), redetect_every=1).landmarks)
    assert ear[1] < 0.7 * ear[0]  # a blink as evaluation counts them (below 0.7 of the open level)
    changed = np.abs(closed.astype(int) - crop.astype(int)).max(-1) > 2
    rows, _ = np.nonzero(changed)
    eyes = points[36:48]
    assert rows.min() >= eyes[:, 1].min() - 3 and rows.max() <= eyes[:, 1].max() + 2  # only the eyes change
    lower_face = slice(int(points[30, 1]), None)
    assert np.array_equal(closed[lower_face], crop[lower_face])


def test_a_bundle_keeps_its_mouth_layer_and_generation_opens_the_mouth_with_it(photo, tmp_path):
    crop, points = photo
    without = TalkingFaceModel.from_state(tiny_bundle(0))
    torch.manual_seed(0)
    mouth = MouthOpening({"window": without.audio_window})
    mouth.closed.fill_(0.3)  # gain 0: the untrained network's own output left out, a mouth opened to 0.3
    mouth.gain.fill_(0.0)
    with_mouth = TalkingFaceModel.from_state({**tiny_bundle(0), "mouth": mouth.state(), "eyelids": True})
    loaded = TalkingFaceModel.load(with_mouth.save(tmp_path / "model.pt"))
    assert loaded.mouth is not None and loaded.eyelids and without.mouth is None and not without.eyelids
    assert torch.equal(loaded.mouth.gain, mouth.gain)
    small = np.ascontiguousarray(crop[::2, ::2])  # the tiny models' 32-pixel crop
    audio = np.zeros(RATE // 2, np.float32)
    frames = {name: np.stack([frame.image for frame in animate(model, small, audio, blink_rate=0)])
              for name, model in (("with", loaded), ("without", without))}  # fmt: skip
    difference = np.abs(frames["with"].astype(int) - frames["without"].astype(int)).max(-1).max(0)
    assert difference.max() > 30  # the mouth opened
    assert EXTRACT["crop_size"] == 32 and not difference[:8].any()  # the top of the face as it was
