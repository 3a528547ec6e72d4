"""The PyTorch backends' internals (the plugin itself is convspec.backends.torch_backend).

- runtime:     the lazy torch import (and its thread count), the torch version, the TF32 switch
- workarounds: the spec's parameters PyTorch cannot take directly, built from PyTorch operations
- ops:         the op table: each spec op's inputs (checked by convspec.backends._xp) and its
               forward as torch.nn.functional calls; every backward is torch autograd of that forward
- deviations:  where PyTorch genuinely computes something else, declared with the checks it excuses

No module imports torch at import time: ``convspec backends`` must list these backends on a machine
without torch.
"""
