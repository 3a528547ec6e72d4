"""convspec's built-in backends: independent implementations checked against the reference spec."""
