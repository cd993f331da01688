"""Checks that notebook 4, run again after notebook 5 registered version 0.0.2, still asks the model
server for the version whose scaler it used (issue 21: one version's scaler with another version's
model is a silent wrong answer). Reads two executed notebooks:

- notebook 4 run again (kernel/run-notebooks --again 4-request_model.ipynb): its inference URL must
  name the version folder (`/v2/models/<name>/versions/<n>/infer`), and its top country and
  probability ("<song>: most likely in the Top 50 of XX (p %)");
- notebook 5: its side-by-side table of both versions (caption "... (0.0.1: XX, 0.0.2: YY)",
  rows sorted by the first version's probability).

The top country must be 0.0.1's in notebook 5, with the same probability (to the 0.1 % notebook 4
prints).

Usage: check_version_pinning.py NOTEBOOK_4_AGAIN NOTEBOOK_5 [--version 0.0.1]
"""
import argparse
import re
import sys

from notebook_text import outputs_text


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("again")
    parser.add_argument("refine")
    parser.add_argument("--version", default="0.0.1")
    args = parser.parse_args()
    again, refine = outputs_text(args.again), outputs_text(args.refine)
    problems = []

    urls = set(re.findall(r"https?://[^\s\"'<]+/v2/models/[^\s\"'<]+/infer", again))
    if not urls or any("/versions/" not in url for url in urls):
        problems.append(f"{args.again}: the inference URL does not name a version: {sorted(urls)}")
    answer = re.search(r"most likely in the Top 50 of (\w+) \(([\d.]+) %\)", again)
    if not answer:
        problems.append(f"{args.again}: no 'most likely in the Top 50 of XX (p %)' line")

    tops = re.search(re.escape(args.version) + r": (\w+)[,)]", refine)
    # The first data row (<td> cells) after the header that names the version's column.
    table = re.search(r"probability \(" + re.escape(args.version) + r"\).*?</tr>.*?<tr[^>]*>\s*(<td.*?)</tr>", refine, re.S)
    first_row = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", table.group(1), re.S)] if table else []
    if not tops or len(first_row) < 2:
        problems.append(f"{args.refine}: no side-by-side table with a '{args.version}: XX' caption")

    if not problems:
        country, percent = answer.group(1), float(answer.group(2))
        expected_country, expected_probability = tops.group(1), float(first_row[1])
        if country != expected_country or abs(percent - 100 * expected_probability) > 0.051:
            problems.append(
                f"notebook 4 again says {country} ({percent} %), notebook 5's {args.version} says "
                f"{expected_country} ({100 * expected_probability:.2f} %)"
            )
        else:
            print(f"version pinning: ok (notebook 4 after notebook 5: {country} {percent} % from {sorted(urls)[0]}, "
                  f"as notebook 5's {args.version} row)")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
