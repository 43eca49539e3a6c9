"""The benchmark scripts, grouped by what they measure (README.md indexes every one).

A package so that scripts import the shared helpers and each other as ``benchmarks.<group>.<name>``;
run a script as a file from the checkout's root: ``python benchmarks/speed/engines.py --help``.
"""
