"""Ingestion on small clips made on the fly: discovery of each layout, the probe, awkward inputs accepted and
flagged, bad inputs rejected with their reason, the Great Expectations suite, the speaker split and the
`ingest` pipeline run with Kedro's runner."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import yaml

from talking_face.ingest.discover import discover_clips
from talking_face.ingest.probe import probe_clip, probe_clips
from talking_face.ingest.records import MANIFEST_COLUMNS, IngestError, check_outcome
from talking_face.ingest.split import assign_splits
from talking_face.media.video import write_video
from talking_face.validation.expectations import validate_manifest, validate_table

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The project's own ingest parameters, with a frame-size floor that lets 64-pixel test clips through.
PARAMS = {
    **yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_ingest.yml").read_text())["ingest"],
    "frame_size_range": [32, 4096],
}


def _tone(seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """A 220 Hz tone, shape (channels, samples)."""
    samples = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)
    return np.repeat(samples[None].astype(np.float32), channels, axis=0)


def _frames(count: int, width: int = 64, height: int = 64) -> np.ndarray:
    return np.stack([np.full((height, width, 3), (index * 9) % 256, np.uint8) for index in range(count)])


def _plain_clip(path: Path, seconds: float = 1.5, audio: bool = True) -> Path:
    frames = _frames(int(round(seconds * 25)))
    return write_video(path, frames, fps=25, audio=_tone(seconds, 16000)[0] if audio else None, audio_rate=16000)


def _custom_clip(path: Path, frame_times, size=(64, 64), audio_rate: int = 16000, channels: int = 1) -> Path:
    """H.264 + AAC with the given frame times (s) and audio format, for what write_video does not make."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = Fraction(1, 1000)
        layout = "stereo" if channels == 2 else "mono"
        audio = out.add_stream("aac", rate=audio_rate, layout=layout)
        for time, pixels in zip(frame_times, _frames(len(frame_times), width, height)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = int(round(time * 1000)), Fraction(1, 1000)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        samples = _tone(frame_times[-1] + 0.04, audio_rate, channels)
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + 1024]), "fltp", layout)
            chunk.sample_rate = audio_rate
            out.mux(audio.encode(chunk))
        out.mux(audio.encode(None))
    return path


def _wav(path: Path, seconds: float = 1.5, rate: int = 16000, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=rate, layout=layout)
        interleaved = (_tone(seconds, rate, channels).T.reshape(1, -1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=layout)
        frame.sample_rate = rate
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _audio_only_mp4(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        samples = _tone(1.5, 16000)
        for start in range(0, samples.shape[1], 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start : start + 1024]), "fltp", "mono")
            chunk.sample_rate = 16000
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return path


def _faststart_copy(source: Path, target: Path) -> Path:
    """The same packets remuxed with the index at the front, so a cut copy still opens."""
    with av.open(str(source)) as src, av.open(str(target), "w", format="mp4", options={"movflags": "faststart"}) as dst:
        streams = {stream.index: dst.add_stream_from_template(stream) for stream in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    return target


def _cut(path: Path, fraction: float) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * fraction)])


# --------------------------------------------------------------------------------------------- discovery
def _only(candidates, **expected):
    assert len(candidates) == 1, candidates
    for field, value in expected.items():
        assert getattr(candidates[0], field) == value, (field, candidates[0])


def test_discovers_grid_speaker_folders(tmp_path):
    clip = _plain_clip(tmp_path / "seed.mp4")
    (tmp_path / "corpus/s3/video/mpg_6000").mkdir(parents=True)
    shutil.copy(clip, tmp_path / "corpus/s3/video/mpg_6000/bbaf2n.mpg")
    candidates, rejections = discover_clips(tmp_path / "corpus")
    _only(candidates, layout="grid", speaker="s3", clip_id="s3_bbaf2n")
    assert rejections == []


@pytest.mark.parametrize("explicit_map", [False, True], ids=["speakers.csv found", "speaker_map given"])
def test_discovers_flat_grid_folder_with_speaker_map(tmp_path, explicit_map):
    clip = _plain_clip(tmp_path / "seed.mp4")
    (tmp_path / "flat").mkdir()
    for stem in ("bbaf2n", "pwij3p", "lbax4n"):
        shutil.copy(clip, tmp_path / "flat" / f"{stem}.mpg")
    speaker_map = tmp_path / ("map.csv" if explicit_map else "flat/speakers.csv")
    speaker_map.write_text("clip,speaker\nbbaf2n,grid_a\npwij3p,grid_a\nlbax4n,grid_b\n")
    candidates, _ = discover_clips(tmp_path / "flat", speaker_map if explicit_map else None)
    assert {(c.clip_id, c.speaker, c.layout) for c in candidates} == {
        ("grid_a_bbaf2n", "grid_a", "grid"), ("grid_a_pwij3p", "grid_a", "grid"), ("grid_b_lbax4n", "grid_b", "grid")
    }


def test_discovers_crema_d_with_wav_in_its_own_folder(tmp_path):
    flash = _mkdir(tmp_path / "crema/VideoFlash")
    video = shutil.copy(_plain_clip(tmp_path / "seed.mp4"), flash / "1001_DFA_ANG_XX.flv")
    shutil.copy(video, tmp_path / "crema/VideoFlash/1002_IEO_HAP_HI.flv")
    wav = _wav(tmp_path / "crema/AudioWAV/1001_DFA_ANG_XX.wav")
    candidates, rejections = discover_clips(tmp_path / "crema")
    by_id = {c.clip_id: c for c in candidates}
    assert set(by_id) == {"1001_DFA_ANG_XX", "1002_IEO_HAP_HI"}
    assert by_id["1001_DFA_ANG_XX"].speaker == "1001" and by_id["1001_DFA_ANG_XX"].audio_path == str(wav)
    assert by_id["1002_IEO_HAP_HI"].audio_path == by_id["1002_IEO_HAP_HI"].path
    assert {c.layout for c in candidates} == {"crema_d"} and rejections == []


def test_discovers_lrs_voxceleb_layout(tmp_path):
    shutil.copy(_plain_clip(tmp_path / "seed.mp4"), _mkdir(tmp_path / "vox/dev/id00012/21Uxsk56VDQ") / "00001.mp4")
    candidates, _ = discover_clips(tmp_path / "vox/dev")
    _only(candidates, layout="lrs", speaker="id00012", clip_id="id00012_21Uxsk56VDQ_00001")


def test_discovers_generic_layout_under_a_collection_folder(tmp_path):
    """data/01_raw/sample/<speaker>/<clip>.mp4: the speaker is the clip's folder, never the collection's."""
    clip = _plain_clip(tmp_path / "raw/sample/anna/clip_000.mp4")
    shutil.copy(clip, _mkdir(tmp_path / "raw/sample/ben") / "talk.mkv")
    wav = _wav(tmp_path / "raw/sample/ben/talk.wav")
    candidates, rejections = discover_clips(tmp_path / "raw")
    by_id = {c.clip_id: c for c in candidates}
    assert set(by_id) == {"anna_clip_000", "ben_talk"} and rejections == []
    assert by_id["anna_clip_000"].speaker == "anna" and by_id["anna_clip_000"].audio_path == str(clip.resolve())
    assert by_id["ben_talk"].speaker == "ben" and by_id["ben_talk"].audio_path == str(wav)
    assert {c.layout for c in candidates} == {"generic"}


def test_discovery_rejects_files_without_a_speaker_or_video(tmp_path):
    _plain_clip(tmp_path / "raw/loose.mp4")
    _wav(tmp_path / "raw/anna/voice_memo.wav")
    candidates, rejections = discover_clips(tmp_path / "raw")
    assert candidates == []
    reasons = {Path(r.path).name: r.reason for r in rejections}
    assert "no speaker" in reasons["loose.mp4"] and "audio-only" in reasons["voice_memo.wav"]
    assert {r.stage for r in rejections} == {"discover"}


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------------------------------------- probe
def test_probe_reports_stream_facts_and_hash(tmp_path):
    clip = _plain_clip(tmp_path / "anna/plain.mp4", seconds=1.52)
    (candidate,), _ = discover_clips(tmp_path)
    row = probe_clip(candidate)
    assert row["fps"] == pytest.approx(25.0) and row["frame_count"] == 38
    assert row["duration_s"] == pytest.approx(1.52, abs=0.05)
    assert (row["width"], row["height"], row["audio_rate"], row["audio_channels"]) == (64, 64, 16000, 1)
    assert row["av_diff_s"] == pytest.approx(row["audio_duration_s"] - row["duration_s"])
    assert abs(row["av_diff_s"]) < 0.15 and row["needs"] == ""
    assert row["file_size"] == clip.stat().st_size
    assert row["content_hash"] == hashlib.sha256(clip.read_bytes()).hexdigest()


def test_probe_uses_sidecar_audio_and_hashes_both_files(tmp_path):
    video = _plain_clip(tmp_path / "anna/talk.mp4", audio=False)
    wav = _wav(tmp_path / "anna/talk.wav", rate=48000, channels=2)
    (candidate,), _ = discover_clips(tmp_path)
    row = probe_clip(candidate)
    assert (row["audio_rate"], row["audio_channels"]) == (48000, 2)
    assert row["audio_duration_s"] == pytest.approx(1.5, abs=0.01) and row["needs"] == "audio_resample;stereo"
    assert row["content_hash"] == hashlib.sha256(video.read_bytes() + wav.read_bytes()).hexdigest()


# ----------------------------------------------------- one corpus of awkward and bad inputs, ingested once
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    steps = np.arange(38) / 25
    made = {
        "plain": _plain_clip(root / "good/plain.mp4"),
        "rate8k": _custom_clip(root / "awkward/rate8k.mp4", steps, audio_rate=8000),
        "stereo48k": _custom_clip(root / "awkward/stereo48k.mp4", steps, audio_rate=48000, channels=2),
        "fps30": _custom_clip(root / "awkward/fps30.mp4", np.arange(45) / 30),
        "portrait": _custom_clip(root / "awkward/portrait.mp4", steps, size=(48, 80)),
        "vfr": _custom_clip(root / "awkward/vfr.mp4", np.concatenate([[0], np.cumsum(np.tile([0.03, 0.05], 19))])),
        "zero_bytes": root / "bad/zero_bytes.mp4",
        "truncated": _plain_clip(root / "bad/truncated.mp4"),
        "text": root / "bad/text.mp4",
        "silent": _plain_clip(root / "bad/silent.mp4", audio=False),
        "audio_only": _audio_only_mp4(root / "bad/audio_only.mp4"),
        "short": _plain_clip(root / "bad/short.mp4", seconds=0.6),
    }
    made["truncated_faststart"] = _faststart_copy(made["plain"], root / "bad/truncated_faststart.mp4")
    made["zero_bytes"].touch()
    made["text"].write_text("this is a text file, not a video\n")
    _cut(made["truncated"], 0.5)
    _cut(made["truncated_faststart"], 0.6)
    candidates, not_clips = discover_clips(root)
    probed, unreadable = probe_clips(candidates, progress=False)
    accepted, failed, report = validate_manifest(probed, PARAMS)
    stem = lambda path: Path(path).stem  # noqa: E731
    rejected = {stem(r.path): (r.stage, r.reason) for r in not_clips + unreadable}
    rejected.update({stem(path): ("validate", reason) for path, reason in zip(failed["path"], failed["reason"])})
    return {"accepted": {stem(path): row for path, row in accepted.set_index("path").iterrows()},
            "rejected": rejected, "report": report}


@pytest.mark.parametrize(
    "name, flags",
    [("plain", set()), ("rate8k", {"audio_resample"}), ("stereo48k", {"audio_resample", "stereo"}),
     ("fps30", {"fps_resample"}), ("portrait", {"portrait"}), ("vfr", {"vfr"})],
)
def test_awkward_inputs_are_accepted_and_flagged(corpus, name, flags):
    assert name in corpus["accepted"], corpus["rejected"].get(name)
    needs = corpus["accepted"][name]["needs"]
    assert set(filter(None, needs.split(";"))) == flags


@pytest.mark.parametrize(
    "name, stage, words",
    [("zero_bytes", "probe", "empty"), ("truncated", "probe", "truncated"),
     ("truncated_faststart", "probe", "truncated"), ("text", "probe", "not a readable media file"),
     ("audio_only", "probe", "no video stream"), ("silent", "validate", "no audio"),
     ("short", "validate", "under the minimum 1.0 s")],
)
def test_bad_inputs_are_rejected_with_their_reason(corpus, name, stage, words):
    assert name not in corpus["accepted"]
    got_stage, reason = corpus["rejected"][name]
    assert got_stage == stage and words in reason and "\n" not in reason


def test_validation_report_counts_what_it_rejected(corpus):
    report = corpus["report"]
    assert report["rows"] == report["accepted"] + report["rejected"] and report["success"] is False
    failing = {item["kwargs"]["column"]: item["unexpected_ids"] for item in report["expectations"]
               if not item["success"]}
    assert failing["duration_s"] == ["bad_short"] and failing["audio_rate"] == ["bad_silent"]
    json.dumps(report)  # the report is saved as JSON


def test_unreadable_file_is_rejected():
    """chmod 000. Root reads anything, so as root the probe runs in a forked child that became `nobody`."""
    folder = Path(tempfile.mkdtemp(prefix="tf-unreadable-"))  # under /tmp, so `nobody` can reach it
    try:
        folder.chmod(0o755)
        _plain_clip(folder / "anna/locked.mp4").chmod(0o000)
        probed, rejected = _probe_as_nobody(folder) if os.geteuid() == 0 else _probe_here(folder)
        assert probed == 0 and rejected == [["probe", "file is not readable (permission denied)"]]
    finally:
        shutil.rmtree(folder)


def _probe_here(folder: Path) -> tuple[int, list]:
    rows, rejected = probe_clips(discover_clips(folder)[0], progress=False)
    return len(rows), [[item.stage, item.reason] for item in rejected]


def _probe_as_nobody(folder: Path) -> tuple[int, list]:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # never returns into pytest
        try:
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_end, json.dumps(_probe_here(folder)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        message = answer.read()
    os.waitpid(child, 0)
    if not message:
        pytest.skip("running as root, but a child process could not switch to user nobody to test permissions")
    return tuple(json.loads(message))


# ------------------------------------------------------------------------------------------ expectations
def test_validate_table_rejects_rows_with_reasons_from_any_suite():
    table = pd.DataFrame({"key": ["a", "b", "b", "c"], "energy": [0.5, 2.0, 0.1, 0.3]})
    suite = [
        {"expectation": "ExpectColumnValuesToBeBetween", "kwargs": {"column": "energy", "min_value": 0, "max_value": 1},
         "reason": "energy {value} outside [{min_value}, {max_value}]"},
        {"expectation": "ExpectColumnValuesToBeUnique", "kwargs": {"column": "key"}, "reason": "key {value} repeated"},
    ]
    accepted, rejected, report = validate_table(table, suite, id_column="key", suite_name="features")
    assert list(accepted["key"]) == ["a", "c"]
    assert dict(zip(rejected["energy"], rejected["reason"])) == {
        2.0: "energy 2.0 outside [0, 1]; key b repeated", 0.1: "key b repeated"}
    assert report["suite"] == "features" and report["rejected"] == 2
    assert report["statistics"]["evaluated_expectations"] == 2


# ------------------------------------------------------------------------------------------------- split
def _clips(counts: dict[str, int]) -> pd.DataFrame:
    rows = [(f"{speaker}_{n}", speaker) for speaker, count in counts.items() for n in range(count)]
    return pd.DataFrame(rows, columns=["clip_id", "speaker"])


def test_split_is_deterministic_speaker_disjoint_and_has_a_seen_speaker_test():
    clips = _clips({f"spk{n}": 2 + n % 3 for n in range(10)})
    first = assign_splits(clips, 0.2, 0.2, seed=3)
    assert first.equals(assign_splits(clips.sample(frac=1, random_state=0), 0.2, 0.2, seed=3))
    by_split = {name: set(group["speaker"]) for name, group in first.groupby("split")}
    assert len(by_split["test_unseen"]) == 2 and not by_split["test_unseen"] & by_split["train"]
    assert by_split["test_seen"] and by_split["test_seen"] <= by_split["train"]
    assert (first["split"] == "test_seen").sum() == round(0.2 * (first["split"] != "test_unseen").sum())
    assert first.loc[first["split"] == "test_seen", "speaker"].is_unique  # spread over speakers


def test_split_keeps_the_only_multi_clip_speaker_for_the_seen_test():
    clips = _clips({"a": 1, "b": 1, "c": 2, "d": 1})
    for seed in range(6):
        split = assign_splits(clips, 0.25, 0.1, seed)
        assert (split["split"] == "test_unseen").sum() == 1
        assert list(split.loc[split["split"] == "test_seen", "speaker"]) == ["c"]
        assert "c" in set(split.loc[split["split"] == "train", "speaker"])


def test_split_makes_an_unseen_speaker_from_two():
    split = assign_splits(_clips({"a": 3, "b": 3}), 0.1, 0.0, seed=0)
    assert split.groupby("split")["speaker"].nunique().to_dict() == {"test_unseen": 1, "train": 1}


# -------------------------------------------------------------------------------------- pipeline outcome
def test_outcome_fails_when_nothing_or_too_much_is_rejected():
    check_outcome(accepted=3, rejected=1, max_rejected_fraction=0.25)
    with pytest.raises(IngestError, match="no video clips found"):
        check_outcome(accepted=0, rejected=0, max_rejected_fraction=0.9)
    with pytest.raises(IngestError, match="no clip accepted"):
        check_outcome(accepted=0, rejected=2, max_rejected_fraction=0.9)
    with pytest.raises(IngestError, match="2 of 5 clips rejected"):
        check_outcome(accepted=3, rejected=2, max_rejected_fraction=0.25)


def _project_catalog(folder: Path, params: dict):
    """The project's ingest catalog with every file under `folder`, and the given parameters."""
    from kedro.io import DataCatalog, MemoryDataset

    config = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_ingest.yml").read_text())
    for entry in config.values():
        inner = entry.get("dataset", entry)  # paths are stored relative to the project through a wrapper
        inner["filepath"] = str(folder / inner["filepath"])
    catalog = DataCatalog.from_config(config)
    catalog["params:ingest"] = MemoryDataset(params)
    return catalog


def test_ingest_pipeline_runs_with_kedro_runner(tmp_path):
    from kedro.runner import SequentialRunner

    from talking_face.pipelines.ingest.pipeline import create_pipeline

    for speaker in ("anna", "ben", "cleo"):
        for take in range(3):
            _plain_clip(tmp_path / f"raw/sample/{speaker}/take_{take}.mp4")
    (tmp_path / "raw/sample/cleo/broken.mp4").write_text("not a video")
    params = {**PARAMS, "raw_dir": str(tmp_path / "raw")}
    catalog = _project_catalog(tmp_path / "ok", params)
    SequentialRunner().run(create_pipeline(), catalog)
    manifest, rejected = catalog["manifest"].load(), catalog["rejected_clips"].load()
    assert list(manifest.columns) == MANIFEST_COLUMNS and len(manifest) == 9
    assert manifest["path"].map(os.path.isabs).all() and set(manifest["speaker"]) == {"anna", "ben", "cleo"}
    assert set(manifest["split"]) == {"train", "test_seen", "test_unseen"}
    assert list(rejected.columns) == ["clip_id", "path", "stage", "reason"]
    assert list(rejected["clip_id"]) == ["cleo_broken"] and list(rejected["stage"]) == ["probe"]
    assert catalog["ingest_validation_report"].load()["accepted_total"] == 9

    catalog = _project_catalog(tmp_path / "strict", {**params, "max_rejected_fraction": 0.05})
    with pytest.raises(IngestError, match="1 of 10 clips rejected"):
        SequentialRunner().run(create_pipeline(), catalog)
    assert catalog["rejected_clips"].load()["clip_id"].tolist() == ["cleo_broken"]  # saved before the failure
    assert not (tmp_path / "strict/data/03_primary/manifest.parquet").exists()
