"""NNablaNAS runners that tie the pipeline together, and the launcher that builds them from a config."""
from .supernet_trainer import DetOFASupernetTrainer

RUNNERS = {
    "DetOFASupernetTrainer": DetOFASupernetTrainer,
}

__all__ = ["DetOFASupernetTrainer", "RUNNERS"]
