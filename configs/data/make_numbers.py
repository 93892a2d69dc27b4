"""Writes numbers_train.tsv and numbers_eval.tsv for configs/file.yaml: a number's digits
(prompt) and its English words (answer), e.g. "4 2<TAB>forty two". Every number from 0 to
99 appears once; the eval file holds out 16 two-digit numbers whose tens and ones words the
training file teaches in other combinations, so evaluation measures composition, not recall.

    python3 configs/data/make_numbers.py   (rewrites both files next to this script)
"""
import os
import random

ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
         "seventeen", "eighteen", "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def words(n):
    if n < 10:
        return ONES[n]
    if n < 20:
        return TEENS[n - 10]
    tens, ones = divmod(n, 10)
    return TENS[tens] if ones == 0 else TENS[tens] + " " + ONES[ones]


def line(n):
    return " ".join(str(n)) + "\t" + words(n) + "\n"


compound = [n for n in range(21, 100) if n % 10 != 0]
rng = random.Random(7)
held_out = set()
# Hold out two numbers per tens word (16 in all), never the only example of a ones word.
for tens in range(2, 10):
    held_out.update(rng.sample([n for n in compound if n // 10 == tens], 2))
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "numbers_train.tsv"), "w") as f:
    f.writelines(line(n) for n in range(100) if n not in held_out)
with open(os.path.join(here, "numbers_eval.tsv"), "w") as f:
    f.writelines(line(n) for n in sorted(held_out))
