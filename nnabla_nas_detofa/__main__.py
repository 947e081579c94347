import sys

from .cli.tools import main_tools

sys.exit(main_tools())
