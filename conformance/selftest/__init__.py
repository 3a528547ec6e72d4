"""The suite's self-test: a catalogue of mutant backends (the NumPy backend with one realistic semantic
change each, convspec.conformance.selftest.mutants) and the mutation score of a profile
(convspec.conformance.selftest.score): which mutants its cases kill, per op, and which case kills which
mutant. `convspec selftest` prints it; tests/test_mutation.py keeps it at 100% (full) and >= 95% (quick)."""
