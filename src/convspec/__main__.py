from convspec.conformance.cli import main

main()
