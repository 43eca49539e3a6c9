"""Paper studies: repeat a publication's experimental protocol with any classifier.

- :mod:`maskscope.studies.fillers`: the filler study (G-removal, Agarwal & Nguyen 2020,
  Table 1), how much class evidence each way of removing an object takes away;
- :mod:`maskscope.studies.robustness`: the robustness study (the same paper, Table S3), how
  much a method's map changes across runs that should agree, with and without an inpainter.

They build on the benchmark machinery of :mod:`maskscope.bench` (records, configurations,
summaries) but are not part of it; ``maskscope study …`` runs them from the command line.
"""
