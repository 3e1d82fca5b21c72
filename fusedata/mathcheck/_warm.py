"""Imported by the forkserver before it forks workers, so every worker starts warm.

Importing sympy + math-verify and running one check (which builds the ANTLR LaTeX parser)
costs far more than forking; doing it once in the forkserver makes a replacement worker
(after a timeout kill) cost a fork, not a re-import.
"""

from fusedata.mathcheck.equivalence import check_equivalence

check_equivalence("\\frac{1}{2}", "0.5")
check_equivalence("(1, 2)", "x^2+1")
