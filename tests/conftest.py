import re
import textwrap
import warnings

import pytest
import torch

from avalanche_hsf.cli import main

warnings.filterwarnings("ignore")
# The test models are tiny: extra threads only add OpenMP overhead on a 2-core CI machine.
torch.set_num_threads(1)


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


@pytest.fixture
def write_scenario(tmp_path):
    def write(text=None, name="tiny.toml", **kwargs):
        path = tmp_path / name
        path.write_text(text if text is not None else scenario_text(**kwargs))
        return path
    return write


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
