"""The value schemas of experiment files live in ``nnabla_nas_detofa.schema`` (standard library
only, so the command-line tools validate their flags with the same specs without importing
nnabla); runner modules keep importing them from here."""
from ..schema import (MISSING, Bool, Choice, Custom, Int, ListOf, Num, Obj, SchemaError, Spec, Str,
                      epochs_spec, finite_number, seed_spec, show_value, unknown_key_message, validate, workers_spec)

__all__ = ["MISSING", "Bool", "Choice", "Custom", "Int", "ListOf", "Num", "Obj", "SchemaError", "Spec", "Str",
           "epochs_spec", "finite_number", "seed_spec", "show_value", "unknown_key_message", "validate", "workers_spec"]
