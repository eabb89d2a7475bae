"""A mutation fuzzer for the engine: `python -m cdr.fuzz` (and `make fuzz HOURS=N`).

Seeds are the benign and hostile samples (samples/); mutators.py damages them the way a careless tool
or an attacker would; runner.py sends every mutant through the real worker pool and judges the result;
oracle.py scans each delivered file independently of the engine for anything that can act.
"""
