"""Property tests: generated scenario files and argument lists run or fail with one clean line."""

import copy
import json
import os
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from avalanche_hsf.lab.strategies import STRATEGIES
from tests.helpers import (
    BASE,
    FAST,
    assert_clean_error,
    run_cli,
    table_at,
    temporary_files,
    toml_document,
)

# --- property tests ------------------------------------------------------------------------

# Keys worth aiming at, per table; any other key is an unknown one.
KEYS = {
    (): ["name", "description", "setting", "seeds", "benchmark", "model", "training", "strategies"],
    ("benchmark",): ["name", "n_experiences", "class_order", "path", "num_classes"],
    ("model",): ["type", "hidden_size", "hidden_layers", "drop_rate", "num_outputs"],
    ("training",): ["epochs", "batch_size", "eval_batch_size", "lr", "optimizer", "momentum"],
    **{("strategies", name): list(entry.defaults) for name, entry in STRATEGIES.items()},
}
WORDS = ["task-il", "class-il", "domain-il", "split_digits", "arrays", "mlp", "cnn", "sgd", "adam", "naive",
         "separate", "online", "flow", "entropy", "ema", "../up", ""]
SMALL = st.one_of(st.integers(-3, 12), st.floats(), st.booleans(), st.sampled_from(WORDS), st.text(max_size=6))
# Huge integers overflow any size (a clean error); the one key where a huge value is valid but
# never finishes (hidden_layers builds one layer after another) gets small ones only.
VALUES = st.one_of(SMALL, st.sampled_from([-2**63, 2**63 - 1, 2**64, 10**400]),
                   st.lists(st.integers(-1, 10), max_size=10), st.dictionaries(st.text(max_size=4), SMALL, max_size=2))
ENDLESS_WHEN_HUGE = {"hidden_layers"}
# Values that pass, so that edited files still make valid (tiny) runs: every strategy's defaults too.
PLAUSIBLE = {
    "name": ["other"], "description": ["text"], "setting": ["class-il", "domain-il"], "seeds": [[1, 2]],
    "n_experiences": [1, 5], "class_order": [list(range(9, -1, -1))], "type": ["cnn"], "hidden_size": [4],
    "hidden_layers": [2], "drop_rate": [0.5], "num_outputs": [10, 12], "epochs": [3], "batch_size": [128],
    "eval_batch_size": [1000], "lr": [0.001], "optimizer": ["adam"], "momentum": [0.5],
    **{key: [value] for entry in STRATEGIES.values() for key, value in entry.defaults.items()},
}


def often(draw) -> bool:
    """True three times in four (st.integers leans to its ends)."""
    return draw(st.sampled_from([True, True, True, False]))


@st.composite
def scenario_files(draw):
    """Text of a scenario: the tiny valid one after up to three edits, sometimes garbled."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(0, 3))):
        where = draw(st.sampled_from(sorted(KEYS)))
        table = table_at(doc, where)
        key = draw(st.sampled_from(KEYS[where] + ["bogus"]) if often(draw) else st.text(max_size=6))
        if draw(st.booleans()) and key in table:
            del table[key]
        elif key in PLAUSIBLE and often(draw):
            table[key] = draw(st.sampled_from(PLAUSIBLE[key]))
        else:
            table[key] = draw(SMALL if key in ENDLESS_WHEN_HUGE else VALUES)
    text = toml_document(doc) + "\n"
    if draw(st.integers(0, 5)) == 0:  # malformed TOML (or, by chance, still valid)
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["[", "]", "=", '"', "\n[", "= =", "\x00", "{"])) + text[at:]
    return text


def _check_outcome(code, err, out: Path):
    event(f"exit code {code}")  # shown by --hypothesis-show-statistics
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 0:
        return
    assert_clean_error(code, err)
    assert temporary_files(out) == []
    results = out / "tiny" / "results.json"
    assert not results.exists() or json.loads(results.read_text())


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=scenario_files())
def test_any_scenario_file_runs_or_fails_cleanly(capsys, text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "scenario.toml"
        path.write_text(text, encoding="utf-8")
        code, err = run_cli(capsys, "run", str(path), "--out", str(Path(folder) / "out"), *FAST)
        _check_outcome(code, err, Path(folder) / "out")


# option -> (values that pass, values that do not).
OPTIONS = {
    "--strategies": (["naive"], ["bogus", "naive,bogus", ",", "icarl", "packnet", ""]),
    "--epochs": (["1"], ["0", "-1", "x", "1.5"]),
    "--seeds": (["0", "1", "0,,", "4294967295"], ["-1", "a,b", "", "4294967296"]),
    "--device": (["cpu"], ["cuda", "tpu"]),
    "--threads": (["1"], ["0", "-2", "x", "99999999999"]),  # only 1: more threads slow tiny runs down
    "--out": (["OUT", ""], ["BLOCKED/out"]),
    "--checkpoint-dir": (["OUT/ckpt"], ["BLOCKED/ckpt"]),
    "--dataset-root": (["OUT", "nowhere"], ["OUT"]),
}
FLAGS = (["--quiet", "--verbose", "--deterministic"], ["--bogus", "-x"])
TOKENS = st.text(max_size=5)


def good_or_bad(draw, choices):
    good, bad = choices
    return draw(st.sampled_from(good if often(draw) or not bad else bad))


@st.composite
def argument_lists(draw):
    command = draw(st.sampled_from(["run"] * 4 + ["list", "walk", ""]))
    args = [command] if command else []
    if command == "run" and often(draw):
        args.append(good_or_bad(draw, (["SCENARIO"], ["no_such_scenario", "BLOCKED", ""])))
    for _ in range(draw(st.integers(0, 4))):
        if often(draw):
            option = draw(st.sampled_from(sorted(OPTIONS)))
            args += [option] + ([good_or_bad(draw, OPTIONS[option])] if often(draw) else [])
        else:
            args.append(good_or_bad(draw, FLAGS) if often(draw) else draw(TOKENS))
    if command != "run":
        return args
    # Keep the runs that are valid tiny: one epoch, one seed, naive only, unless drawn otherwise.
    for option, value in (("--strategies", "naive"), ("--epochs", "1"), ("--seeds", "0")):
        if option not in args:
            args += [option, value]
    return args + ["--quiet"]  # progress bars would add lines to stderr


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=argument_lists())
def test_any_argument_list_runs_or_fails_cleanly(capsys, args):
    threads, cwd = torch.get_num_threads(), os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        scenario = folder / "tiny.toml"
        scenario.write_text(toml_document(BASE))
        (folder / "BLOCKED").write_text("a file, not a folder")
        names = {"SCENARIO": str(scenario), "OUT": str(folder / "out"), "BLOCKED": str(folder / "BLOCKED")}
        args = [next((a.replace(k, v) for k, v in names.items() if a.startswith(k)), a) for a in args]
        os.chdir(folder)  # `--out ""` writes to the working directory: keep it in the sandbox
        try:
            code, err = run_cli(capsys, *args)
        finally:
            os.chdir(cwd)
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(False)
        _check_outcome(code, err, folder)


@pytest.mark.parametrize("args", [
    ["list", "a\nb"],  # argparse's message holds the argument, line break and all
    ["run", "SCENARIO", "--seeds", "4294967296"],  # beyond numpy's seeding
    ["run", "SCENARIO", "--threads", "99999999999"],  # beyond torch.set_num_threads' C int
], ids=["line-break-in-argument", "seed-too-large", "too-many-threads"])
def test_cli_arguments_at_the_edges(capsys, write_scenario, tmp_path, args):
    args = [str(write_scenario()) if a == "SCENARIO" else a for a in args]
    if args[0] == "run":
        args += ["--strategies", "naive", "--epochs", "1", "--quiet", "--out", str(tmp_path / "out")]
    code, err = run_cli(capsys, *args)
    assert_clean_error(code, err)
