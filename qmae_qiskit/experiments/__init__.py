"""Experiments at scale: grids of training runs (cells) evaluated on the same images and masks, run on a Dask
cluster, summarised with confidence intervals over seeds.

grid (parse and validate axes) -> cells (one run folder each, names, settings) -> cluster (a Dask client) ->
tasks (what a worker does for a cell) -> runner (submit, skip finished, record failures) -> stats / summary / plots.
"""
