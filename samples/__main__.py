"""`python -m samples [--out DIR] [--family F ...]`: write the sample corpus."""
from __future__ import annotations

import argparse
from collections import Counter

from . import GENERATED, families, generate


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m samples", description=__doc__)
    ap.add_argument("--out", default=str(GENERATED), help="output directory (default samples/generated)")
    ap.add_argument("--family", action="append", choices=families(), help="only these families")
    args = ap.parse_args()
    made = generate(args.out, args.family)
    counts = Counter((s.family, s.verdict) for s in made)
    for (fam, verdict), n in sorted(counts.items()):
        print(f"{fam:16} {verdict:10} {n}")
    print(f"{len(made)} samples in {args.out}")


if __name__ == "__main__":
    main()
