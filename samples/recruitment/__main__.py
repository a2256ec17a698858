"""``python -m samples.recruitment``: run the recruitment agents and generate applications."""

import sys

from samples.command_line import main
from samples.recruitment import __doc__ as DESCRIPTION
from samples.recruitment.agents import PIPELINE

sys.exit(main(PIPELINE, DESCRIPTION or ""))
