"""`python -m seggallery.gpucheck`: the same command as `python -m seggallery gpu-check`."""

import argparse
import sys

from ..cli import gpucheck

parser = argparse.ArgumentParser(prog="python -m seggallery.gpucheck", description=gpucheck.DESCRIPTION)
gpucheck.add_arguments(parser)
sys.exit(gpucheck.run(parser.parse_args()))
