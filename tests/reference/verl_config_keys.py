"""Flattens verl's published trainer configuration into the key list the lab's verl export is checked
against (tests/fixtures/verl/ppo-trainer-keys.txt; docs/verl.md#checking-the-keys).

    python3 tests/reference/verl_config_keys.py VERL_GIT_DIR > tests/fixtures/verl/ppo-trainer-keys.txt

VERL_GIT_DIR is a clone of verl; its HEAD commit's verl/trainer/config/_generated_ppo_trainer.yaml (the
whole ppo_trainer.yaml composition, as verl publishes it) is read. Needs PyYAML.
"""
import subprocess
import sys

import yaml

SOURCE = 'verl/trainer/config/_generated_ppo_trainer.yaml'


def git(repo, *args):
    return subprocess.run(['git', '-C', repo, *args], check=True, capture_output=True, text=True).stdout


def flatten(node, prefix, out):
    for key, value in node.items():
        path = f'{prefix}{key}'
        if isinstance(value, dict) and value:
            flatten(value, path + '.', out)
        elif isinstance(value, dict):
            out.append(path + '.*')
        else:
            out.append(path)


repo = sys.argv[1]
commit, date = git(repo, 'log', '-1', '--format=%H %cs').split()
version = git(repo, 'show', 'HEAD:verl/version/version').strip()
keys = []
flatten(yaml.safe_load(git(repo, 'show', f'HEAD:{SOURCE}')), '', keys)
print("# verl's trainer configuration, flattened: one dotted key a line (docs/verl.md#checking-the-keys).")
print(f'# source: {SOURCE} of github.com/volcengine/verl')
print(f'# commit: {commit} ({date}), verl version {version}')
print('# a key ending in ".*" is a map verl leaves open: any key under it is accepted.')
print('# rebuilt by: python3 tests/reference/verl_config_keys.py VERL_GIT_DIR')
for key in keys:
    print(key)
