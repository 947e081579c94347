"""NNablaNAS runners that tie the pipeline together, and the launcher that builds them from a config."""
from .path_filter_runner import DetOFAPathFilterRunner
from .supernet_trainer import DetOFASupernetTrainer

RUNNERS = {
    "DetOFASupernetTrainer": DetOFASupernetTrainer,
    "DetOFAPathFilterRunner": DetOFAPathFilterRunner,
}

__all__ = ["DetOFASupernetTrainer", "DetOFAPathFilterRunner", "RUNNERS"]
