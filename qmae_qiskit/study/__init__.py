"""Studies: how far a device's numbers are from the exact ones, and what each mitigation method buys."""
