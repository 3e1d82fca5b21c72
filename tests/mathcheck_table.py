r"""Labelled (gold, prediction, expected verdict) pairs for the math checker.

Hand-written; every row states what a careful human grader would say. Rows marked with a
comment "mv-wrong" are ones where plain math-verify 0.9 gives the wrong answer and
fusedata's normalisation/guards fix it. Used by tests/test_mathcheck_table.py.
"""

C, X = "correct", "incorrect"

TABLE: list[tuple[str, str, str]] = [
    # --- integers and formatting
    ("3", "3", C),
    ("3", "3.0", C),
    ("3", "3.00", C),
    ("3", "4", X),
    ("-5", "-5", C),
    ("-5", "5", X),
    ("-5", "\u22125", C),  # unicode minus
    ("0", "0", C),
    ("0", "-0", C),
    ("42", "\\text{42}", C),
    ("42", "42.", C),  # mv-wrong
    ("42", "$42$", C),
    ("42", "\\(42\\)", C),
    ("7", "7 \\text{ units}", C),
    ("24", "24 \\mbox{ cm}^2", C),
    ("12", "12 dollars", C),  # mv-wrong
    ("6", "\\text{6 apples}", C),  # mv-wrong
    ("15", "15 \\text{ minutes}", C),
    ("15", "16 \\text{ minutes}", X),
    ("100", "10^2", C),
    ("100", "10^3", X),
    ("1000000", "10^6", C),
    ("8", "2^3", C),
    ("9", "3^2", C),
    ("10", "\\sqrt{100}", C),
    ("10", "\\sqrt{10}", X),
    ("3628800", "10!", C),
    ("1267650600228229401496703205376", "2^{100}", C),
    ("123456789", "123456788", X),
    ("123456789", "123456789", C),
    ("987654321", "987654321.0", C),
    ("2023", "2024", X),
    # --- thousands separators
    ("1000", "1,000", C),
    ("1,000", "1000", C),
    ("1{,}234", "1234", C),
    ("12,345,678", "12345678", C),
    ("1,234", "1,243", X),
    ("1000000", "1{,}000{,}000", C),
    ("1000000", "1\\,000\\,000", C),  # mv-wrong
    ("5000", "5,000", C),
    ("5000", "50,000", X),
    ("2,500", "2500.00", C),
    # --- currency
    ("12.5", "\\$12.50", C),
    ("\\$12.50", "12.5", C),
    ("\\$12.50", "\\$12.05", X),
    ("20", "\\$20", C),
    ("20", "\\$2", X),
    # --- fractions vs decimals
    ("\\frac{1}{2}", "0.5", C),
    ("0.5", "\\frac{1}{2}", C),
    ("\\frac{1}{2}", "\\frac{2}{4}", C),
    ("\\frac{1}{2}", "1/2", C),
    ("1/2", "\\frac{1}{2}", C),
    ("\\frac{1}{2}", "0.25", X),
    ("\\frac{1}{2}", "\\frac{1}{3}", X),
    ("\\dfrac{3}{4}", "0.75", C),
    ("\\tfrac{3}{4}", "\\frac{6}{8}", C),
    ("\\dfrac{3}{4}", "\\dfrac{4}{3}", X),
    ("\\frac{2}{3}", "\\tfrac{2}{3}", C),
    # A truncated repeating decimal is not the fraction (issue 16: 0.142857 is not 1/7).
    ("\\frac{1}{3}", "0.333333", X),
    ("\\frac{1}{3}", "0.33", X),
    ("\\frac{1}{3}", "0.3", X),
    ("\\frac{5}{8}", "0.625", C),
    ("\\frac{5}{8}", "0.62", X),
    ("\\frac{7}{2}", "3.5", C),
    ("\\frac{7}{2}", "3\\frac{1}{2}", C),  # mixed number
    ("3\\frac{1}{2}", "3.5", C),  # mixed number
    ("2\\frac{3}{4}", "\\frac{11}{4}", C),  # mixed number
    ("2\\frac{3}{4}", "\\frac{3}{2}", X),
    ("-\\frac{1}{2}", "\\frac{-1}{2}", C),
    ("-\\frac{1}{2}", "-0.5", C),
    ("-\\frac{1}{2}", "0.5", X),
    ("\\frac{22}{7}", "\\pi", X),
    ("\\frac{1}{1024}", "0.0009765625", C),
    ("0.125", "\\frac{1}{8}", C),
    ("0.125", "\\frac{1}{9}", X),
    ("2.5", "\\frac{5}{2}", C),
    ("2.5", "2.50", C),
    ("2.5", "25", X),
    # --- tiny values (absolute rounding false positives)
    ("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}", X),  # mv-wrong
    ("1/2^{99}", "1/2^{98}", X),  # mv-wrong
    ("10^{-7}", "2 \\times 10^{-7}", X),
    ("0.0000001", "0.0000002", X),  # mv-wrong
    ("0.0000001", "10^{-7}", C),
    ("10^{-9}", "0.000000001", C),
    ("\\frac{1}{10^8}", "\\frac{1}{10^9}", X),
    ("3 \\times 10^{-8}", "3 \\times 10^{-8}", C),
    # --- algebraic expressions
    ("2\\sqrt{2}", "\\sqrt{8}", C),
    ("2\\sqrt{2}", "\\sqrt{2}", X),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}", C),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}", X),
    ("\\sqrt{2}", "1.414214", C),
    ("\\sqrt{2}", "1.41", X),
    ("x^2+2x+1", "(x+1)^2", C),
    ("x^2+2x+1", "(x-1)^2", X),
    ("x^2 - 1", "(x-1)(x+1)", C),
    ("2x+3", "3+2x", C),
    ("2x+3", "2x-3", X),
    ("\\frac{x}{2}", "0.5x", C),
    ("3\\sqrt{5}", "\\sqrt{45}", C),
    ("5 + 2\\sqrt{6}", "(\\sqrt{2}+\\sqrt{3})^2", C),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{\\sqrt{5}+1}{2}", C),
    ("\\frac{1+\\sqrt{5}}{2}", "\\frac{1-\\sqrt{5}}{2}", X),
    ("\\pi", "\\pi", C),
    ("2\\pi", "6.283185", C),
    ("\\pi", "3.14", X),
    ("\\frac{\\pi}{4}", "\\frac{\\pi}{2}", X),
    ("4\\pi", "4 \\pi", C),
    ("12\\pi", "12\\pi \\text{ cm}^2", C),
    ("e", "e", C),
    ("e^2", "e^{2}", C),
    ("\\log_2 8", "3", C),
    ("3", "\\log_{2} 9", X),
    ("\\frac{1}{2}", "\\sin(\\pi/6)", C),
    ("\\frac{1}{2}", "\\cos(\\pi/6)", X),
    ("\\infty", "\\infty", C),
    ("\\infty", "-\\infty", X),
    # --- complex numbers
    ("3+4i", "4i+3", C),
    ("3+4i", "3-4i", X),
    ("i", "i", C),
    # --- intervals
    ("[1, 2)", "[1,2)", C),
    ("[1, 2)", "(1,2]", X),
    ("[1, 2]", "[1, 2)", X),
    ("(-\\infty, 3]", "(-\\infty,3]", C),
    ("(-\\infty, 3]", "(-\\infty, 3)", X),
    ("(0, \\infty)", "(0,\\infty)", C),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty,2)\\cup(3,\\infty)", C),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(3,\\infty)\\cup(-\\infty,2)", C),
    ("(-\\infty, 2) \\cup (3, \\infty)", "(-\\infty,2]\\cup[3,\\infty)", X),
    ("[-1, 1]", "[-1,1]", C),
    ("[-1, 1]", "[-2, 2]", X),
    ("\\left[ 0, \\frac{1}{2} \\right)", "[0, 0.5)", C),
    # --- tuples / points / sets
    ("(1, 2)", "(1,2)", C),
    ("(1, 2)", "(2, 1)", X),
    ("(3, -1)", "(3,-1)", C),
    ("(3, -1)", "(-1, 3)", X),
    ("(1, 2, 3)", "(1,2,3)", C),
    ("(1, 2, 3)", "(3,2,1)", X),
    ("(\\frac{1}{2}, 3)", "(0.5, 3)", C),
    ("\\{1, 2\\}", "\\{2, 1\\}", C),
    ("\\{1, 2, 3\\}", "\\{1, 2\\}", X),
    ("\\{1, 2, 3\\}", "1, 2, 3", C),
    ("1, 2", "2, 1", C),
    ("1, 2", "1", X),
    ("-2, 3", "3, -2", C),
    ("-2, 3", "2, -3", X),
    ("2, 3", "2 \\text{ and } 3", C),
    ("2, 3", "2 \\text{ or } 3", C),
    ("2, 3", "x = 2, x = 3", C),
    ("2, 3", "x=2 \\text{ or } x=3", C),
    # --- plus-minus
    ("\\pm 2", "2, -2", C),
    ("\\pm 2", "-2, 2", C),
    ("\\pm 2", "2", X),
    ("\\pm\\sqrt{3}", "-\\sqrt{3}, \\sqrt{3}", C),
    ("1 \\pm \\sqrt{2}", "1+\\sqrt{2}, 1-\\sqrt{2}", C),
    ("1 \\pm \\sqrt{2}", "1+\\sqrt{2}", X),
    ("2, -2", "\\pm 2", C),
    # --- matrices / vectors
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", C),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}2\\\\1\\end{pmatrix}", X),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}",
        C,
    ),
    (
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}",
        X,
    ),
    ("\\begin{pmatrix} 1/2 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix}0.5\\\\0\\end{pmatrix}", C),
    (
        "\\begin{pmatrix} -1 \\\\ 3 \\\\ 2 \\end{pmatrix}",
        "\\begin{pmatrix}-1\\\\3\\\\-2\\end{pmatrix}",
        X,
    ),
    # --- percentages
    ("50\\%", "50", C),
    ("50\\%", "50\\%", C),
    ("50\\%", "0.5", C),
    ("50\\%", "5\\%", X),
    ("25%", "25\\%", C),
    ("25", "25\\%", C),
    ("12.5\\%", "12.5", C),  # mv-wrong
    ("12.5\\%", "1.25", X),
    ("40", "60\\%", X),
    # --- degrees
    ("30^\\circ", "30", C),
    ("30", "30^\\circ", C),
    ("45^{\\circ}", "45\u00b0", C),  # mv-wrong
    ("90", "90^{\\circ}", C),
    ("60^\\circ", "30^\\circ", X),
    ("120", "120\\degree", C),  # mv-wrong
    # --- words and \text{} answers
    ("\\text{Monday}", "Monday", C),
    ("Monday", "\\text{Monday}", C),
    ("\\text{Tuesday}", "Monday", X),
    ("Monday", "dynamo", X),  # words parse as symbol products
    ("\\text{yes}", "Yes", C),
    ("\\text{even}", "\\text{odd}", X),
    ("\\text{no}", "\\text{on}", X),  # compared as words, not as n*o
    ("\\text{blue}", "\\text{blue}", C),
    # --- multiple choice
    ("\\text{(A)}", "A", C),
    ("(A)", "\\text{(A)}", C),
    ("\\text{(C)}", "(B)", X),
    ("B", "\\textbf{(B)}", C),
    ("(D)", "D", C),
    ("(D)", "E", X),
    ("\\boxed{\\text{(C)}}", "C", C),
    ("e", "2.718282", C),
    ("a", "b", X),
    ("\\text{(B)}", "\\text{(B) } 12", C),  # mv-wrong
    ("\\text{(E)}", "(E) \\ 7", C),  # mv-wrong
    ("\\text{(A)}", "(C) 5", X),
    # --- equations vs values
    ("y = 2x + 3", "2x+3", C),
    ("y=2x+3", "y = 3 + 2x", C),
    ("y=2x+3", "y=2x-3", X),
    ("x = 5", "5", C),
    ("5", "x = 5", C),
    ("5", "x = 6", X),
    ("5", "x+y=5", X),  # mv-wrong
    ("x + y = 5", "5", X),  # mv-wrong
    ("2x + 3y = 6", "3y + 2x = 6", C),
    ("x^2 + y^2 = 25", "x^2+y^2=25", C),
    ("x^2 + y^2 = 25", "x^2+y^2=5", X),
    # --- malformed predictions
    ("\\frac{1}{2}", "\\frac{1}{2", X),  # mv-wrong
    ("\\frac{1}{2}", "\\frac{1}{2}}", X),  # mv-wrong
    ("5", "", X),
    ("5", "   ", X),
    # --- gold given as plain text
    ("sqrt(2)", "\\sqrt{2}", C),
    ("2*pi", "2\\pi", C),  # mv-wrong
    ("pi/4", "\\frac{\\pi}{4}", C),  # mv-wrong
    ("pi/4", "\\frac{\\pi}{3}", X),
    ("x^2 - 1", "x^2-1", C),
    ("3/4", "0.75", C),
    ("3/4", "\\frac{4}{3}", X),
    ("-7", "-7.0", C),
    ("2\\pi", "2 pi", C),  # mv-wrong
    ("2", "2 pi", X),
    ("2\\sqrt{3}", "2 sqrt(3)", C),  # mv-wrong
    ("10", "ten", C),  # number word (issue 16)
    # --- large / exact arithmetic
    ("2^{10}", "1024", C),
    ("2^{10}", "1023", X),
    ("\\binom{5}{2}", "10", C),
    ("\\binom{5}{2}", "20", X),
    ("5!", "120", C),
    ("1.0000001", "1", X),
    ("999999", "1000000", X),
]


# --------------------------------------------------------------------------------------
# Full responses, written the way instruction-tuned models answer MATH / GSM8K /
# OpenMathInstruct-2 problems (Gemma: markdown headings and "**Answer:**"; Mistral: "The
# answer is"; Llama 3.1: "## Step k" + "The final answer is: $\\boxed{}$"; Qwen: boxed;
# Minerva-prompted models: "Final Answer: The final answer is $X$. I hope it is correct.").
# All invented for these tests (issue 16 asks for our own cases, none copied from any
# held-out set); each row says why its label is what a careful grader would give.
# Row: (class, gold, response, expected verdict, reason).

T, Z = "timeout", "too_complex"

_FRAC200 = "\\frac{1}{" * 200 + "2" + "}" * 200  # 1/(1/(...1/2)) with 200 levels = 2 (even)
_FRAC201 = "\\frac{1}{" * 201 + "2" + "}" * 201  # 201 levels: 1/2
_SUM1000 = " + ".join(str(k) for k in range(1, 1001))  # 500500
_XSUM1000 = " + ".join(f"{k}x" for k in range(1, 1001))  # 500500x: symbolic, math-verify
_BRACES25 = "{" * 25 + "x+1" + "}" * 25
_LEFT60 = "\\left(" * 60 + "x+1" + "\\right)" * 60

RESPONSE_TABLE: list[tuple[str, str, str, str, str]] = [
    # --- control: boxed answers (Qwen / Llama style)
    ("boxed", "5", "## Step 1: Factor\n$(x-2)(x-3)=0$\n\nThe final answer is: $\\boxed{5}$", C,
     "boxed 5 equals gold 5"),
    ("boxed", "5", "Thus the sum of the roots is $\\boxed{6}$.", X, "boxed 6 is not 5"),
    ("boxed", "\\frac{3}{4}", "So the probability is $\\boxed{\\dfrac{3}{4}}$.", C,
     "dfrac is the same fraction"),
    ("boxed", "\\frac{3}{4}", "So the probability is $\\boxed{\\dfrac{4}{3}}$.", X,
     "reciprocal is a different value"),
    # --- "The answer is ..." (Mistral style)
    ("answer_is", "5", "Adding the two counts gives 5. The answer is 5, not 6.", C,
     "the value right after the phrase"),
    ("answer_is", "6", "Adding the two counts gives 5. The answer is 5, not 6.", X,
     "6 is the value ruled out"),
    ("answer_is", "4", "It depends on rounding. The answer is either 3 or 4.", X,
     "hedged between two values"),
    ("answer_is", "\\text{Tuesday}", "Counting 8 days from Monday, the answer is **Tuesday**.",
     C, "bold word answer"),
    ("answer_is", "10", "Half of 21 is 10.5, so the answer is 10.5.", X, "10.5 is not 10"),
    ("answer_is", "3", "Each gets the same share, so the answer is $3$ apples.", C,
     "math span followed by a unit"),
    # --- "Answer:" labels (no box)
    ("answer_label", "\\frac{1}{2}", "Half of the 10 marbles are red.\n\nAnswer: 1/2", C,
     "Answer: line states 1/2"),
    ("answer_label", "\\frac{1}{2}", "Three of the 10 marbles are red.\n\nAnswer: 3/10", X,
     "3/10 is not 1/2"),
    ("answer_label", "45", "The angles are equal, so each is 45 degrees.\n\n**Answer:** 45 degrees",
     C, "bold Answer label with a unit"),
    ("answer_label", "45", "Each angle is 90/2 degrees.\n\n**Answer:** 40 degrees", X,
     "40 degrees is not 45"),
    ("answer_label", "12", "Let me compute: 3 * 4 = 12.\n\n**Answer**: 12", C,
     "colon after the bold label"),
    ("answer_label", "12", "Let me compute: 3 * 5 = 15.\n\nAnswer: 15", X, "15 is not 12"),
    ("answer_label", "7", "We first tried 5, which fails.\nAnswer: 7 apples", C,
     "label wins over intermediate numbers"),
    ("answer_label", "7", "We first tried 7, which fails.\nAnswer: 5 apples", X,
     "the stated answer 5 is what counts"),
    # --- Minerva format
    ("minerva", "42", "Solution: $6 \\cdot 7 = 42$.\nFinal Answer: The final answer is $42$. "
     "I hope it is correct.", C, "Minerva sentence, value 42"),
    ("minerva", "42", "Solution: $6 \\cdot 8 = 48$.\nFinal Answer: The final answer is $48$. "
     "I hope it is correct.", X, "48 is not 42"),
    ("minerva", "[2,5)", "Final Answer: The final answer is $[2,5)$. I hope it is correct.", C,
     "interval kept whole"),
    ("minerva", "[2,5)", "Final Answer: The final answer is $[2,5]$. I hope it is correct.", X,
     "closed end differs"),
    ("minerva", "100000", "Final Answer: The final answer is $100,000$. I hope it is correct.",
     C, "thousands separator"),
    ("minerva", "100000", "Final Answer: The final answer is $10,000$. I hope it is correct.",
     X, "ten times smaller"),
    ("minerva", "\\frac{7}{2}", "Final Answer: The final answer is 3.5. I hope it is correct.",
     C, "decimal point inside the answer is not a sentence end"),
    ("minerva", "\\frac{7}{2}", "Final Answer: The final answer is 3.4. I hope it is correct.",
     X, "3.4 is not 7/2"),
    # --- markdown headings
    ("heading", "42", "## Step 1\nWe add 40 and 2.\n\n### Final answer\n$42$", C,
     "answer on the line after the heading"),
    ("heading", "42", "## Step 1\nWe add 40 and 3.\n\n### Final answer\n$43$", X, "43 is not 42"),
    ("heading", "18", "### Solution\nShe sells 9 eggs for $2 each.\n\n**Final Answer**\n\n"
     "Janet makes **$18** per day.", C, "bold line heading, answer sentence below"),
    ("heading", "18", "### Solution\nShe sells 8 eggs for $2 each.\n\n**Final Answer**\n\n"
     "Janet makes **$16** per day.", X, "16 is not 18"),
    ("heading", "\\sqrt{2}", "#### Final Answer:\n$\\sqrt{2}$", C, "h4 heading with colon"),
    ("heading", "\\sqrt{2}", "#### Final Answer:\n$\\sqrt{3}$", X, "sqrt 3 is not sqrt 2"),
    # --- GSM8K "####"
    ("gsm8k", "280", "He buys 4 packs of 70 = <<4*70=280>>280 stickers.\n#### 280", C,
     "GSM8K marker"),
    ("gsm8k", "280", "He buys 4 packs of 60 = <<4*60=240>>240 stickers.\n#### 240", X,
     "240 is not 280"),
    ("gsm8k", "1200", "Total is 12 * 100 = 1,200 dollars.\n#### 1,200", C,
     "comma thousands in the marker"),
    ("gsm8k", "1200", "Total is 12 * 10 = 120 dollars.\n#### 120", X, "120 is not 1200"),
    ("gsm8k", "5", "#### Step 1: count\nThere are 2 + 3 = 5 cats.\n#### 5", C,
     "a level-4 heading with words is not the marker"),
    ("gsm8k", "5", "#### Step 1: count\nThere are 2 + 2 = 4 cats.\n#### 4", X, "4 is not 5"),
    # --- the answer stated in the last sentence
    ("last_sentence", "32", "She sells 16 eggs at $2 each, earning 16 x 2 = $32.", C,
     "right side of the last equals sign"),
    ("last_sentence", "32", "She sells 15 eggs at $2 each, earning 15 x 2 = $30.", X,
     "30 is not 32"),
    ("last_sentence", "18", "Janet has 16 - 3 - 4 = 9 eggs left.\nShe sells 9 eggs at $2 each, "
     "earning $18.\nI hope this helps!", C, "sentence-final number; pleasantry skipped"),
    ("last_sentence", "18", "Janet has 16 - 3 - 5 = 8 eggs left.\nShe sells 8 eggs at $2 each, "
     "earning $16.\nI hope this helps!", X, "16 is not 18"),
    ("last_sentence", "3", "The robe needs 2 bolts of blue and 2/2 = 1 bolt of white, so "
     "2 + 1 = 3 bolts in total.", C, "result of the final computation"),
    ("last_sentence", "3", "The robe needs 2 bolts of blue and 2 bolts of white, so "
     "2 + 2 = 4 bolts in total.", X, "4 is not 3"),
    ("last_sentence", "70000", "The profit is 200,000 - 130,000 = $70,000.", C,
     "currency and thousands separators"),
    ("last_sentence", "70000", "The profit is 200,000 - 150,000 = $50,000.", X,
     "50,000 is not 70,000"),
    # --- several boxes
    ("multi_box", "20", "He picks \\boxed{12}, then \\boxed{8}, for a total of \\boxed{20}.", C,
     "running computation: the last box is the answer"),
    ("multi_box", "20", "He picks \\boxed{12}, then \\boxed{9}, for a total of \\boxed{21}.", X,
     "running computation ending in 21"),
    ("multi_box", "2, 3", "The solutions are $x = \\boxed{2}$ or $x = \\boxed{3}$.", C,
     "two roots of a list-shaped gold"),
    ("multi_box", "2, 3", "The solutions are $x = \\boxed{2}$ or $x = \\boxed{4}$.", X,
     "second root wrong"),
    ("multi_box", "-1, 4", "So \\boxed{4}, \\boxed{-1}", C, "root order does not matter"),
    ("multi_box", "3", "The roots are $\\boxed{-3}$ and $\\boxed{3}$.", X,
     "two answers to a one-answer question (hedging)"),
    ("multi_box", "(1, 2)", "So $x=\\boxed{1}$ and $y=\\boxed{2}$.", C,
     "coordinates of a tuple gold, in order"),
    ("multi_box", "(1, 2)", "So $x=\\boxed{2}$ and $y=\\boxed{1}$.", X, "coordinates swapped"),
    ("multi_box", "2, 3", "Hence\n\\[ x = \\boxed{2} \\]\nor\n\\[ x = \\boxed{3} \\]", C,
     "roots in separate displays, list-shaped gold"),
    ("multi_box", "2, 3", "Hence\n\\[ x = \\boxed{2} \\]\nor\n\\[ x = \\boxed{5} \\]", X,
     "second root wrong"),
    ("multi_box", "1,000", "He pays \\boxed{500} now and \\boxed{500} later, \\boxed{1,000} in all.",
     C, "a thousands separator does not make the gold a list"),
    ("multi_box", "6", "Area of the first part: $\\boxed{2}$; adding the second gives "
     "$2 + 4 = \\boxed{6}$.", C, "steps separated by words: last box"),
    # --- markup around the answer
    ("markup", "50", "Each box holds 10, so 5 boxes hold **50**.", C, "bold number"),
    ("markup", "50", "Each box holds 10, so 4 boxes hold **40**.", X, "40 is not 50"),
    ("markup", "\\text{(C)}", "Checking each option, only (C) works.\n\nThe answer is **(C)**.",
     C, "bold choice letter"),
    ("markup", "\\text{(C)}", "Checking each option, only (B) works.\n\nThe answer is **(B)**.",
     X, "B is not C"),
    ("markup", "9", "Therefore $\\boxed{\\text{The answer is } 9}$", C,
     "phrase inside text inside the box"),
    ("markup", "9", "Therefore $\\boxed{\\text{The answer is } 8}$", X, "8 is not 9"),
    ("markup", "C", "All other choices fail, hence $\\boxed{\\textbf{(C)}}$.", C,
     "textbf choice letter"),
    ("markup", "C", "All other choices fail, hence $\\boxed{\\textbf{(D)}}$.", X, "D is not C"),
    ("number_words", "3", "She has two apples and gets one more.\nThe answer is three.", C,
     "number word three"),
    ("number_words", "3", "She has two apples and gets two more.\nThe answer is four.", X,
     "four is not 3"),
    ("number_words", "25", "Answer: twenty-five", C, "hyphenated number word"),
    ("number_words", "25", "Answer: twenty-four", X, "24 is not 25"),
    ("number_words", "12", "So the answer is twelve eggs.", C, "number word with a unit"),
    ("number_words", "12", "So the answer is eleven eggs.", X, "11 is not 12"),
    ("func_prefix", "\\frac{x-3}{2}", "Swapping x and y and solving gives "
     "$\\boxed{f^{-1}(x)=\\frac{x-3}{2}}$", C, "inverse-function prefix"),
    ("func_prefix", "\\frac{x-3}{2}", "Swapping x and y and solving gives "
     "$\\boxed{f^{-1}(x)=\\frac{x+3}{2}}$", X, "sign inside differs"),
    ("func_prefix", "2x+5", "Hence $\\boxed{g(x) = 2x + 5}$.", C, "function-value prefix"),
    ("func_prefix", "2x+5", "Hence $\\boxed{g(x) = 2x - 5}$.", X, "sign differs"),
    ("func_prefix", "17", "Plugging in, $\\boxed{p(3) = 17}$.", C, "value at a point"),
    ("func_prefix", "17", "Plugging in, $\\boxed{p(3) = 19}$.", X, "19 is not 17"),
    # --- unicode notation
    ("unicode", "\\frac{1}{2}", "The probability is ½.", C, "vulgar fraction"),
    ("unicode", "\\frac{1}{2}", "The probability is ⅓.", X, "one third"),
    ("unicode", "2\\pi", "**Answer:** 2π", C, "Greek pi"),
    ("unicode", "2\\pi", "**Answer:** 3π", X, "3 pi"),
    ("unicode", "\\infty", "The limit is ∞.\n\nAnswer: ∞", C, "infinity sign"),
    ("unicode", "-\\infty", "Answer: ∞", X, "sign of infinity"),
    ("unicode", "3\\sqrt{2}", "Answer: 3√2", C, "radical sign"),
    ("unicode", "3\\sqrt{2}", "Answer: 2√3", X, "2 sqrt 3 differs"),
    ("unicode", "x^2+1", "Answer: x² + 1", C, "superscript two"),
    ("unicode", "x^2+1", "Answer: x³ + 1", X, "cube differs"),
    ("unicode", "-5", "Answer: −5", C, "unicode minus"),
    ("unicode", "-5", "Answer: 5", X, "sign dropped"),
    # --- repeating decimals
    ("repeating", "\\frac{2}{3}", "So the value is $\\boxed{0.\\overline{6}}$.", C,
     "0.(6) repeating is exactly 2/3"),
    ("repeating", "\\frac{2}{3}", "So the value is $\\boxed{0.\\overline{3}}$.", X,
     "0.(3) is 1/3"),
    ("repeating", "\\frac{1}{6}", "Thus $\\boxed{0.1\\overline{6}}$", C, "mixed repeating"),
    ("repeating", "\\frac{1}{6}", "Thus $\\boxed{0.\\overline{16}}$", X, "16/99 is not 1/6"),
    ("repeating", "\\frac{1}{7}", "Answer: 0.142857142857...", C,
     "the block written twice then dots means repeating"),
    ("repeating", "\\frac{5}{33}", "Thus $\\boxed{0.\\overline{15}}$", C, "15/99 = 5/33"),
    # --- mixed numbers
    ("mixed", "\\frac{5}{2}", "Each gets 2 1/2 pizzas.\n\nAnswer: 2 1/2", C,
     "mixed number 2 1/2"),
    ("mixed", "\\frac{5}{2}", "Each gets 1 1/2 pizzas.\n\nAnswer: 1 1/2", X, "1 1/2 is 3/2"),
    ("mixed", "\\frac{11}{4}", "So $\\boxed{2\\frac{3}{4}}$ cups.", C, "LaTeX mixed number"),
    ("mixed", "\\frac{11}{4}", "So $\\boxed{2\\frac{1}{4}}$ cups.", X, "2 1/4 is 9/4"),
    ("mixed", "3.5", "Answer: 3 1/2 hours", C, "mixed number vs decimal gold"),
    ("mixed", "3.5", "Answer: 3 1/4 hours", X, "3.25 is not 3.5"),
    # --- empty set
    ("emptyset", "\\emptyset", "No real x works, so the set is $\\boxed{\\varnothing}$.", C,
     "varnothing is emptyset"),
    ("emptyset", "\\emptyset", "Only x = 0 works, so the set is $\\boxed{\\{0\\}}$.", X,
     "{0} is not empty"),
    ("emptyset", "\\varnothing", "The solution set is $\\boxed{\\emptyset}$.", C,
     "emptyset is varnothing"),
    ("emptyset", "\\emptyset", "The solution set is ∅.", C, "unicode empty set"),
    # --- false positives of numeric comparison
    ("tiny", "\\frac{1}{2004!}", "Telescoping leaves $\\boxed{\\frac{1}{2006!}}$.", X,
     "tiny values differ by a factor ~4e6"),
    ("tiny", "\\frac{1}{2004!}", "Telescoping leaves $\\boxed{\\frac{1}{2004!}}$.", C,
     "identical tiny value"),
    ("tiny", "\\frac{1}{2004!}", "Telescoping leaves $\\boxed{\\frac{2005}{2005!}}$.", C,
     "equal value written differently (exact big integers)"),
    ("tiny", "2^{-100}", "So $\\boxed{2^{-99}}$.", X, "factor of two"),
    ("tiny", "2^{-100}", "So $\\boxed{\\frac{1}{2^{100}}}$.", C, "same value"),
    ("tiny", "10^{-12}", "So $\\boxed{2 \\times 10^{-12}}$.", X, "factor of two, tiny"),
    ("nested_frac", "2", f"So the value is $\\boxed{{{_FRAC200}}}$.", C,
     "200 nested reciprocals of 2 give 2"),
    ("nested_frac", "2", f"So the value is $\\boxed{{{_FRAC201}}}$.", X,
     "201 nested reciprocals give 1/2"),
    ("nested_frac", "\\frac{1}{2}", f"So the value is $\\boxed{{{_FRAC201}}}$.", C,
     "201 nested reciprocals give 1/2"),
    ("truncated_decimal", "\\frac{1}{7}", "Answer: 0.142857", X,
     "a truncated decimal is not 1/7"),
    ("truncated_decimal", "\\frac{1}{3}", "The probability is $\\boxed{0.33}$.", X,
     "rounded decimal for an exact fraction"),
    ("truncated_decimal", "\\frac{1}{8}", "The probability is $\\boxed{0.125}$.", C,
     "a terminating decimal equals 1/8 exactly"),
    ("truncated_decimal", "0.33", "To the nearest hundredth: $\\boxed{\\frac{1}{3}}$.", C,
     "exact value rounds to the decimal gold"),
    ("truncated_decimal", "\\sqrt{2}", "Numerically $\\boxed{1.41421}$.", C,
     "irrational gold: decimal within its last place"),
    ("truncated_decimal", "\\sqrt{2}", "Numerically $\\boxed{1.41}$.", X,
     "too few digits for an irrational gold"),
    # --- pathological input: exact when possible, else unusable, never a slow check
    ("pathological", "2^{65536}", "So $\\boxed{2^{2^{2^{2^2}}}}$.", C,
     "exponent tower computed exactly (65,537-bit integer)"),
    ("pathological", "2^{65535}", "So $\\boxed{2^{2^{2^{2^2}}}}$.", X,
     "exact big integers differ"),
    ("pathological", "3", "So $\\boxed{10^{10^{10}}}$.", X,
     "size bound proves it is not 3 without computing it"),
    ("pathological", "3", "So $\\boxed{9^{9^{9^9}}}$.", X,
     "a tower over a huge exponent is astronomically larger than 3"),
    ("pathological", "7", "So $\\boxed{10^{10^{10^{10}}}+1}$.", X,
     "huge plus small is still huge"),
    ("pathological", "10^{10^{10^{10}}}+1", "So $\\boxed{10^{10^{10^{10}}}+1}$.", C,
     "identical after normalisation"),
    ("pathological", "10^{10^{10^{10}}}+1", "So $\\boxed{10^{10^{10^{10}}}+2}$.", X,
     "the same huge term cancels; 1 != 2"),
    ("pathological", "10^{10^{10^{10}}}+1", "So $\\boxed{1 + 10^{10^{10^{10}}}}$.", C,
     "the same huge term cancels; the rest agrees"),
    ("pathological", "10^{10^{10^{10}}}+1", "So $\\boxed{10^{10^{10^{9}}}+1}$.", Z,
     "different huge terms cannot be compared exactly: unusable, not incorrect"),
    ("pathological", "x+1", f"So $\\boxed{{{_LEFT60}}}$.", C,
     "60 redundant \\left( levels collapse"),
    ("pathological", "x+1", f"So $\\boxed{{{_BRACES25}}}$.", C,
     "25 redundant brace levels collapse"),
    ("pathological", "500500", f"So $\\boxed{{{_SUM1000}}}$.", C, "1000-term sum, exact"),
    ("pathological", "500501", f"So $\\boxed{{{_SUM1000}}}$.", X, "1000-term sum differs"),
    ("pathological", "500500x", f"So $\\boxed{{{_XSUM1000}}}$.", C,
     "symbolic 1000-term sum parses (recursion limit) and simplifies"),
    ("pathological", "500501x", f"So $\\boxed{{{_XSUM1000}}}$.", X, "symbolic sum differs"),
]

# Second batch, written after the code above was tuned on the first and measured before any
# further change (first run: 47/47 agree; plain math-verify 38/47); same rules.
RESPONSE_TABLE_FRESH: list[tuple[str, str, str, str, str]] = [
    ("answer_label", "24", "To find the area, multiply length by width:\n\n"
     "* Length: 6 cm\n* Width: 4 cm\n\nArea = 6 cm * 4 cm = 24 cm²\n\n**Answer:** The area is "
     "24 square centimeters.", C, "Gemma bullet list then a bold Answer sentence"),
    ("answer_label", "24", "Area = 6 cm * 5 cm = 30 cm²\n\n**Answer:** The area is 30 square "
     "centimeters.", X, "30 is not 24"),
    ("answer_label", "\\frac{3}{5}", "There are 3 red and 2 blue balls.\n\nAnswer: $\\frac{3}{5}$",
     C, "LaTeX fraction after the label"),
    ("answer_label", "\\frac{3}{5}", "There are 2 red and 3 blue balls.\n\nAnswer: $\\frac{2}{5}$",
     X, "2/5 is not 3/5"),
    ("minerva", "-2", "We solve $3x + 6 = 0$ to get $x = -2$.\nFinal Answer: The final answer is "
     "$-2$. I hope it is correct.", C, "negative value"),
    ("minerva", "-2", "We solve $3x - 6 = 0$ to get $x = 2$.\nFinal Answer: The final answer is "
     "$2$. I hope it is correct.", X, "sign differs"),
    ("minerva", "\\frac{\\sqrt{3}}{2}", "Final Answer: The final answer is "
     "$\\frac{\\sqrt{3}}{2}$. I hope it is correct.", C, "radical fraction"),
    ("minerva", "\\frac{\\sqrt{3}}{2}", "Final Answer: The final answer is $\\frac{1}{2}$. "
     "I hope it is correct.", X, "sin vs cos value"),
    ("heading", "150", "### Step 1: Cost per shirt\nEach shirt costs $15.\n\n### Step 2: Total\n"
     "10 shirts cost 10 × $15 = $150.\n\n### Answer\nThe total cost is $150.", C,
     "Answer heading, sentence with currency"),
    ("heading", "150", "### Step 2: Total\n10 shirts cost 10 × $14 = $140.\n\n### Answer\n"
     "The total cost is $140.", X, "140 is not 150"),
    ("gsm8k", "18", "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = "
     "$<<9*2=18>>18 every day at the farmer's market.\n#### 18", C, "GSM8K reference style"),
    ("gsm8k", "18", "She makes 9 * 3 = $<<9*3=27>>27 every day.\n#### 27", X, "27 is not 18"),
    ("last_sentence", "540", "James runs 3 sprints 3 times a week, so 3 * 3 = 9 sprints. Each is 60 "
     "meters, so he runs 9 * 60 = 540 meters a week.", C, "last computation result"),
    ("last_sentence", "540", "James runs 3 sprints 3 times a week, so 3 * 3 = 9 sprints. Each is 50 "
     "meters, so he runs 9 * 50 = 450 meters a week.", X, "450 is not 540"),
    ("last_sentence", "20", "Each chicken gets 3 cups, so 20 chickens need 60 cups. She already "
     "gave 15 + 25 = 40 cups, so the final meal needs 60 - 40 = 20 cups.", C,
     "result after the last equals sign"),
    ("last_sentence", "20", "She already gave 15 + 25 = 40 cups, so the final meal needs "
     "60 - 45 = 15 cups.", X, "15 is not 20"),
    ("multi_box", "-2, 5", "Factoring gives $(x+2)(x-5)=0$, so $x=\\boxed{-2}$ and "
     "$x=\\boxed{5}$.", C, "two roots"),
    ("multi_box", "-2, 5", "Factoring gives $(x-2)(x+5)=0$, so $x=\\boxed{2}$ and "
     "$x=\\boxed{-5}$.", X, "signs flipped"),
    ("multi_box", "11", "First $a = \\boxed{4}$, then $b = a + 3 = \\boxed{7}$, so "
     "$a + b = \\boxed{11}$.", C, "running computation"),
    ("multi_box", "11", "First $a = \\boxed{4}$, then $b = a + 2 = \\boxed{6}$, so "
     "$a + b = \\boxed{10}$.", X, "running computation ending in 10"),
    ("markup", "D", "Let's check each option.\n\n(A) fails.\n(B) fails.\n(C) fails.\n"
     "(D) works.\n\nSo the correct option is **(D)**.", C, "bold choice at the end"),
    ("markup", "D", "Let's check each option.\n\n(A) fails.\n(B) works.\n\n"
     "So the correct option is **(B)**.", X, "B is not D"),
    ("markup", "36", "Therefore, the number of handshakes is $\\boxed{\\textbf{36}}$.", C,
     "textbf number in the box"),
    ("markup", "36", "Therefore, the number of handshakes is $\\boxed{\\textbf{72}}$.", X,
     "double counted"),
    ("number_words", "2", "Only two of the dice can show a six.\n\n**Answer:** two", C,
     "bold label, number word"),
    ("number_words", "2", "Only three of the dice can show a six.\n\n**Answer:** three", X,
     "3 is not 2"),
    ("func_prefix", "x^2 - 4", "Expanding, $\\boxed{h(x) = x^2 - 4}$.", C, "h(x) prefix"),
    ("func_prefix", "x^2 - 4", "Expanding, $\\boxed{h(x) = x^2 + 4}$.", X, "sign differs"),
    ("unicode", "\\frac{3}{4}", "So the probability is ¾.\n\nAnswer: ¾", C, "vulgar three quarters"),
    ("unicode", "\\frac{3}{4}", "So the probability is ¼.\n\nAnswer: ¼", X, "one quarter"),
    ("unicode", "2\\sqrt{5}", "The distance is √20 = 2√5.\n\n**Answer:** 2√5", C, "radical"),
    ("unicode", "2\\sqrt{5}", "The distance is √18 = 3√2.\n\n**Answer:** 3√2", X, "different"),
    ("repeating", "\\frac{4}{9}", "As a fraction, $0.\\overline{4} = \\boxed{\\frac{4}{9}}$.", C,
     "fraction boxed after the repeating form"),
    ("repeating", "\\frac{4}{9}", "The decimal is $\\boxed{0.\\overline{4}}$.", C,
     "repeating decimal equals 4/9"),
    ("repeating", "\\frac{4}{9}", "The decimal is $\\boxed{0.\\overline{45}}$.", X, "45/99 = 5/11"),
    ("mixed", "\\frac{17}{4}", "She walks 4 1/4 miles in total.\n\nAnswer: 4 1/4 miles", C,
     "mixed number with a unit"),
    ("mixed", "\\frac{17}{4}", "She walks 4 3/4 miles in total.\n\nAnswer: 4 3/4 miles", X,
     "19/4 is not 17/4"),
    ("emptyset", "\\emptyset", "There is no such integer, so the answer is $\\boxed{\\{\\}}$.", C,
     "empty braces"),
    ("emptyset", "\\{1\\}", "No value works, so $\\boxed{\\varnothing}$.", X, "{1} is not empty"),
    ("tiny", "\\frac{1}{3^{50}}", "So $\\boxed{\\frac{1}{3^{51}}}$.", X, "factor of three, tiny"),
    ("tiny", "\\frac{1}{3^{50}}", "So $\\boxed{3^{-50}}$.", C, "same value"),
    ("truncated_decimal", "\\frac{2}{3}", "As a decimal, $\\boxed{0.6667}$.", X,
     "a rounded decimal is not the exact fraction"),
    ("truncated_decimal", "\\frac{3}{8}", "As a decimal, $\\boxed{0.375}$.", C,
     "terminating decimal, exact"),
    ("truncated_decimal", "e", "Numerically $\\boxed{2.71828}$.", C, "irrational e, 6 digits"),
    ("truncated_decimal", "e", "Numerically $\\boxed{2.7}$.", X, "too few digits"),
    ("pathological", "6", f"Simplifying the huge sum: $\\boxed{{{'{' * 22}6{'}' * 22}}}$", C,
     "22 redundant braces around a number"),
    ("pathological", "7", f"Simplifying the huge sum: $\\boxed{{{'{' * 22}6{'}' * 22}}}$", X,
     "6 is not 7"),
]

# Third batch, likewise written blind after the second one and measured before any change
# (first run: 42/42 agree; plain math-verify 33/42).
RESPONSE_TABLE_BATCH3: list[tuple[str, str, str, str, str]] = [
    ("answer_label", "7", "Let $n$ be the number of nickels. Then $5n + 10(12-n) = 85$, so $-5n = -35$ and $n = 7$.\n\n**Answer:** There are 7 nickels.", C, "Gemma sentence after bold label"),
    ("answer_label", "7", "Then $5n + 10(12-n) = 90$, so $n = 6$.\n\n**Answer:** There are 6 nickels.", X, "6 is not 7"),
    ("answer_label", "\\frac{5}{12}", "There are 36 outcomes and 15 favourable ones.\n\nAnswer: $\\frac{15}{36} = \\frac{5}{12}$", C, "simplification chain after the label"),
    ("answer_label", "\\frac{5}{12}", "There are 36 outcomes and 10 favourable ones.\n\nAnswer: $\\frac{10}{36} = \\frac{5}{18}$", X, "5/18"),
    ("minerva", "4\\sqrt{2}", "The diagonal is $\\sqrt{4^2+4^2}=4\\sqrt{2}$.\nFinal Answer: The final answer is $4\\sqrt{2}$. I hope it is correct.", C, "radical"),
    ("minerva", "4\\sqrt{2}", "Final Answer: The final answer is $8$. I hope it is correct.", X, "8 is not 4 sqrt 2"),
    ("minerva", "(-\\infty, 3)", "Final Answer: The final answer is $(-\\infty,3)$. I hope it is correct.", C, "interval"),
    ("heading", "64", "## Solution\n\nThe volume is $4^3 = 64$ cubic units.\n\n## Final Answer\n\nThe final volume is 64 cubic units.", C, "Final Answer heading, sentence"),
    ("heading", "64", "## Solution\n\nThe volume is $4^2 = 16$.\n\n## Final Answer\n\n16", X, "16 is not 64"),
    ("gsm8k", "35", "Tom reads 5 pages a day for 7 days: 5 * 7 = <<5*7=35>>35 pages.\n#### 35", C, "GSM8K"),
    ("gsm8k", "35", "Tom reads 5 pages a day for 6 days: 5 * 6 = <<5*6=30>>30 pages.\n#### 30", X, "30"),
    ("last_sentence", "15", "The train travels 60 miles in 4 hours, so its speed is 60 / 4 = 15 miles per hour.", C, "speed after equals"),
    ("last_sentence", "15", "The train travels 60 miles in 5 hours, so its speed is 60 / 5 = 12 miles per hour.", X, "12"),
    ("last_sentence", "48", "Natalia sold 24 clips in May. In total she sold 24 + 24 = 48 clips.\n\nLet me know if you have other questions!", C, "pleasantry after"),
    ("last_sentence", "48", "In total she sold 24 + 20 = 44 clips.\n\nLet me know if you have other questions!", X, "44"),
    ("multi_box", "-3, 3", "Taking square roots, $x = \\boxed{3}$ or $x = \\boxed{-3}$.", C, "plus/minus roots"),
    ("multi_box", "9", "We get $\\boxed{3}$ squared, which is $\\boxed{9}$.", C, "computation, last box"),
    ("multi_box", "9", "We get $\\boxed{3}$ squared, which is $\\boxed{6}$.", X, "computation ends in 6"),
    ("markup", "120", "There are $5! = 120$ arrangements.\n\nSo the number of ways is **120**.", C, "bold"),
    ("markup", "120", "There are $5 \\cdot 4 = 20$ arrangements.\n\nSo the number of ways is **20**.", X, "20"),
    ("markup", "A", "Only option A satisfies both conditions.\n\n$\\boxed{\\text{(A)}}$", C, "text choice in a box"),
    ("number_words", "6", "She can make six bracelets.\n\nThe answer is six.", C, "number word six"),
    ("number_words", "6", "She can make five bracelets.\n\nThe answer is five.", X, "five"),
    ("func_prefix", "3x - 2", "Therefore $\\boxed{f(x) = 3x - 2}$.", C, "f(x) prefix"),
    ("func_prefix", "3x - 2", "Therefore $\\boxed{f(x) = 3x + 2}$.", X, "sign"),
    ("unicode", "\\frac{\\pi}{3}", "The angle is π/3 radians.\n\n**Answer:** π/3", C, "pi over 3"),
    ("unicode", "\\frac{\\pi}{3}", "**Answer:** π/6", X, "pi over 6"),
    ("unicode", "x \\ge 2", "**Answer:** x ≥ 2", C, "unicode inequality"),
    ("repeating", "\\frac{1}{3}", "The decimal expansion is $0.333\\ldots$, so the answer is $\\boxed{0.\\overline{3}}$.", C, "overline 3"),
    ("repeating", "\\frac{1}{3}", "So the answer is $\\boxed{0.3}$.", X, "0.3 is not 1/3"),
    ("mixed", "\\frac{7}{3}", "Each friend gets 2 1/3 cookies.\n\nAnswer: 2 1/3", C, "mixed"),
    ("mixed", "\\frac{7}{3}", "Answer: 2 2/3", X, "8/3"),
    ("emptyset", "\\emptyset", "Since the discriminant is negative, there are no real solutions: $\\boxed{\\varnothing}$", C, "varnothing"),
    ("tiny", "\\frac{1}{1000!}", "Therefore the probability is $\\boxed{\\frac{1}{999!}}$.", X, "factor of 1000"),
    ("tiny", "\\frac{1}{1000!}", "Therefore the probability is $\\boxed{\\frac{1}{1000 \\cdot 999!}}$.", C, "same value"),
    ("truncated_decimal", "\\frac{5}{6}", "As a decimal, $\\boxed{0.833}$.", X, "truncated"),
    ("truncated_decimal", "\\frac{5}{6}", "As a decimal, $\\boxed{0.8\\overline{3}}$.", C, "repeating"),
    ("truncated_decimal", "\\pi", "Approximately $\\boxed{3.14159}$.", C, "pi to 5 places"),
    ("pathological", "1", f"$\\boxed{{{'(' * 40}1{')' * 40}}}$", C, "40 redundant parens"),
    ("pathological", "2", f"$\\boxed{{{'(' * 40}1{')' * 40}}}$", X, "1 is not 2"),
    ("boxed", "\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", "Thus $\\mathbf{v} = \\boxed{\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}}$.", C, "vector"),
    ("boxed", "\\begin{pmatrix} 2 \\\\ -1 \\end{pmatrix}", "Thus $\\boxed{\\begin{pmatrix} -1 \\\\ 2 \\end{pmatrix}}$.", X, "swapped"),
]

# Fourth batch, written blind after the third and measured before any change (first run:
# 40/43; plain math-verify 29/43). The three misses (conclusion clause followed by a unit,
# "4\\pi" in prose, a mixed number in prose) were then fixed in extract.py.
RESPONSE_TABLE_BATCH4: list[tuple[str, str, str, str, str]] = [
    ("boxed", "5", "So he has $\\boxed{5 \\text{ dollars}}$ left.", C, "unit text in box"),
    ("boxed", "5", "So he has $\\boxed{\\$5}$ left.", C, "currency in box"),
    ("boxed", "5", "So he has $\\boxed{\\$6}$ left.", X, "6"),
    ("boxed", "40", "The discount is $\\boxed{40\\%}$.", C, "percent vs plain"),
    ("boxed", "x=5", "So $\\boxed{5}$.", C, "value vs x= gold"),
    ("answer_label", "1250", "Total: 1,250 dollars\n\n**Answer: $1,250**", C, "bold label incl value, currency"),
    ("answer_label", "1250", "**Answer: $1,205**", X, "digits swapped"),
    ("answer_label", "0.75", "So the probability is three quarters.\n\nAnswer: 3/4", C, "fraction vs decimal gold"),
    ("answer_label", "\\frac{1}{4}", "Answer: one quarter", C, "fraction words"),
    ("answer_label", "\\frac{1}{4}", "Answer: one third", X, "1/3"),
    ("heading", "8", "# Solution\n\n1. First, 2^3 = 8.\n\n## Final Answer\n**8**", C, "bold under heading"),
    ("heading", "8", "## Final Answer\n**9**", X, "9"),
    ("heading", "\\frac{3}{2}", "### Final Answer\n\n$$\\frac{3}{2}$$", C, "display math under heading"),
    ("minerva", "2", "Final Answer: The final answer is $2$. I hope it is correct.\n", C, "trailing newline"),
    ("minerva", "\\text{(B)}", "Final Answer: The final answer is $\\text{(B)}$. I hope it is correct.", C, "choice"),
    ("minerva", "\\text{(B)}", "Final Answer: The final answer is (D). I hope it is correct.", X, "D"),
    ("gsm8k", "1600", "So the total is 16 * 100 = <<16*100=1600>>1600.\n#### 1600\n", C, "trailing newline"),
    ("gsm8k", "0.5", "#### 0.5", C, "decimal marker"),
    ("last_sentence", "6", "Tim has 10 marbles and gives away 4, so he is left with 6 marbles.", C, "sentence-final-ish number"),
    ("last_sentence", "6", "Tim has 10 marbles and gives away 3, so he is left with 7 marbles.", X, "7"),
    ("last_sentence", "25", "The rectangle's area is $5 \\times 5 = 25$ square units.", C, "math span rhs"),
    ("last_sentence", "25", "The rectangle's area is $5 \\times 4 = 20$ square units.", X, "20"),
    ("multi_box", "\\pm 3", "Hence $x = \\boxed{3}$ or $x = \\boxed{-3}$.", C, "pm gold list"),
    ("multi_box", "\\pm 3", "Hence $x = \\boxed{3}$.", X, "only one root"),
    ("multi_box", "5", "We found \\boxed{3} apples earlier, but the final count is \\boxed{5}.", C, "last box"),
    ("markup", "2", "The smallest value is ***2***.", C, "bold italic"),
    ("markup", "E", "**Answer: (E)**", C, "bold label with choice"),
    ("markup", "E", "**Answer: (A)**", X, "A"),
    ("number_words", "100", "The answer is one hundred.", C, "one hundred"),
    ("number_words", "21", "The answer is twenty one.", C, "twenty one"),
    ("unicode", "\\frac{\\sqrt{3}}{2}", "**Answer:** √3/2", C, "radical over 2"),
    ("unicode", "\\frac{\\sqrt{3}}{2}", "**Answer:** √2/2", X, "root 2"),
    ("unicode", "4\\pi", "The area is 4π square units.", C, "pi in prose"),
    ("repeating", "\\frac{7}{9}", "Answer: 0.777...", C, "dots"),
    ("repeating", "\\frac{7}{9}", "Answer: 0.77", X, "truncated"),
    ("mixed", "\\frac{9}{4}", "The recipe needs 2 1/4 cups of flour.", C, "mixed in prose"),
    ("emptyset", "\\emptyset", "Answer: $\\varnothing$", C, "label + varnothing"),
    ("tiny", "\\frac{1}{2^{100}}", "Answer: $2^{-100}$", C, "same tiny"),
    ("tiny", "\\frac{1}{2^{100}}", "Answer: $2^{-101}$", X, "half"),
    ("truncated_decimal", "\\frac{1}{9}", "Answer: 0.111", X, "truncated 1/9"),
    ("truncated_decimal", "\\frac{1}{9}", "Answer: $0.\\overline{1}$", C, "repeating 1/9"),
    ("func_prefix", "\\frac{1}{x}", "Answer: $f^{-1}(x) = \\frac{1}{x}$", C, "inverse"),
    ("pathological", "4", f"Answer: ${'{' * 30}4{'}' * 30}$", C, "30 redundant braces"),
]
