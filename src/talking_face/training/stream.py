"""Training batches streamed from feature shards (features.shards) by Ray Data, rollout sequences cut on the
fly, resumable at any step without training a sequence twice in an epoch or skipping one.

Epoch e: the shards are shuffled with (seed, e) and rank r takes every world_size-th of them; Ray Data reads
them in that order from wherever they are (read tasks run ahead of training), each shard's clips are decoded
(features.compact) on this worker and its sequences shuffled with (seed, e, shard); batches run on across
shard boundaries, and every rank ends the epoch after the same number of batches (DDP steps together). The
plan follows from the index and the seeds alone, so a run resumed at step k finds the shards of its first k
batches without reading them. A worker holds one decoded shard at a time, never the corpus.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch.utils.data import default_collate

from talking_face.features.compact import decode_clip
from talking_face.features.shards import resolve_filesystem
from talking_face.training.data import FeatureFrameDataset


class DecodedClips(FeatureFrameDataset):
    """The sequences of clips already decoded from a shard: the items their feature files would give."""

    def __init__(self, clips: dict[str, dict], **options):
        self.clips = clips
        super().__init__(list(clips), cache_clips=len(clips), **options)

    def _length(self, clip_id: str) -> int:
        return len(self.clips[clip_id]["frames"])

    def _load(self, clip_id: str) -> dict[str, np.ndarray]:
        return self.clips[clip_id]


class ShardStream:
    """This rank's batches, epoch after epoch, from a shard index (features.shards, one split)."""

    def __init__(self, index: dict, dataset_options: dict, batch_size: int, seed: int, rank: int = 0,
                 world_size: int = 1, storage: dict | None = None, read_cpus: float = 0.0, device=None):  # fmt: skip
        self.index, self.options, self.storage = index, dataset_options, storage
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.read_cpus, self.device = read_cpus, device
        self.rollout = int(dataset_options.get("rollout", 1))
        self.shards_read: list[tuple[int, str]] = []  # (epoch, shard path) in the order Ray Data delivered them
        if self.batches_in_epoch(0) < 1:
            raise ValueError(
                f"rank {rank}: the shards at {index['uri']} give a rank fewer sequences of {self.rollout} frames than "
                f"a batch of {batch_size}: add clips, write smaller shards or lower batch_size / rollout_frames"
            )

    def sequences(self, shard: dict) -> int:
        return sum(max(0, clip["n_frames"] - self.rollout + 1) for clip in shard["clips"])

    def plan(self, epoch: int, rank: int | None = None) -> list[int]:
        """The numbers (in the index) of the shards a rank reads in `epoch`, in reading order."""
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.index["shards"]))
        return order[self.rank if rank is None else rank :: self.world_size].tolist()

    def batches_in_epoch(self, epoch: int) -> int:
        shards = self.index["shards"]
        return min(sum(self.sequences(shards[n]) for n in self.plan(epoch, rank)) for rank in range(self.world_size)) // self.batch_size

    def position(self, step: int) -> tuple[int, int]:
        """(epoch, batches of it already trained) after `step` steps."""
        epoch = 0
        while step >= (length := self.batches_in_epoch(epoch)):
            step, epoch = step - length, epoch + 1
        return epoch, step

    def batches(self, start_step: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Batches from step `start_step` on, without end."""
        epoch, done = self.position(start_step)
        while True:
            plan, skip = self.plan(epoch), done * self.batch_size
            while plan and self.sequences(self.index["shards"][plan[0]]) <= skip:
                skip -= self.sequences(self.index["shards"][plan.pop(0)])  # trained before the checkpoint: not read
            items = self._items(epoch, plan, skip)
            try:
                for _ in range(self.batches_in_epoch(epoch) - done):
                    batch = default_collate([next(items) for _ in range(self.batch_size)])
                    yield {key: value.to(self.device) for key, value in batch.items()} if self.device else batch
            finally:
                items.close()
            epoch, done = epoch + 1, 0

    def _items(self, epoch: int, plan: list[int], skip: int) -> Iterator[dict[str, torch.Tensor]]:
        for number, rows in self._read(epoch, plan):
            clips = {row["clip_id"]: decode_clip(row) for row in rows}
            dataset = DecodedClips(clips, **self.options)
            order = np.random.default_rng([self.seed, epoch, number]).permutation(len(dataset))
            for item in order[skip:]:
                clip, start = dataset.index[item]
                # Where the sequence came from: what a resumed run must neither repeat nor skip.
                yield {**dataset[item], "sequence": torch.tensor([number, clip, start])}
            skip = 0

    def _read(self, epoch: int, plan: list[int]) -> Iterator[tuple[int, list[dict]]]:
        """(shard number, its rows) for the planned shards, in plan order, read by Ray Data."""
        if not plan:
            return
        import ray.data

        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        shards = [self.index["shards"][number] for number in plan]
        # Not read_parquet: its file-listing task asks for a whole CPU, which a worker holding every core of
        # its node never frees (training hung there); these read tasks ask for read_cpus (0: they wait on I/O).
        dataset = ray.data.from_items([{"path": shard["path"]} for shard in shards], override_num_blocks=len(shards))
        dataset = dataset.map_batches(
            read_shards, batch_size=1, batch_format="pyarrow", num_cpus=self.read_cpus,
            fn_kwargs={"uri": self.index["uri"], "storage": self.storage},
        )  # fmt: skip
        pending = iter(zip(plan, shards))
        number, shard = next(pending)
        rows: list[dict] = []
        for table in dataset.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2):
            for row in table.to_pylist():
                rows.append(row)
                if len(rows) == len(shard["clips"]):
                    self.shards_read.append((epoch, shard["path"]))
                    yield number, rows
                    number, shard = next(pending, (None, None))
                    rows = []


def read_shards(batch, uri: str, storage: dict | None):
    """The rows of the shards a batch of {"path"} names, as one Arrow table (a Ray Data map function)."""
    filesystem, root = resolve_filesystem(uri, storage)
    return pa.concat_tables([pq.read_table(f"{root}/{path}", filesystem=filesystem) for path in batch["path"].to_pylist()])
