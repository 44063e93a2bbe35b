"""Devices: backends, transpiling, noise, calibration, mitigation, execution, jobs (reports on them: `reports/`)."""

# The one default optimisation level of every command (it wrote the committed depth reports and noise studies
# that name no level), and the transpiler seed; here, light, so the CLI can show them without importing Qiskit.
DEFAULT_OPTIMIZATION_LEVEL = 1
DEFAULT_TRANSPILER_SEED = 1234
