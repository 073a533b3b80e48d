"""Training from feature shards in object storage: moto's S3 server on loopback stands in for S3, GCS or
MinIO. The shards of a real GRID clip are written there, Ray Train trains a few steps reading only from it,
and a worker killed mid-epoch resumes from its checkpoint training every sequence of the epoch exactly once."""

from __future__ import annotations

import json
import os
import socket
import sys

import numpy as np
import pytest
import torch
import yaml
from ray import cloudpickle

from talking_face.features.compact import encode_clip
from talking_face.features.extract import extract_clip, resolve_params
from talking_face.features.shards import read_index, resolve_filesystem, split_index, write_shards
from talking_face.training import ray_run
from talking_face.training.loop import run_task
from talking_face.training.run import final_state, fit_pretraining, loop_config
from talking_face.training.stream import ShardStream
from tests.project import PROJECT_ROOT

SIZE = 32
MODEL = {"preset": "cpu", "overrides": {"discriminator": {"n_layers": 2}, "generator": {"base_channels": 8}}}


@pytest.fixture(scope="module")
def s3_storage():
    """A moto S3 server on a free loopback port, with a bucket; the pyarrow S3 options that reach it."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] (the dev extra) is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    storage = {"endpoint_override": f"127.0.0.1:{port}", "scheme": "http", "access_key": "testing",
               "secret_key": "testing", "region": "us-east-1", "allow_bucket_creation": True}  # fmt: skip
    filesystem, _ = resolve_filesystem("s3://features", storage)
    filesystem.create_dir("features")
    yield storage
    server.stop()


@pytest.fixture(scope="module")
def s3_shards(grid_dir, s3_storage):
    """A real GRID clip under four ids, in two train shards on the S3 server (nothing on local disk)."""
    video = grid_dir / "bbaf2n.mpg"
    clip = {**extract_clip(video, video, {"crop_size": SIZE}), "params_hash": "p"}
    row = encode_clip(clip, resolve_params({"crop_size": SIZE}))
    rows = [{**row, "clip_id": f"clip{n}", "content_hash": f"c{n}"} for n in range(4)]
    write_shards({"train": rows}, "s3://features/run", clips_per_shard=2, storage=s3_storage)
    return {"index": split_index(read_index("s3://features/run", s3_storage), "train"), "storage": s3_storage}


def conf(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf/base" / f"parameters_{name}.yml").read_text())


@pytest.mark.timeout(180)
def test_pretraining_reads_its_clips_only_from_the_s3_server(s3_shards, local_ray, tmp_path):
    params = {**conf("pretrain")["pretrain"], "steps": 3, "batch_size": 4, "log_every": 1, "checkpoint_every": 3,
              "image_every": 100, "rollout_frames": 2}  # fmt: skip
    # The worker holds every CPU of the cluster, as the CPU default does: reading must not wait for one.
    ray_params = {"num_workers": 1, "storage_path": str(tmp_path / "ray"), "resources_per_worker": {"CPU": 2}}
    config = loop_config(params, MODEL, s3_shards, SIZE, seed=0, ray_params=ray_params)
    assert "feature_paths" not in config
    state = final_state(fit_pretraining(config, ray_params))
    assert [row["step"] for row in state["history"]] == [1, 2, 3]
    assert all(np.isfinite(row["keypoint_mse"]) and np.isfinite(row["flow_mse"]) for row in state["history"])


class RecordingTask:
    """A one-layer task that records the sequences of every batch it trains on, and kills its worker
    process (as a crashed node would) at `kill_at` on its first attempt."""

    def __init__(self, config: dict):
        self.modules = {"probe": torch.nn.Linear(1, 1)}
        self.optimizers = {"probe": torch.optim.SGD(self.modules["probe"].parameters(), lr=0.1)}
        self.log, self.kill_at, self.calls = config["log"], config["kill_at"], 0
        self.attempt = 2 if os.path.exists(self.log) else 1

    def step(self, batch, autocast) -> dict[str, float]:
        self.calls += 1
        if self.attempt == 1 and self.calls == self.kill_at:
            os._exit(1)
        loss = (self.modules["probe"](batch["mel"].mean().reshape(1, 1)) ** 2).sum()
        self.optimizers["probe"].zero_grad()
        loss.backward()
        self.optimizers["probe"].step()
        with open(self.log, "a") as log:
            log.write(json.dumps({"attempt": self.attempt, "sequences": batch["sequence"].tolist()}) + "\n")
        return {"loss": loss.item()}

    def snapshot(self, batch, logger, step) -> None:
        pass


def recording_loop(config: dict) -> None:
    run_task(RecordingTask(config), config)


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import the tests package


def test_a_worker_killed_mid_epoch_resumes_without_repeating_or_skipping_a_sequence(s3_shards, local_ray, tmp_path):
    batch_size, checkpoint_every, kill_at = 8, 3, 5
    config = {"feature_shards": s3_shards, "batch_size": batch_size, "seed": 1, "context_frames": 2, "audio_window": 3,
              "rollout_frames": 60, "steps": 12, "log_every": 1, "image_every": 100, "checkpoint_every": checkpoint_every,
              "metric_prefix": "probe", "log": str(tmp_path / "batches.jsonl"), "kill_at": kill_at}  # fmt: skip
    ray_params = {"num_workers": 1, "storage_path": str(tmp_path / "ray"), "max_failures": 1}
    result = ray_run.fit(recording_loop, config, ray_params, "killed-worker")
    assert result.metrics["step"] == 12 and result.metrics["resumed_from"] == checkpoint_every

    records = [json.loads(line) for line in (tmp_path / "batches.jsonl").read_text().splitlines()]
    first = [r["sequences"] for r in records if r["attempt"] == 1]
    assert len(first) == kill_at - 1  # killed before its fifth step: steps 4 trained after the checkpoint at 3
    # What the resumed model learned from: the first attempt's steps up to its checkpoint, then the second's.
    trained = first[:checkpoint_every] + [r["sequences"] for r in records if r["attempt"] == 2]
    assert len(trained) == 12
    per_epoch = ShardStream(s3_shards["index"], {"rollout": 60}, batch_size, seed=1).batches_in_epoch(0)
    assert per_epoch < 12 - checkpoint_every  # the run crosses into a second epoch after the resume
    for epoch in range(12 // per_epoch):
        sequences = [tuple(s) for batch in trained[epoch * per_epoch : (epoch + 1) * per_epoch] for s in batch]
        assert len(sequences) == len(set(sequences)) == per_epoch * batch_size
        assert {s[0] for s in sequences} == {0, 1}  # both shards in every epoch
