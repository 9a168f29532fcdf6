import sys

from cxrzoo.cli import main

sys.exit(main())
