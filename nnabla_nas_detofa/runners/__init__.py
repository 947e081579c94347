"""NNablaNAS runners that tie the pipeline together, and the launcher that builds them from a config."""
from ..compat import ensure_host

ensure_host()  # nnabla_nas.runner cannot be imported from the 0.15.0 wheel alone

from .path_filter_runner import DetOFAPathFilterRunner
from .supernet_trainer import DetOFASupernetTrainer

RUNNERS = {
    "DetOFASupernetTrainer": DetOFASupernetTrainer,
    "DetOFAPathFilterRunner": DetOFAPathFilterRunner,
}

__all__ = ["DetOFASupernetTrainer", "DetOFAPathFilterRunner", "RUNNERS"]
