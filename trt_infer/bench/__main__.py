"""`python -m trt_infer.bench`: the CPU benchmark (the `bench` console script)."""
import sys

from trt_infer.bench.cpu import main

if __name__ == "__main__":  # importing the module (e.g. to list the package) must not run the benchmark
    sys.exit(main())
