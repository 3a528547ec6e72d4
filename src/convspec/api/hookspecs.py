"""convspec's plugin hooks. A plugin is a module (or object) with functions marked @convspec.hookimpl.

Built-in backends are registered exactly like third-party ones: through the `convspec` entry-point
group, implementing these hooks.
"""

import pluggy

hookspec = pluggy.HookspecMarker("convspec")
hookimpl = pluggy.HookimplMarker("convspec")


@hookspec
def register_backends(register):
    """Register backends: call register(backend) with each convspec.conformance.backend.Backend."""


@hookspec
def register_case_sources(register):
    """Register case sources: call register(name, source) with source(profile, seed, ops) -> iterable of Case."""
