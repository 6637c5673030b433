"""`python -m repoloop.cli`: the same as the `repoloop` command."""

import sys

from repoloop.cli import main

sys.exit(main())
