"""Console entry points."""
from .tools import main_tools  # noqa: F401
