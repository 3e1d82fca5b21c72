"""Imported by the warm fork server (:mod:`sandbox._zygote`) before it forks workers, so
every worker starts warm.

Importing sympy + math-verify and running the first checks of each kind (building the
ANTLR LaTeX parser, its DFA caches and sympy's caches) costs far more than forking; doing
it once in the zygote makes every worker, including a replacement after a timeout kill,
start warm.
"""

from fusedata.mathcheck.equivalence import check_equivalence

_WARM_PAIRS = [
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
    ("(1, 2)", "x^2+1"),
    ("[1, \\infty)", "[1,\\infty)"),
    ("\\{1, 2\\}", "\\{2, x\\}"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("x^2+2x+1", "(x+1)^2"),
    ("\\pm 2", "2, -2"),
    ("12.5\\%", "0.125"),
    ("y = 2x + 3", "2x+3"),
    ("\\text{(A)}", "A \\text{ apples}"),
    ("\\sqrt{2}", "1.414214"),  # numeric rules (50-digit evaluation)
    ("\\frac{1}{7}", "0.\\overline{142857}"),  # exact arithmetic
]
for _gold, _pred in _WARM_PAIRS:
    check_equivalence(_gold, _pred)
