"""Compact clips and feature shards on a real GRID clip: the round trip to the feature file's arrays, and the
shard stream's epochs: every sequence once, shuffled per epoch, resumed at any step without reading the
shards already trained on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_face.datasets.npz import write_npz
from talking_face.features.compact import CompactClipError, decode_clip, encode_clip
from talking_face.features.extract import extract_clip, resolve_params
from talking_face.features.shards import read_index, shard_rows, split_index, write_shards
from talking_face.training.stream import DecodedClips, ShardStream

SIZE = 64  # the CPU default crop, where the 5x holds (at 32 px the audio weighs more)
OPTIONS = {"context": 2, "audio_window": 3, "rollout": 6}


@pytest.fixture(scope="module")
def grid_clip(grid_dir):
    """A real GRID clip (3 s) through the real feature extraction at the 64-pixel crop, as load_clip gives it."""
    video = grid_dir / "bbaf2n.mpg"
    return {**extract_clip(video, video, {"crop_size": SIZE}), "params_hash": np.array("p"), "content_hash": np.array("c")}


@pytest.fixture(scope="module")
def row(grid_clip):
    return encode_clip({**grid_clip, "clip_id": "bbaf2n"}, resolve_params({"crop_size": SIZE}))


def test_a_compact_clip_decodes_to_the_feature_files_arrays(grid_clip, row):
    decoded = decode_clip(row)
    assert set(decoded) == set(grid_clip)
    for key, value in grid_clip.items():
        assert decoded[key].dtype == value.dtype and decoded[key].shape == value.shape, key
    # Stored exactly, or drawn again from what is: the heatmaps are the extracted ones to the last bit.
    for key in ("landmarks", "heatmaps", "mel", "mfcc", "f0", "pitch", "energy", "energy_raw", "boxes"):
        np.testing.assert_array_equal(decoded[key], grid_clip[key], err_msg=key)
    # JPEG 95 frames and 16-bit audio: near, not equal (docs/scale.md measures the cost).
    mse = np.mean((decoded["frames"].astype(float) - grid_clip["frames"]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 38
    assert np.abs(decoded["audio"] - grid_clip["audio"]).max() <= row["audio_scale"] / 32767
    flow_error = np.abs(decoded["flow"].astype(np.float32) - grid_clip["flow"]).mean()
    assert flow_error < 0.25 * np.abs(grid_clip["flow"].astype(np.float32)).mean()


def test_a_clip_in_a_shard_takes_over_5_times_fewer_bytes_than_its_feature_file(grid_clip, shard_index, tmp_path):
    write_npz(tmp_path / "clip.npz", grid_clip, 1, ("flow",))  # as conf/base/catalog_features.yml writes it
    shard = shard_index["shards"][0]
    assert 5 * shard["bytes"] / len(shard["clips"]) < (tmp_path / "clip.npz").stat().st_size


def test_a_damaged_row_names_its_clip_and_the_problem(row):
    with pytest.raises(CompactClipError, match="clip bbaf2n: mel holds"):
        decode_clip({**row, "mel": row["mel"][:-4]})
    with pytest.raises(CompactClipError, match="clip bbaf2n: frame 3 is not a readable image"):
        decode_clip({**row, "frames": [*row["frames"][:3], b"not a jpeg", *row["frames"][4:]]})


@pytest.fixture(scope="module")
def shard_index(row, tmp_path_factory):
    """Five copies of the clip (under five ids) in three train shards of two, and one test shard."""
    rows = [{**row, "clip_id": f"clip{n}", "content_hash": f"c{n}"} for n in range(5)]
    root = tmp_path_factory.mktemp("shards") / "features"
    write_shards({"train": rows, "test_unseen": rows[:1]}, str(root), clips_per_shard=2)
    return read_index(str(root))


def test_shards_and_their_index_hold_every_clip(shard_index, row):
    train = split_index(shard_index, "train")
    assert [shard["path"] for shard in train["shards"]] == [f"train/shard-0000{n}.parquet" for n in range(3)]
    assert [clip["clip_id"] for shard in train["shards"] for clip in shard["clips"]] == [f"clip{n}" for n in range(5)]
    assert all(clip["n_frames"] == row["n_frames"] for shard in train["shards"] for clip in shard["clips"])
    stored = next(shard_rows(shard_index["uri"], train["shards"][2]))
    assert stored["clip_id"] == "clip4" and stored["frames"] == row["frames"] and stored["mel"] == row["mel"]
    with pytest.raises(FileNotFoundError, match="no shard index"):
        read_index(shard_index["uri"] + "-missing")


def sequences(batches, count: int) -> list[tuple[int, int, int]]:
    return [tuple(s) for _, batch in zip(range(count), batches) for s in batch["sequence"].tolist()]


def test_the_stream_gives_every_sequence_once_per_epoch_in_a_new_order(shard_index, row):
    train = split_index(shard_index, "train")
    stream = ShardStream(train, OPTIONS, batch_size=16, seed=3)
    per_clip = row["n_frames"] - OPTIONS["rollout"] + 1
    epoch = stream.batches_in_epoch(0)
    assert epoch == 5 * per_clip // 16
    seen = sequences(stream.batches(0), 2 * epoch)
    first, second = seen[: epoch * 16], seen[epoch * 16 :]
    assert len(set(first)) == len(first) and len(set(second)) == len(second)
    assert first != second and {s[0] for s in first} == {0, 1, 2}
    # The items are the ones FeatureFrameDataset cuts from the clip's feature file.
    batch = next(ShardStream(train, OPTIONS, batch_size=1, seed=3).batches(0))
    start = batch["sequence"][0, 2].item()
    reference = DecodedClips({"clip": decode_clip(row)}, **OPTIONS)[start]
    assert set(batch) == {*reference, "sequence"}
    for key, value in reference.items():
        torch.testing.assert_close(batch[key][0], value, msg=key)


def test_a_resumed_stream_continues_at_its_step_without_reading_trained_shards(shard_index):
    train = split_index(shard_index, "train")
    whole = ShardStream(train, OPTIONS, batch_size=16, seed=3)
    epoch = whole.batches_in_epoch(0)
    expected = sequences(whole.batches(0), epoch + 2)
    checkpoint = epoch - 2  # late in epoch 0: its first shards are wholly trained
    resumed = ShardStream(train, OPTIONS, batch_size=16, seed=3)
    assert sequences(resumed.batches(checkpoint), epoch + 2 - checkpoint) == expected[checkpoint * 16 :]
    trained = {s[0] for s in expected[: checkpoint * 16]} - {s[0] for s in expected[checkpoint * 16 : epoch * 16]}
    assert trained, "the checkpoint should fall after a whole shard"
    read_in_epoch_0 = [path for epoch_read, path in resumed.shards_read if epoch_read == 0]
    assert not {train["shards"][n]["path"] for n in trained} & set(read_in_epoch_0)
    assert len(read_in_epoch_0) == len(set(read_in_epoch_0)) == 3 - len(trained)
