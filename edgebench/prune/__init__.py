"""The hardware-verified pruner: edgebench prune and edgebench bake."""
