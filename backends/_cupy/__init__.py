"""The CuPy backend's own kernels (everything else is the shared convspec.backends._xp code).

- maxpool: max pooling forward (values and winning tap, one thread per output) and its backward as a
  gather (one thread per input element, no atomics): CUDA source for cupy.ElementwiseKernel plus a
  NumPy twin that runs the same per-thread index arithmetic on the host, so CI checks the logic
  without a GPU and a GPU session checks the kernels against the twin.
"""
