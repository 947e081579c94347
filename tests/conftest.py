import os

import pytest

import nnabla_nas_detofa

nnabla_nas_detofa.register()  # into NNablaNAS's tables before any test, as the launcher does

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory):
    """A small synthetic VOC data set shared by the integration tests."""
    from nnabla_nas_detofa.data.synthetic import make_synthetic_voc
    root = str(tmp_path_factory.mktemp("voc") / "synthetic_voc")
    make_synthetic_voc(root, num_train=40, num_val=8, image_size=64, seed=1)
    return root
