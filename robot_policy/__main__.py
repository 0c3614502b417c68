import sys

from robot_policy.cli import main

sys.exit(main())
