"""Optimising masks: the perturbation games and their objectives, regularisers, descent
directions and step rules, the line search, and the loop :func:`.descent.optimise_masks`."""
