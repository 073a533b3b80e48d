"""Feature shards: many compact clips (features.compact) per Parquet file, with an index, on a local path or
an object store (s3://, gs://) through pyarrow's filesystems.

Parquet because Ray Data reads it natively and in parallel from any pyarrow filesystem, and a row per clip
keeps a clip's arrays together. The layout under the root URI:

    <root>/<split>/shard-00000.parquet ...   rows of encode_clip, zstd-compressed
    <root>/index.json                        {"format", "shards": [{"path", "split", "bytes", "clips": [...]}]}

Each clip entry holds clip_id, n_frames, params_hash and content_hash, so a reader plans epochs and a run
names its data without opening a shard. Local files are written to a temp name and renamed; an object
store makes an upload visible only once it completed. The index is written last.
"""

from __future__ import annotations

import json
import os
import uuid
from itertools import islice
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from talking_face.features.compact import STORED_ARRAYS

INDEX_FILE = "index.json"
FORMAT = "talking-face-shards/1"
SHARD_SCHEMA = pa.schema(
    [("clip_id", pa.string()), ("params_hash", pa.string()), ("content_hash", pa.string()),
     ("n_frames", pa.int32()), ("fps", pa.float32()), ("render", pa.string()), ("frames", pa.list_(pa.binary())),
     ("audio", pa.binary()), ("audio_scale", pa.float32()), *((key, pa.binary()) for key in STORED_ARRAYS)]
)  # fmt: skip
CLIP_ENTRY_KEYS = ("clip_id", "n_frames", "params_hash", "content_hash")


def resolve_filesystem(uri: str, storage: dict | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path inside it) of a shard root: a local path (relative to the working directory) or a
    URI pyarrow knows. `storage` gives the object store's options, e.g. {endpoint_override, scheme,
    access_key, secret_key, region} for S3 or MinIO; without it, the environment's credentials."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    scheme, path = uri.split("://", 1)
    if storage and scheme == "s3":
        return pafs.S3FileSystem(**storage), path.rstrip("/")
    if storage and scheme in ("gs", "gcs"):
        return pafs.GcsFileSystem(**storage), path.rstrip("/")
    filesystem, path = pafs.FileSystem.from_uri(uri)
    return filesystem, path.rstrip("/")


def absolute_uri(uri: str) -> str:
    """The URI with a local path made absolute, for workers that run in other folders."""
    return uri if "://" in uri else os.path.abspath(uri)


def _write_table(filesystem: pafs.FileSystem, path: str, table: pa.Table) -> int:
    local = isinstance(filesystem, pafs.LocalFileSystem)
    target = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.part" if local else path
    filesystem.create_dir(os.path.dirname(path), recursive=True)
    try:
        pq.write_table(table, target, filesystem=filesystem, compression="zstd")
        if local:
            filesystem.move(target, path)
    except BaseException:
        if local and filesystem.get_file_info(target).type != pafs.FileType.NotFound:
            filesystem.delete_file(target)
        raise
    return filesystem.get_file_info(path).size


def write_index(filesystem: pafs.FileSystem, root: str, index: dict) -> None:
    data = json.dumps(index, indent=1).encode()
    local = isinstance(filesystem, pafs.LocalFileSystem)
    target = f"{root}/.{INDEX_FILE}.{uuid.uuid4().hex[:12]}.part" if local else f"{root}/{INDEX_FILE}"
    filesystem.create_dir(root, recursive=True)
    with filesystem.open_output_stream(target) as stream:
        stream.write(data)
    if local:
        filesystem.move(target, f"{root}/{INDEX_FILE}")


def write_shards(
    rows_by_split: dict[str, Iterable[dict]], uri: str, clips_per_shard: int, storage: dict | None = None,
    settings: dict | None = None,
) -> dict:
    """Writes the rows of each split (encode_clip rows, in order) as shards of `clips_per_shard` clips and
    then the index, which also records `settings` (how the rows were encoded); returns the index. Shards of an earlier write that the new index does not list stay
    until removed, but no reader looks at them."""
    if clips_per_shard < 1:
        raise ValueError(f"clips_per_shard must be at least 1, got {clips_per_shard}")
    filesystem, root = resolve_filesystem(uri, storage)
    shards = []
    for split, rows in rows_by_split.items():
        rows = iter(rows)
        for number, batch in enumerate(iter(lambda: list(islice(rows, clips_per_shard)), [])):
            path = f"{split}/shard-{number:05d}.parquet"
            size = _write_table(filesystem, f"{root}/{path}", pa.Table.from_pylist(batch, schema=SHARD_SCHEMA))
            clips = [{key: row[key] for key in CLIP_ENTRY_KEYS} for row in batch]
            shards.append({"path": path, "split": split, "bytes": size, "clips": clips})
    index = {"format": FORMAT, "uri": uri, "settings": {**(settings or {}), "clips_per_shard": clips_per_shard},
             "shards": shards}  # fmt: skip
    write_index(filesystem, root, index)
    return index


def read_index(uri: str, storage: dict | None = None) -> dict:
    """The index of the shards under `uri`; a clear error when there is none or it is of another format."""
    filesystem, root = resolve_filesystem(uri, storage)
    try:
        with filesystem.open_input_stream(f"{root}/{INDEX_FILE}") as stream:
            index = json.loads(stream.read())
    except (FileNotFoundError, OSError) as error:
        raise FileNotFoundError(f"{uri}/{INDEX_FILE}: no shard index ({error}); run the features pipeline") from None
    if index.get("format") != FORMAT:
        raise ValueError(f"{uri}/{INDEX_FILE}: format {index.get('format')!r}, expected {FORMAT!r}; write the shards again")
    return {**index, "uri": uri}


def clips_by_split(index: dict) -> dict[str, list[dict]]:
    """The index's clip entries per split, in shard order."""
    listing: dict[str, list[dict]] = {}
    for shard in index["shards"]:
        listing.setdefault(shard["split"], []).extend(shard["clips"])
    return listing


def split_index(index: dict, split: str) -> dict:
    """The index restricted to the shards of one split."""
    return {**index, "shards": [shard for shard in index["shards"] if shard["split"] == split]}


def shard_rows(uri: str, shard: dict, storage: dict | None = None) -> Iterator[dict]:
    """The rows of one shard, for tools and tests (training streams them through Ray Data)."""
    filesystem, root = resolve_filesystem(uri, storage)
    yield from pq.read_table(f"{root}/{shard['path']}", filesystem=filesystem).to_pylist()
