"""`python -m converter ...` is the same command as `ros2 run trt_infer convert ...`."""
import sys

from converter.cli import main

sys.exit(main())
