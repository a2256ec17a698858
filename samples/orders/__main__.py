"""``python -m samples.orders``: run the order agents and generate orders."""

import sys

from samples.command_line import main
from samples.orders import __doc__ as DESCRIPTION
from samples.orders.agents import PIPELINE

sys.exit(main(PIPELINE, DESCRIPTION or ""))
