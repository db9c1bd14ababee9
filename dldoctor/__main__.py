"""``python -m dldoctor``: the same CLI as the ``dldoctor`` console script."""

import sys

from dldoctor.cli import main

sys.exit(main())
