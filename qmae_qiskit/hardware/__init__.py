"""Devices: backends, transpiling, noise, calibration, depth reports, mitigation, execution, jobs."""
