"""Read an offline W&B run file (``run-<id>.wandb``) back into protobuf records, with no server.

wandb 0.31 no longer ships a Python reader (``wandb.sdk.internal.datastore`` is gone), so the tests
carry this small one. The file is a LevelDB-style log: a 7-byte header (``:W&B``, 0xBEE1, a version
byte), then 32 KiB blocks; each block holds records with a 7-byte header (crc32, little-endian
uint16 length, type 1 full / 2 first / 3 middle / 4 last) and a block's tail shorter than 7 bytes
is padding. Each assembled payload is a ``wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

FILE_HEADER = struct.Struct("<4sHB")  # b":W&B", 0xBEE1, version
RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, type
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes) -> Iterator[bytes]:
    magic, ident, _version = FILE_HEADER.unpack_from(data)
    if magic != b":W&B" or ident != 0xBEE1:
        raise ValueError(f"not a W&B run file (header {data[:7]!r})")
    pos, pending = FILE_HEADER.size, b""
    while pos + RECORD_HEADER.size <= len(data):
        left_in_block = BLOCK_SIZE - pos % BLOCK_SIZE
        if left_in_block < RECORD_HEADER.size:  # padding at a block's end
            pos += left_in_block
            continue
        _crc, length, kind = RECORD_HEADER.unpack_from(data, pos)
        pos += RECORD_HEADER.size
        chunk = data[pos : pos + length]
        pos += length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk
            pending = b""
        elif kind == 0 and length == 0:  # zero-filled tail of a block still being written
            pos += left_in_block - RECORD_HEADER.size
        else:
            raise ValueError(f"corrupt W&B run file: record type {kind} at byte {pos - length}")


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    records = []
    for payload in _payloads(Path(path).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


class OfflineRun:
    """The parts of one offline run the tests look at, decoded from its records."""

    def __init__(self, path: Path):
        self.records = read_records(path)
        kinds = [r.WhichOneof("record_type") for r in self.records]
        runs = [r.run for r, k in zip(self.records, kinds, strict=True) if k == "run"]
        self.run = runs[0]
        self.config: dict[str, Any] = {}
        for r, k in zip(self.records, kinds, strict=True):
            if k == "config":
                for item in r.config.update:
                    self.config[item.key] = json.loads(item.value_json)
            if k == "run":
                for item in r.run.config.update:
                    self.config.setdefault(item.key, json.loads(item.value_json))
        self.history = [_items(r.history.item) for r, k in zip(self.records, kinds, strict=True) if k == "history"]
        self.summary: dict[str, Any] = {}
        for r, k in zip(self.records, kinds, strict=True):
            if k == "summary":
                self.summary.update(_items(r.summary.update))
        self.artifacts = [r.artifact for r, k in zip(self.records, kinds, strict=True) if k == "artifact"]
        self.metric_defs = [r.metric for r, k in zip(self.records, kinds, strict=True) if k == "metric"]
        exits = [r.exit for r, k in zip(self.records, kinds, strict=True) if k == "exit"]
        if not exits:
            raise AssertionError(f"{path} has no exit record: the run was not finished, or not written out yet")
        self.exit_code = exits[-1].exit_code


def _items(items: Any) -> dict[str, Any]:
    """``{key: value}`` from repeated (key or nested_key, value_json) items."""
    return {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for item in items}


def find_run_file(run_dir: Path) -> Path:
    files = sorted((Path(run_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    if len(files) != 1:
        raise AssertionError(f"expected one offline W&B run under {run_dir}/wandb, found {files}")
    return files[0]
