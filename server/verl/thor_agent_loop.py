"""THOR Lab's tool-integrated rollout as a verl agent loop (docs/verl.md#tool-calls).

verl's own tool parsers read tool calls in the chat formats of its tool schemas (hermes, gpt-oss); THOR's
and ToRL's models write a fenced ```python block instead and read the result in a ```output block. This
loop does what the lab's rollout does (docs/tir-format.md): the model decodes until a ```python block
closes, the block runs in a separate Python process with a timeout, the observation is appended as
"```output\\n{obs}\\n```\\n" with response mask 0 (never trained), and decoding goes on, for at most
max_tool_calls calls within the response budget. The observation text follows the lab's rules (stdout, the
last traceback line, and plain messages for no output, timeouts and memory) with ToRL's and THOR's
head + tail truncation.

verl registers it from the agent-loop file the lab's export writes (agent_loop.yaml):

    - name: thor_tir_agent
      _target_: thor_agent_loop.ThorTirAgentLoop
      max_tool_calls: 2
      tool_timeout_s: 5
      observation_max_chars: 256

This module's folder must be importable on every verl worker (PYTHONPATH, or Ray's runtime_env). The
rollout logic itself (tir_rollout) needs neither verl nor a GPU; the verl class wraps it.

The code runs in a plain subprocess (``python -I``, a scratch directory, a memory limit where the platform
has one): a process boundary and a timeout, not a sandbox. Run the workers in containers, as verl's
recipes do, when the model's code is not trusted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, Optional, Sequence

# The TIR format's fences and its reader are the reward module's, shipped next to this one.
from thor_reward import CODE_OPEN, FENCE_CLOSE, OUTPUT_OPEN, split_fences

AGENT_NAME = 'thor_tir_agent'
NO_OUTPUT_MESSAGE = 'The code ran without errors but printed nothing. Use print() to show results.'
TIMEOUT_MESSAGE = 'TimeoutError: the code did not finish within the time limit.'
MEMORY_MESSAGE = 'MemoryError: the code used more memory than the sandbox allows.'
NO_MESSAGE = 'Error: the code failed without an error message.'


# ---- the TIR text format (docs/tir-format.md) -----------------------------------------------------

def pending_code(text: str, handled: int) -> Optional[dict]:
    """The last closed ```python block that ends after character `handled` (the text already dealt with), or None."""
    found = None
    for piece in split_fences(text):
        if piece['kind'] == 'code' and piece['closed'] and piece['end'] > handled:
            found = piece
    return found


def observation_block(observation: str, preceded_by_newline: bool) -> str:
    """The forced text after a code block: "```output\\n{obs}\\n```\\n", a newline first when the text does not end in one."""
    return ('' if preceded_by_newline else '\n') + OUTPUT_OPEN + observation + '\n' + FENCE_CLOSE + '\n'


def truncate_middle(text: str, max_chars: int) -> str:
    """ToRL's and THOR's rule: text longer than max_chars keeps its first and last max_chars // 2 characters around "..."."""
    if len(text) <= max_chars:
        return text
    half = max_chars // 2
    return text[:half] + '...' + (text[-half:] if half > 0 else '')


def last_traceback_line(stderr: str) -> str:
    lines = [line.rstrip() for line in stderr.split('\n') if line.strip()]
    return lines[-1].strip() if lines else ''


def observation_text(result: dict) -> str:
    """What the model reads after its code ran (docs/tir-format.md#observation-text)."""
    status = result['status']
    if status == 'ok':
        out = result['stdout'].rstrip()
        return out if out else NO_OUTPUT_MESSAGE
    if status == 'error':
        return last_traceback_line(result['stderr']) or NO_MESSAGE
    if status == 'timeout':
        return TIMEOUT_MESSAGE
    if status == 'memory':
        line = last_traceback_line(result['stderr'])
        return line if line.startswith('MemoryError') else MEMORY_MESSAGE
    return f"Error: the Python process was killed ({last_traceback_line(result['stderr']) or 'unknown reason'})."


def code_succeeded(result: dict) -> bool:
    """THOR's "the code ran": status ok and something printed."""
    return result['status'] == 'ok' and result['stdout'].strip() != ''


# ---- running code -----------------------------------------------------------------------------

def _limits(memory_mb: int):
    def apply():  # pragma: no cover - runs in the child
        try:
            import resource

            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError):
            pass

    return apply if os.name == 'posix' and memory_mb > 0 else None


async def run_python(code: str, timeout_s: float, memory_mb: int = 4096, python: str = sys.executable) -> dict:
    """Runs code in a fresh `python -I` process in a scratch folder: {'status', 'stdout', 'stderr'}."""
    with tempfile.TemporaryDirectory(prefix='thor-tir-') as scratch:
        proc = await asyncio.create_subprocess_exec(
            python, '-I', '-c', code,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            cwd=scratch, preexec_fn=_limits(memory_mb),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout_s)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            return {'status': 'timeout', 'stdout': '', 'stderr': ''}
    stdout = out.decode('utf-8', 'replace')
    stderr = err.decode('utf-8', 'replace')
    if proc.returncode == 0:
        return {'status': 'ok', 'stdout': stdout, 'stderr': stderr}
    if last_traceback_line(stderr).startswith('MemoryError'):
        return {'status': 'memory', 'stdout': stdout, 'stderr': stderr}
    if proc.returncode < 0:
        import signal

        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f'signal {-proc.returncode}'
        return {'status': 'killed', 'stdout': stdout, 'stderr': name}
    return {'status': 'error', 'stdout': stdout, 'stderr': stderr}


# ---- the rollout --------------------------------------------------------------------------------

Generate = Callable[[list, int, bool], Awaitable[tuple]]
"""generate(ids, max_tokens, stop_at_fences) -> (new token ids, their log-probabilities or None)."""


async def tir_rollout(
    generate: Generate,
    encode: Callable[[str], list],
    decode: Callable[[list], str],
    prompt_ids: Sequence[int],
    *,
    response_length: int,
    max_tool_calls: int,
    tool_timeout_s: float,
    observation_max_chars: int,
    end_ids: Sequence[int] = (),
    run: Callable[[str, float], Awaitable[dict]] = run_python,
) -> dict:
    """One TIR trajectory: response ids, their mask (1 sampled, 0 forced tool output), log-probabilities,
    the calls' results and whether one failed. Decoding stops at a code fence while calls remain; a
    fence that closes a ```python block runs it, any other fence goes on decoding."""
    response: list = []
    mask: list = []
    logprobs: list = []
    results: list = []
    handled = 0
    timing = {'generate_sequences': 0.0, 'tool_calls': 0.0}
    ends = set(end_ids)
    while len(response) < response_length:
        budget = response_length - len(response)
        fences = len(results) < max_tool_calls
        started = time.perf_counter()
        ids, lps = await generate(list(prompt_ids) + response, budget, fences)
        timing['generate_sequences'] += time.perf_counter() - started
        ids = list(ids)[:budget]
        response += ids
        mask += [1] * len(ids)
        logprobs += list(lps)[:len(ids)] if lps else [0.0] * len(ids)
        if not ids or not fences or ids[-1] in ends or len(ids) >= budget:
            break
        text = decode(response)
        block = pending_code(text, handled)
        if block is None:
            continue
        handled = block['end']
        started = time.perf_counter()
        result = await run(block['body'], tool_timeout_s)
        timing['tool_calls'] += time.perf_counter() - started
        results.append(result)
        forced = encode(observation_block(truncate_middle(observation_text(result), observation_max_chars), text.endswith('\n')))
        forced = forced[:response_length - len(response)]
        response += forced
        mask += [0] * len(forced)
        logprobs += [0.0] * len(forced)
        handled = len(decode(response))
    return {
        'response_ids': response[:response_length],
        'response_mask': mask[:response_length],
        'response_logprobs': logprobs[:response_length],
        'results': results,
        'tool_calls': len(results),
        'code_failed': any(not code_succeeded(r) for r in results),
        'metrics': timing,
    }


# ---- verl's agent loop ---------------------------------------------------------------------------

try:  # verl is there on the trainer's machines; the rollout above is usable (and tested) without it
    from verl.experimental.agent_loop.agent_loop import AgentLoopBase, AgentLoopOutput, register
except ImportError:  # pragma: no cover - depends on the installation
    AgentLoopBase = None

if AgentLoopBase is not None:

    @register(AGENT_NAME)
    class ThorTirAgentLoop(AgentLoopBase):
        """verl agent loop: the chat prompt from the row, then tir_rollout against verl's inference server."""

        def __init__(self, *args, max_tool_calls=None, tool_timeout_s=None, observation_max_chars=None, memory_mb=4096, **kwargs):
            super().__init__(*args, **kwargs)
            rollout = self.config.actor_rollout_ref.rollout
            turns = rollout.multi_turn
            self.response_length = rollout.response_length
            self.engine = rollout.name
            self.max_tool_calls = int(max_tool_calls if max_tool_calls is not None else (turns.max_user_turns or 1))
            self.tool_timeout_s = float(tool_timeout_s if tool_timeout_s is not None else 30)
            self.observation_max_chars = int(observation_max_chars if observation_max_chars is not None else turns.max_tool_response_length)
            self.memory_mb = int(memory_mb)
            self.end_ids = list(getattr(self.tokenizer, 'all_special_ids', None) or [self.tokenizer.eos_token_id])

        async def run(self, sampling_params: dict[str, Any], **kwargs) -> AgentLoopOutput:
            from uuid import uuid4

            messages = list(kwargs['raw_prompt'])
            prompt_ids = await self.apply_chat_template(messages)
            request_id = uuid4().hex

            async def generate(ids, max_tokens, fences):
                params = dict(sampling_params)
                params['max_new_tokens' if self.engine == 'sglang' else 'max_tokens'] = max_tokens
                if fences:
                    params['stop'] = [FENCE_CLOSE]
                    params['no_stop_trim' if self.engine == 'sglang' else 'include_stop_str_in_output'] = True
                output = await self.server_manager.generate(request_id=request_id, prompt_ids=ids, sampling_params=params)
                return output.token_ids, output.log_probs

            def encode(text):
                return self.tokenizer.encode(text, add_special_tokens=False)

            def decode(ids):
                return self.tokenizer.decode(ids, skip_special_tokens=True)

            result = await tir_rollout(
                generate, encode, decode, prompt_ids,
                response_length=self.response_length,
                max_tool_calls=self.max_tool_calls,
                tool_timeout_s=self.tool_timeout_s,
                observation_max_chars=self.observation_max_chars,
                end_ids=self.end_ids,
                run=lambda code, timeout: run_python(code, timeout, self.memory_mb),
            )
            return AgentLoopOutput(
                prompt_ids=prompt_ids,
                response_ids=result['response_ids'],
                response_mask=result['response_mask'],
                response_logprobs=result['response_logprobs'] if sampling_params.get('logprobs') else None,
                num_turns=2 + 2 * result['tool_calls'],
                metrics=result['metrics'],
                extra_fields={'code_failed': result['code_failed'], 'tool_calls': result['tool_calls']},
            )
