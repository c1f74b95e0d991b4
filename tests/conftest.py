import warnings

import pytest
import torch

from tests.helpers import scenario_text

warnings.filterwarnings("ignore")
# The test models are tiny: extra threads only add OpenMP overhead on a 2-core CI machine.
torch.set_num_threads(1)


@pytest.fixture
def write_scenario(tmp_path):
    def write(text=None, name="tiny.toml", **kwargs):
        path = tmp_path / name
        path.write_text(text if text is not None else scenario_text(**kwargs))
        return path
    return write
