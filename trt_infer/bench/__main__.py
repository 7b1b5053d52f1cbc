"""`python -m trt_infer.bench`: the CPU benchmark (the `bench` console script)."""
import sys

from trt_infer.bench.cpu import main

sys.exit(main())
