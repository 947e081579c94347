import sys

from .cli.main import main_tools

sys.exit(main_tools())
