"""Command lines: ``nnabla_nas -f EXP.json`` and ``python -m nnabla_nas_detofa <tool>``."""
