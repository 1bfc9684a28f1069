"""`python -m flows.cli`: the `firelane` command."""

import sys

from flows.cli.main import main

sys.exit(main())
