"""Several real corpora in one run (../shared/data): unique speakers across corpora, declared test sets,
one person under two names kept on one side, the awkward files (a damaged GRID packet, CREMA-D's 29.97 fps
FLV + MP3, a VoxCeleb2 interview) and evaluation reported per corpus."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml

from talking_face.evaluation.report import metrics_table
from talking_face.evaluation.run import evaluate_model, select_clips
from talking_face.evaluation.summary import summarise
from talking_face.features.extract import extract_clip, feature_params_hash
from talking_face.ingest.people import assign_people
from talking_face.ingest.probe import probe_clips
from talking_face.ingest.sources import discover_sources, raw_sources
from talking_face.ingest.split import assign_splits
from talking_face.media.video import read_frames
from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.validation.expectations import validate_manifest
from tests.test_ingest_grid import PARAMS
from tests.tiny_models import EXTRACT, tiny_bundle

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DAMAGED = SHARED / "grid_more/s4/bbaf2a.mpg"
CREMA_D = SHARED / "cremad/1001_DFA_ANG_XX.flv"
VOXCELEB = SHARED / "voxceleb2/vox_00010/00010.mp4"


@pytest.fixture(scope="module")
def shared() -> Path:
    for folder in ("grid", "grid_more/s1", "grid_more/s4", "voxceleb2", "cremad"):
        if not (SHARED / folder).is_dir():
            pytest.skip(f"real recordings not found at {SHARED / folder} (../shared/data beside the repository)")
    return SHARED


def frame_of(candidates) -> pd.DataFrame:
    return pd.DataFrame([asdict(candidate) for candidate in candidates])


def test_two_corpora_in_one_run_keep_speakers_apart(shared, tmp_path):
    """GRID's own speakers.csv is used without being named, from a folder below the raw folder; two corpora
    with the same speaker folder name stay two speakers."""
    grid = tmp_path / "raw/grid"
    grid.mkdir(parents=True)
    for clip in sorted(shared.glob("grid/*.mpg"))[:4]:
        (grid / clip.name).symlink_to(clip)
    shutil.copy(shared / "grid/speakers.csv", grid)
    other = tmp_path / "other/s1"
    other.mkdir(parents=True)
    (other / "bbaf2n.mpg").symlink_to(shared / "grid/bbaf2n.mpg")
    (tmp_path / "mine/s1").mkdir(parents=True)
    (tmp_path / "mine/s1/00010.mp4").symlink_to(VOXCELEB)

    params = {"raw_dirs": [{"path": str(tmp_path / "raw"), "corpus": "grid"}, str(tmp_path / "other"),
                           {"path": str(tmp_path / "mine")}]}
    candidates, rejections = discover_sources(raw_sources(params))
    clips = frame_of(candidates)
    assert rejections == []
    mapped = pd.read_csv(shared / "grid/speakers.csv").set_index("clip")["speaker"]
    grid_rows = clips[clips["corpus"] == "grid"]
    assert set(grid_rows["speaker"]) == {mapped[Path(path).stem] for path in grid_rows["path"]}
    assert set(clips.loc[clips["corpus"] == "other", "speaker"]) == {"other_s1"}
    assert set(clips.loc[clips["corpus"] == "mine", "speaker"]) == {"mine_s1"}
    assert clips["clip_id"].is_unique and len(clips) == 6

    # One folder, as before: speakers keep their own names and the corpus is the folder's name.
    alone, _ = discover_sources(raw_sources({"raw_dir": str(tmp_path / "other")}))
    assert [(c.speaker, c.corpus, c.clip_id) for c in alone] == [("s1", "other", "s1_bbaf2n")]


@pytest.fixture(scope="module")
def people(shared) -> pd.DataFrame:
    """GRID's grid_a (bbaf2n) is grid_more's s1, grid_f (lwbsza) is s4; grid_b is someone else."""
    params = {"raw_dirs": [{"path": str(shared / "grid"), "corpus": "grid"},
                           {"path": str(shared / "grid_more"), "corpus": "grid_more"}]}
    candidates, _ = discover_sources(raw_sources(params))
    clips = frame_of(candidates)
    keep = clips["speaker"].isin(["grid_a", "grid_b", "grid_f"]) | clips["clip_id"].isin(
        sorted(clips.loc[clips["speaker"] == "grid_more_s1", "clip_id"])[:3]
        + sorted(clips.loc[clips["speaker"] == "grid_more_s4", "clip_id"])[:2])
    with_people, matches = assign_people(clips[keep].reset_index(drop=True), 0.45)
    return with_people.assign(matches=[matches] * len(with_people))


def test_one_person_under_two_names_is_found_by_face(people):
    person = people.drop_duplicates("speaker").set_index("speaker")["person"]
    assert person["grid_a"] == person["grid_more_s1"] and person["grid_f"] == person["grid_more_s4"]
    assert len({person["grid_a"], person["grid_f"], person["grid_b"]}) == 3
    matched = {tuple(match["speakers"]) for match in people["matches"].iloc[0]}
    assert matched == {("grid_a", "grid_more_s1"), ("grid_f", "grid_more_s4")}


def test_declared_test_corpus_never_leaks_a_training_person(people):
    split = assign_splits(people, 0.2, 0.1, seed=7, test_corpora=["grid"])
    by_speaker = split.groupby("speaker")["split"].agg(set)
    # grid_b is unseen; grid_a and grid_f are s1 and s4, who train: their clips are seen-speaker tests.
    assert by_speaker["grid_b"] == {"test_unseen"}
    assert by_speaker["grid_a"] == {"test_seen"} and by_speaker["grid_f"] == {"test_seen"}
    unseen_people = set(split.loc[split["split"] == "test_unseen", "person"])
    assert not unseen_people & set(split.loc[split["split"] == "train", "person"])


def test_a_named_test_speaker_takes_its_whole_person_out_of_training(people):
    split = assign_splits(people, 0.2, 0.1, seed=7, test_speakers=["grid_more_s1"])
    by_speaker = split.groupby("speaker")["split"].agg(set)
    assert by_speaker["grid_more_s1"] == {"test_unseen"} and by_speaker["grid_a"] == {"test_unseen"}
    assert "train" in by_speaker["grid_more_s4"] and "train" in by_speaker["grid_b"]
    # Without the face check, grid_a would be a separate person and stay in training.
    apart = assign_splits(people.assign(person=people["speaker"]), 0.2, 0.0, seed=7, test_speakers=["grid_more_s1"])
    assert set(apart.loc[apart["speaker"] == "grid_a", "split"]) == {"train"}


def test_unknown_test_speaker_is_a_clear_error(people):
    with pytest.raises(Exception, match="test_speakers names speakers that no clip has: nobody"):
        assign_splits(people, 0.2, 0.1, seed=7, test_speakers=["nobody"])


def _decoded_times(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    frames, times = [], []
    with av.open(str(path)) as container:
        try:
            for frame in container.decode(container.streams.video[0]):
                frames.append(frame.to_ndarray(format="rgb24"))
                times.append(frame.time)
        except av.FFmpegError:
            pass
    return frames, np.asarray(times)


@pytest.fixture(scope="module")
def awkward(shared) -> dict:
    """The three awkward clips through the real ingestion checks and feature extraction."""
    params = {"raw_dirs": [{"path": str(DAMAGED.parent.parent), "corpus": "grid_more"},
                           {"path": str(CREMA_D.parent), "corpus": "cremad"},
                           {"path": str(VOXCELEB.parent.parent), "corpus": "voxceleb2"}]}
    candidates, _ = discover_sources(raw_sources(params))
    chosen = [c for c in candidates if Path(c.path) in (DAMAGED, CREMA_D, VOXCELEB)]
    probed, unreadable = probe_clips(chosen, progress=False)
    accepted, rejected, _ = validate_manifest(probed, PARAMS)
    features = {Path(row.path): extract_clip(row.path, row.audio_path, EXTRACT) for row in accepted.itertuples()}
    return {"accepted": accepted, "rejected": rejected, "unreadable": unreadable, "features": features}


def test_awkward_real_files_are_accepted_and_normalised(awkward):
    assert awkward["unreadable"] == [] and awkward["rejected"].empty
    assert len(awkward["accepted"]) == 3
    for path, features in awkward["features"].items():
        n_frames = len(features["frames"])
        assert features["fps"] == 25.0
        assert len(features["audio"]) == n_frames * 640  # 16 kHz: 640 samples per 25 fps frame
        assert all(len(features[key]) == n_frames for key in ("landmarks", "flow", "mel", "pitch", "energy"))


def test_damaged_grid_clip_keeps_its_frames_on_their_own_times(awkward):
    """71 of 75 frames decode; the gap is filled from the nearest frame and the frames after it stay on time."""
    decoded, times = _decoded_times(DAMAGED)
    assert len(decoded) == 71
    frames, fps = read_frames(DAMAGED, 25.0)
    assert fps == 25.0 and len(frames) == 75 == len(awkward["features"][DAMAGED]["frames"])
    for index in range(75):
        nearest = int(np.argmin(np.abs(times - index / 25.0)))
        assert np.array_equal(frames[index], decoded[nearest]), index
    assert np.array_equal(frames[-1], decoded[-1])


def test_crema_d_flv_is_resampled_to_25_fps_on_the_audio_clock(awkward):
    decoded, times = _decoded_times(CREMA_D)
    frames, _ = read_frames(CREMA_D, 25.0)
    assert len(decoded) == 67 and times[0] > 0  # 29.97 fps VP6 whose first frame is shown at 27 ms
    assert len(frames) == round((times[-1] + 1 / 29.97) * 25)  # 2.26 s of video at 25 fps
    for index in (0, 10, len(frames) - 1):
        assert np.array_equal(frames[index], decoded[int(np.argmin(np.abs(times - index / 25.0)))])
    row = awkward["accepted"].set_index("path").loc[str(CREMA_D)]
    assert "fps_resample" in row["needs"] and "audio_resample" in row["needs"]


def test_voxceleb_interview_is_tracked_through_its_motion(awkward):
    features = awkward["features"][VOXCELEB]
    assert len(features["frames"]) == 106
    boxes = features["boxes"]
    assert np.isfinite(boxes).all() and np.ptp(boxes[:, 0]) > 0  # the crop follows the moving head


def test_evaluation_reports_one_row_per_corpus(awkward, tmp_path):
    summary_rows, paths = [], {}
    for path, corpus in ((DAMAGED, "grid_more"), (VOXCELEB, "voxceleb2")):
        clip_id = f"{corpus}_{path.stem}"
        header = {"content_hash": clip_id, "params_hash": feature_params_hash(EXTRACT)}
        np.savez(tmp_path / f"{clip_id}.npz", **awkward["features"][path], **header)
        paths[clip_id] = str(tmp_path / f"{clip_id}.npz")
        summary_rows.append({"clip_id": clip_id, "speaker": clip_id, "corpus": corpus, "split": "test_unseen"})
    clips = select_clips(pd.DataFrame(summary_rows), paths, ["test_unseen"])
    assert {clip["corpus"] for clip in clips} == {"grid_more", "voxceleb2"}
    result = evaluate_model(TalkingFaceModel.from_state(tiny_bundle(0)), clips)
    summary = summarise(result.per_clip, ["test_unseen"])
    assert summary["test_unseen.n_clips"] == 2
    for corpus in ("grid_more", "voxceleb2"):
        assert summary[f"test_unseen/{corpus}.n_clips"] == 1
        for system in ("model", "baseline"):
            assert f"test_unseen/{corpus}.{system}.ssim" in summary
        assert f"test_unseen/{corpus}.real.sync_corr" in summary
    # Pooled figures are the clips' mean; each corpus keeps its own.
    pooled = summary["test_unseen.baseline.psnr"]
    per_corpus = [summary[f"test_unseen/{corpus}.baseline.psnr"] for corpus in ("grid_more", "voxceleb2")]
    assert pooled == pytest.approx(np.mean(per_corpus)) and per_corpus[0] != per_corpus[1]
    table = metrics_table(summary, ["test_unseen"])
    assert "corpus grid_more: 1 clip" in table and "corpus voxceleb2: 1 clip" in table


@pytest.mark.slow
def test_the_real_data_run_configuration_keeps_unseen_people_out_of_training(shared, tmp_path):
    """`kedro run --config real.yml` ingests with conf/real: GRID's grid_a/grid_f (s1/s4, who train) are
    never unseen, and at least three unseen VoxCeleb2 people and the unseen GRID speakers remain."""
    from tests.project import make_project, run_pipeline

    folder = make_project(tmp_path)
    real = yaml.safe_load((folder / "conf/real/parameters.yml").read_text())
    # The configuration's folders, resolved from the repository rather than the throwaway copy. The people/
    # corpora only ever train (ingesting their 164 clips takes minutes): none is a test corpus.
    entries = real["ingest"]["raw_dirs"]
    learn_from = [entry for entry in entries if Path(entry["path"]).parent.name == "people"]
    assert {entry["corpus"] for entry in learn_from} == {f"people_{name}" for name in ("grid", "voxceleb2", "lrs2", "lrs3", "lrw", "mead", "web")}
    assert not {entry["corpus"] for entry in learn_from} & set(real["ingest"]["test_corpora"])
    raw_dirs = [{**entry, "path": str(shared / Path(entry["path"]).name)} for entry in entries if entry not in learn_from]
    run_pipeline(folder, "ingest", {"ingest": {"raw_dirs": raw_dirs}}, env="real")
    manifest = pd.read_parquet(folder / "data/03_primary/manifest.parquet")
    report = json.loads((folder / "data/08_reporting/split_report.json").read_text())
    splits = manifest.groupby("speaker")["split"].agg(set)
    assert set(manifest.loc[manifest["split"] == "train", "corpus"]) == {"grid_more"}
    assert splits["grid_a"] == {"test_seen"} and splits["grid_f"] == {"test_seen"}
    assert {tuple(match["speakers"]) for match in report["matches"]} == {("grid_a", "grid_more_s1"), ("grid_f", "grid_more_s4")}
    unseen = manifest[manifest["split"] == "test_unseen"].groupby("corpus")["speaker"].nunique()
    assert unseen["grid"] == 5 and unseen["voxceleb2"] >= 3 and unseen["cremad"] == 1
    assert not set(manifest.loc[manifest["split"] == "test_unseen", "person"]) & set(
        manifest.loc[manifest["split"] == "train", "person"])
