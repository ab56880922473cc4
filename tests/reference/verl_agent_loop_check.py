"""Drives server/verl/thor_agent_loop.py's rollout without verl or a GPU and prints one JSON object
(docs/verl.md#tool-calls): the observations for a set of sandbox results, the statuses of real runs of
Python code, and whole trajectories against a scripted model.

The scripted model writes a fixed text a character at a time (token id = code point, 0 = end of text) and
honours what a vLLM server would be asked for: stopping right after a "```" when asked to, and the token
budget. Everything else (fence detection, running the code, the forced output block, masks, the tool-call
budget) is the module's own code.

    python3 tests/reference/verl_agent_loop_check.py [MODULE_DIR] < results.json
"""
import asyncio
import json
import sys

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else 'server/verl')
import thor_agent_loop as loop  # noqa: E402

END = 0


def scripted(text):
    """A model that writes `text` whatever it is shown."""
    state = {'at': 0, 'calls': []}

    async def generate(ids, max_tokens, fences):
        state['calls'].append({'max_tokens': max_tokens, 'fences': fences})
        out = []
        while len(out) < max_tokens:
            if state['at'] >= len(text):
                out.append(END)
                break
            out.append(ord(text[state['at']]))
            state['at'] += 1
            if fences and ''.join(chr(i) for i in out).endswith('```'):
                break
        return out, None

    return generate, state


def encode(s):
    return [ord(c) for c in s]


def decode(ids):
    return ''.join(chr(i) for i in ids if i != END)


async def trajectory(text, **settings):
    generate, state = scripted(text)
    options = {'response_length': 400, 'max_tool_calls': 2, 'tool_timeout_s': 10.0, 'observation_max_chars': 256}
    options.update(settings)
    r = await loop.tir_rollout(generate, encode, decode, encode('Q: ?\n'), end_ids=[END], **options)
    ids, mask = r['response_ids'], r['response_mask']
    return {
        'text': decode(ids),
        'sampled': decode([i for i, m in zip(ids, mask) if m == 1]),
        'forced': decode([i for i, m in zip(ids, mask) if m == 0]),
        'length': len(ids),
        'mask_length': len(mask),
        'logprob_length': len(r['response_logprobs']),
        'statuses': [x['status'] for x in r['results']],
        'tool_calls': r['tool_calls'],
        'code_failed': r['code_failed'],
        'generate_calls': state['calls'],
    }


async def main():
    results = json.load(sys.stdin)
    observations = [loop.truncate_middle(loop.observation_text(r), 256) for r in results]
    runs = {}
    for name, code, timeout in [
        ('ok', 'print(6*7)', 10),
        ('silent', 'x = 1', 10),
        ('error', 'print(undefined_name)', 10),
        ('timeout', 'while True:\n    pass', 1),
        ('memory', 'x = bytearray(8 * 1024 ** 3)', 10),
    ]:
        r = await loop.run_python(code, timeout, memory_mb=1024)
        runs[name] = {'status': r['status'], 'observation': loop.observation_text(r)}
    fence = '```'
    trajectories = {
        'one call': await trajectory(f'Compute it.\n{fence}python\nprint(347*829)\n{fence}So \\boxed{{287663}}.'),
        'failed then fixed': await trajectory(f'{fence}python\nprint(y)\n{fence}Retry.\n{fence}python\ny = 3\nprint(y)\n{fence}\\boxed{{3}}'),
        'budget spent': await trajectory(f'{fence}python\nprint(1)\n{fence}{fence}python\nprint(2)\n{fence}\nDone \\boxed{{1}}', max_tool_calls=1),
        'no code': await trajectory('Just \\boxed{4}.'),
        'prose fence': await trajectory(f'A table:\n{fence}\na | b\n{fence}\n\\boxed{{5}}'),
        'cut by the budget': await trajectory(f'{fence}python\nprint("x" * 50)\n{fence}\nmore text here', response_length=60),
    }
    print(json.dumps({'observations': observations, 'runs': runs, 'trajectories': trajectories, 'verl_class': hasattr(loop, 'ThorTirAgentLoop')}))


asyncio.run(main())
