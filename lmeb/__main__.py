import sys

from lmeb.cli import main

sys.exit(main())
