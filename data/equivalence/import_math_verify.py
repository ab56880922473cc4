"""
Rebuilds math-verify.jsonl from a checkout of huggingface/Math-Verify.

Reads the test files with Python's ast module (nothing of Math-Verify is imported or run; the
few f-string literals are evaluated with only the math module in scope), takes the
parametrized (gold, prediction, expected) cases of every test that compares two answers, and writes
one JSON object a line. Cases that depend on an option the lab's checker has no equivalent for are
counted and left out (see README.md).

    python3 data/equivalence/import_math_verify.py /path/to/Math-Verify > data/equivalence/math-verify.jsonl
"""
import ast
import json
import math
import re
import sys
from pathlib import Path

FILES = [
    'tests/test_all.py',
    'tests/test_numina_cases.py',
    'tests/test_open_thoughts.py',
    'tests/test_boxed.py',
    'tests/test_strict.py',
    'tests/test_yujianll.py',
]


def parametrize(fn: ast.FunctionDef):
    for dec in fn.decorator_list:
        if isinstance(dec, ast.Call) and getattr(dec.func, 'attr', '') == 'parametrize':
            names = [n.strip() for n in ast.literal_eval(dec.args[0]).split(',')]
            return names, dec.args[1].elts
    return None


def literal(node):
    if isinstance(node, ast.Tuple):
        return tuple(literal(e) for e in node.elts)
    if isinstance(node, ast.JoinedStr):
        return eval(compile(ast.Expression(node), '<case>', 'eval'), {'__builtins__': {}, 'math': math})
    return ast.literal_eval(node)


def match_types(body: str) -> str:
    m = re.search(r'match_types=\[([^\]]*)\]', body)
    return 'latex+expr' if not m else '+'.join(t.strip().strip('"\'') for t in m.group(1).split(','))


def cases(root: Path):
    skipped = {}
    for file in FILES:
        tree = ast.parse((root / file).read_text())
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef) or not fn.name.startswith('test_'):
                continue
            found = parametrize(fn)
            if not found:
                skipped[f'{file}::{fn.name}'] = 'not parametrized (API internals)'
                continue
            names, rows = found
            body = ast.unparse(fn)
            for index, node in enumerate(rows):
                row = dict(zip(names, literal(node)))
                source = f'{file}::{fn.name}[{index}]'
                expected = row.get('expected', row.get('result'))
                reason = None
                if row.get('precision', 6) < 5:
                    reason = f'float_rounding={row["precision"]}: a rounding option the checker does not have'
                if row.get('strict') is False:
                    reason = 'strict=False: variable names ignored, an option the checker does not have'
                if 'allow_set_relation_comp' in row and row['gold'].lstrip('$').startswith('x \\in'):
                    reason = 'verdict set by allow_set_relation_comp, an option the checker does not have'
                if reason:
                    skipped[source] = reason
                    continue
                out = {'gold': row['gold'], 'prediction': row['pred'], 'expected': bool(expected), 'source': source}
                types = match_types(body)
                if types != 'latex+expr':
                    out['targets'] = types.split('+')
                yield out
    for source, reason in skipped.items():
        print(f'skipped {source}: {reason}', file=sys.stderr)


if __name__ == '__main__':
    for case in cases(Path(sys.argv[1])):
        print(json.dumps(case, ensure_ascii=False))
