"""Helpers shared by the tests: scenario files as text and as data, the CLI run in-process,
the one-line error check, and files left in a folder."""

import json
import math
import re
import textwrap
from pathlib import Path

from avalanche.models import SimpleMLP
from torch import nn

from avalanche_hsf.lab.cli import main
from avalanche_hsf.models.hsf import HSFModel, HSFTarget

FAST = ("--strategies", "naive", "--epochs", "1", "--seeds", "0", "--quiet")


def scenario_text(setting="task-il", benchmark="split_digits", strategies=("naive",), epochs=1, seeds="[0]",
                  extra_benchmark="", strategy_tables=""):
    tables = "\n".join(f"[strategies.{name}]" for name in strategies)
    return textwrap.dedent(f"""\
        name = "tiny"
        setting = "{setting}"
        seeds = {seeds}

        [benchmark]
        name = "{benchmark}"
        {extra_benchmark}

        [model]
        hidden_size = 32

        [training]
        epochs = {epochs}
        batch_size = 32
        lr = 0.05
        momentum = 0.9
        """) + "\n" + tables + "\n" + strategy_tables


def run_cli(capsys, *args):
    """`avalanche-hsf ARGS` in-process: (exit code, stderr); argparse's exits count as exit codes."""
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err.strip()


# argparse's errors in `run` start "avalanche-hsf run: error:"
_ERROR_LINE = re.compile(r"avalanche-hsf( run| list)?: error: ")


def assert_clean_error(code, err, *fragments):
    """A non-zero exit with one line of error, no traceback and no 'internal error'."""
    assert code != 0
    assert len(err.splitlines()) == 1, err
    assert _ERROR_LINE.match(err), err
    assert "Traceback" not in err and "internal error" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


def temporary_files(folder: Path) -> list[str]:
    return [name for name in files_under(folder) if name.endswith(".tmp")]


# --- scenario files as data ---------------------------------------------------------------

# The tiny valid scenario that the tests edit.
BASE = {"name": "tiny", "setting": "task-il", "seeds": [0],
        "benchmark": {"name": "split_digits", "n_experiences": 2},
        "model": {"hidden_size": 8, "hidden_layers": 1},
        "training": {"epochs": 1, "batch_size": 64, "lr": 0.05},
        "strategies": {"naive": {}}}


def table_at(doc: dict, where: tuple) -> dict:
    """The table at the path `where`, made a table if it is missing or is not one."""
    for part in where:
        if not isinstance(doc.get(part), dict):
            doc[part] = {}
        doc = doc[part]
    return doc


def toml_string(key: str) -> str:
    return json.dumps(key, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    return toml_string(value)


def toml_document(table: dict, prefix=()) -> str:
    lines = [f"{toml_string(k)} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    for key, value in table.items():
        if isinstance(value, dict):
            header = ".".join(map(toml_string, prefix + (key,)))
            lines += ["", f"[{header}]", toml_document(value, prefix + (key,))]
    return "\n".join(lines)


# --- tiny models -------------------------------------------------------------------------------

def tiny_hsf_model(in_features=64, num_outputs=2, infer_task=False, inference="flow", chunk_size=256,
                   frozen_features=False, **target_kwargs):
    """Every hypernetwork layer trained unless `frozen_features`, which HSFPlugin's default needs."""
    target = HSFTarget(in_features, num_outputs, hidden=32, latent_dim=4, **target_kwargs)
    return HSFModel(target, embedding_dim=8, chunk_size=chunk_size, hnet_hidden=32, infer_task=infer_task,
                    inference=inference, frozen_features=frozen_features)


class TinyBNNet(nn.Module):
    """A small CNN with BatchNorm for 1x8x8 digits."""

    def __init__(self, num_classes=2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 16, 16), nn.ReLU())
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


def digits_mlp():
    return SimpleMLP(num_classes=2, input_size=64, hidden_size=32, hidden_layers=2)


# --- W&B's offline files ---------------------------------------------------------------------

def wandb_offline_history(folder: Path, wait: float = 15.0) -> list[dict]:
    """The history rows of the one offline run under `folder`, read again for up to `wait` seconds
    while there are none: W&B's service may still be writing the file when `finish()` returns."""
    import time

    deadline = time.monotonic() + wait
    rows = _wandb_history_rows(folder)
    while not rows and time.monotonic() < deadline:
        time.sleep(0.2)
        rows = _wandb_history_rows(folder)
    return rows


def _wandb_history_rows(folder: Path) -> list[dict]:
    """The history rows (`wandb.log` calls) of the one offline run under `folder`, read from its
    `run-<id>.wandb` file. wandb 0.31 ships no reader for it in Python, so this follows its format:
    a 7-byte header (":W&B", magic, version), then LevelDB-log records (crc32, length, type) in
    32 KiB blocks, each record's data (or the pieces of it) a `Record` protobuf."""
    import struct

    from wandb.proto import wandb_internal_pb2

    (path,) = Path(folder).glob("wandb/offline-run-*/run-*.wandb")
    data, block, header = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    rows, offset, pieces = [], header, b""
    while offset + header <= len(data):
        if block - offset % block < header:  # too little room left in the block for a header: padding
            offset += block - offset % block
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + header])
        pieces += data[offset + header:offset + header + length]
        offset += header + length
        if kind in (1, 4):  # a whole record, or the last piece of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            pieces = b""
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                             for item in record.history.item})
    return rows
