"""Figures: how a map is coloured (:mod:`.scaling`), a map over its photo (:mod:`.overlay`),
grids of explanations (:mod:`.figures`) and the checks' figures (:mod:`.check_figures`)."""
