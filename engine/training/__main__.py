import sys

from engine.training.cli import main

sys.exit(main())
