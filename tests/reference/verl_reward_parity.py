"""Runs server/verl/thor_reward.py's compute_score on every case of the shared table
(tests/fixtures/verl/reward-cases.json) and prints one JSON line: how many agree, and each case that
does not, with what the module gave. Run with any Python (CPython, or Pyodide's); docs/verl.md#the-reward.

    python3 tests/reference/verl_reward_parity.py [TABLE] [MODULE_DIR]
"""
import json
import sys
import time

table = sys.argv[1] if len(sys.argv) > 1 else 'tests/fixtures/verl/reward-cases.json'
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else 'server/verl')
import thor_reward  # noqa: E402

with open(table, encoding='utf-8') as f:
    cases = json.load(f)['cases']
started = time.time()
mismatches = []
for case in cases:
    try:
        got = thor_reward.compute_score('thor_lab', case['solution'], case['ground_truth'], case.get('extra_info'))
    except Exception as e:  # noqa: BLE001 - reported as a disagreement
        got = {'error': repr(e)}
    if got != case['expected']:
        mismatches.append({'id': case['id'], 'expected': case['expected'], 'got': got})
print(json.dumps({'cases': len(cases), 'agree': len(cases) - len(mismatches), 'mismatches': mismatches, 'seconds': round(time.time() - started, 1), 'python': sys.version.split()[0], 'platform': sys.platform}))
