"""NNablaNAS 0.15's hydra ``experiment=`` layout for our experiments (``nnabla_nas experiment=detofa/X``).

NNablaNAS 0.15 users start runs as ``python main.py experiment=classification/...`` with YAML files
under ``conf/experiment/``. Our experiments are the JSON files of ``examples/`` (the one source);
``configs/experiment/detofa/<name>.yaml`` holds the same content as YAML (written by
``scripts/make_configs.py``, checked equal by a test), so ``nnabla_nas experiment=detofa/voc_detofa``
runs exactly what ``nnabla_nas -f examples/voc_detofa.json`` runs, and hydra overrides
(``hparams.epoch=3``, ``args.output_path=runs/x``) work as NNablaNAS users expect.
"""
import os
from typing import List, Sequence

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
GROUP = "detofa"
HEADER = ("# @package _global_\n"
          "# Generated from examples/{stem}.json by scripts/make_configs.py: edit the JSON and regenerate.\n")


def experiment_yaml(conf: dict, stem: str) -> str:
    """The YAML experiment file of one JSON experiment."""
    return HEADER.format(stem=stem) + yaml.safe_dump(conf, sort_keys=False, default_flow_style=None, width=110)


def experiment_path(stem: str) -> str:
    return os.path.join(CONFIG_DIR, "experiment", GROUP, stem + ".yaml")


def available() -> List[str]:
    folder = os.path.join(CONFIG_DIR, "experiment", GROUP)
    return sorted(f"{GROUP}/{f[:-5]}" for f in os.listdir(folder) if f.endswith(".yaml"))


def is_hydra_argv(argv: Sequence[str]) -> bool:
    """Hydra style: override words (``key=value``, ``+key=value``, ``~key``), ``experiment=...`` among them."""
    words = [a for a in argv if not a.startswith("-")]
    return bool(words) and all("=" in a or a.startswith("~") for a in words) and \
        any(a.startswith("experiment=") for a in words)


def compose_experiment(overrides: Sequence[str]) -> dict:
    """The experiment (a plain dict in the JSON schema) that hydra composes from ``overrides``."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from .errors import UserError
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{' '.join(overrides)}: {msg} (experiments: {', '.join(available())})") from None
    conf = OmegaConf.to_container(cfg, resolve=True)
    conf.pop("hydra", None)
    return conf
