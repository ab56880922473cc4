"""THOR Lab's outcome reward for verl: ``compute_score(data_source, solution_str, ground_truth, extra_info=None)``.

verl loads this file by path (``custom_reward_function.path`` / ``name: compute_score``) and calls it
with each decoded response. It mirrors the lab's TypeScript reward step for step (docs/reward.md,
docs/verl.md#the-reward): the tool output (```output blocks) is cut from the response, the final answer
is extracted (the last ``\\boxed{}``, boxes that end the answer together read as one list, GSM8K's
``####``, "the answer is X"), compared with the reference (normalisation, structure, numeric value,
then sympy for what the cheap checks leave open) and scored with THOR's or ToRL's scheme.

Standalone: the standard library only; sympy is optional (without it, pairs only sympy could decide
count as different, as in the lab without its Python bundle). A shared table of cases
(tests/fixtures/verl/reward-cases.json) keeps this module and the TypeScript reward equal.

Strings are handled as JavaScript sees them (UTF-16 code units; JavaScript's whitespace, ``.``, ``$``
and ASCII ``\\d \\w``) so that lengths, n-grams and regular expressions agree with the lab.
"""

from __future__ import annotations

import json
import math
import re
import sys

__all__ = ['compute_score', 'extract_answer', 'is_equivalent', 'policy_text', 'DEFAULT_SETTINGS']

# ---- JavaScript string and regular-expression semantics -----------------------------------------

_WS = '\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff'
_WS_SET = set('\t\n\x0b\x0c\r \xa0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff') | {chr(c) for c in range(0x2000, 0x200B)}
_DOT = '[^\n\r\u2028\u2029]'


def _js(source: str) -> str:
    """A JavaScript regular expression's source (no u flag) as Python's re reads it."""
    out = []
    i = 0
    in_class = False
    while i < len(source):
        c = source[i]
        if c == '\\':
            nxt = source[i + 1]
            if nxt == 's':
                out.append(_WS if in_class else '[' + _WS + ']')
            elif nxt == 'S':
                out.append('[^' + _WS + ']')
            else:
                out.append(c + nxt)
            i += 2
            continue
        if in_class:
            if c == ']':
                in_class = False
                out.append(c)
            elif c == '[':
                out.append('\\[')
            else:
                out.append(c)
        elif c == '[':
            in_class = True
            out.append(c)
            if source[i + 1:i + 2] == '^':
                out.append('^')
                i += 1
        elif c == '.':
            out.append(_DOT)
        elif c == '$':
            out.append(r'\Z')
        else:
            out.append(c)
        i += 1
    return ''.join(out)


_CACHE: dict = {}


def _re(source: str, flags: str = ''):
    key = (source, flags)
    compiled = _CACHE.get(key)
    if compiled is None:
        f = re.ASCII | (re.IGNORECASE if 'i' in flags else 0)
        compiled = _CACHE[key] = re.compile(_js(source), f)
    return compiled


def _test(source: str, s: str, flags: str = '') -> bool:
    return _re(source, flags).search(s) is not None


def _expand(template: str, m) -> str:
    """JavaScript's replacement patterns: $$, $&, $1..$99 (two digits only when that group exists)."""
    out = []
    i = 0
    groups = m.re.groups
    while i < len(template):
        c = template[i]
        if c == '$' and i + 1 < len(template):
            nxt = template[i + 1]
            if nxt == '$':
                out.append('$')
                i += 2
                continue
            if nxt == '&':
                out.append(m.group(0))
                i += 2
                continue
            if nxt.isdigit() and nxt.isascii():
                two = template[i + 1:i + 3]
                if len(two) == 2 and two.isdigit() and two.isascii() and 1 <= int(two) <= groups:
                    out.append(m.group(int(two)) or '')
                    i += 3
                    continue
                if 1 <= int(nxt) <= groups:
                    out.append(m.group(int(nxt)) or '')
                    i += 2
                    continue
        out.append(c)
        i += 1
    return ''.join(out)


def _sub(source: str, repl, s: str, flags: str = '', everywhere: bool = True) -> str:
    """String.prototype.replace with a regular expression (g flag when everywhere)."""
    fn = repl if callable(repl) else (lambda m: _expand(repl, m))
    return _re(source, flags).sub(fn, s, count=0 if everywhere else 1)


def _trim(s: str) -> str:
    a, b = 0, len(s)
    while a < b and s[a] in _WS_SET:
        a += 1
    while b > a and s[b - 1] in _WS_SET:
        b -= 1
    return s[a:b]


def _split_ws(s: str) -> list:
    return _re(r'\s+').split(s)


def _utf16(s: str) -> str:
    """The string as JavaScript holds it: characters beyond the BMP as two surrogates."""
    if all(ord(c) < 0x10000 for c in s):
        return s
    out = []
    for c in s:
        o = ord(c)
        if o < 0x10000:
            out.append(c)
        else:
            o -= 0x10000
            out.append(chr(0xD800 + (o >> 10)))
            out.append(chr(0xDC00 + (o & 0x3FF)))
    return ''.join(out)


def _from_utf16(s: str) -> str:
    return s.encode('utf-16-le', 'surrogatepass').decode('utf-16-le', 'surrogatepass')


def _at(s: str, i: int) -> str:
    """s[i] as JavaScript reads it: '' (undefined) outside the string."""
    return s[i] if 0 <= i < len(s) else ''


# ---- TIR text: ```python / ```output fences (docs/tir-format.md) -------------------------------

CODE_OPEN = '```python\n'
OUTPUT_OPEN = '```output\n'
FENCE_CLOSE = '```'
NO_OUTPUT_MESSAGE = 'The code ran without errors but printed nothing. Use print() to show results.'
TIMEOUT_MESSAGE = 'TimeoutError: the code did not finish within the time limit.'


def split_fences(text: str, start: int = 0) -> list:
    """Prose and fenced blocks in order: dicts kind/start/end/body/closed."""
    pieces = []
    at = start
    while at < len(text):
        code = text.find(CODE_OPEN, at)
        output = text.find(OUTPUT_OPEN, at)
        opened = output if code < 0 else code if output < 0 else min(code, output)
        if opened < 0:
            break
        if opened > at:
            pieces.append({'kind': 'text', 'start': at, 'end': opened, 'body': text[at:opened], 'closed': True})
        kind = 'code' if opened == code else 'output'
        body_start = opened + (len(CODE_OPEN) if kind == 'code' else len(OUTPUT_OPEN))
        close = text.find(FENCE_CLOSE, body_start)
        end = len(text) if close < 0 else close + len(FENCE_CLOSE)
        body = text[body_start:len(text) if close < 0 else close]
        if close >= 0 and body.endswith('\n'):
            body = body[:-1]
        pieces.append({'kind': kind, 'start': opened, 'end': end, 'body': body, 'closed': close >= 0})
        at = end
    if at < len(text):
        pieces.append({'kind': 'text', 'start': at, 'end': len(text), 'body': text[at:], 'closed': True})
    return pieces


def _tool_spans(response: str) -> list:
    """Closed ```output blocks with the newline after them, and the newline before them when it follows a closed ```python block."""
    pieces = split_fences(response)
    spans = []
    for k, piece in enumerate(pieces):
        if piece['kind'] != 'output' or not piece['closed']:
            continue
        before = pieces[k - 1] if k >= 1 else None
        code = pieces[k - 2] if k >= 2 else None
        newline = before is not None and before['kind'] == 'text' and before['body'] == '\n' and code is not None and code['kind'] == 'code' and code['closed'] and code['end'] == before['start']
        spans.append((before['start'] if newline else piece['start'], piece['end'] + 1 if _at(response, piece['end']) == '\n' else piece['end']))
    return spans


def _policy_text(response: str) -> str:
    text = []
    at = 0
    for start, end in _tool_spans(response):
        text.append(response[at:start])
        at = end
    text.append(response[at:])
    joined = ''.join(text)
    pieces = split_fences(joined)
    last = pieces[-1] if pieces else None
    if last is not None and last['kind'] == 'output' and not last['closed']:
        return joined[:last['start']]
    return joined


def policy_text(response: str) -> str:
    """The response without its tool output (closed ```output blocks with their forced newlines, and one left open at the end)."""
    return _from_utf16(_policy_text(_utf16(response)))


def _failed_observation(body: str) -> bool:
    return (
        body == NO_OUTPUT_MESSAGE
        or body == TIMEOUT_MESSAGE
        or body.startswith('Error: the ')
        or _test(r'^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)(?::|$)', body)
    )


def _code_failed(response: str) -> bool:
    return any(p['kind'] == 'output' and p['closed'] and _failed_observation(p['body']) for p in split_fences(response))


# ---- answer extraction (docs/reward.md#answer-extraction) ---------------------------------------

def _closing_brace(text: str, opened: int) -> int:
    depth = 0
    i = opened
    while i < len(text):
        ch = text[i]
        if ch == '\\':
            i += 2
            continue
        if ch == '{':
            depth += 1
        elif ch == '}':
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _boxes(text: str) -> list:
    found = []
    for m in _re(r'\\(?:boxed|fbox)(?![a-zA-Z])').finditer(text):
        i = m.end()
        while _at(text, i) == ' ':
            i += 1
        if _at(text, i) == '{':
            end = _closing_brace(text, i)
            if end > 0:
                found.append((m.start(), end, _trim(text[i + 1:end - 1])))
        elif i > m.end():
            token = _re(r'^[^\s$]+').search(text[i:])
            if token:
                found.append((m.start(), i + len(token.group(0)), token.group(0)))
    return found


def _joins_answers(between: str) -> bool:
    s = _sub(r'\\text(?:bf|it|rm|normal)?\s*\{([^{}]*)\}', ' $1 ', between)
    s = _sub(r'\\(?:q?quad|[,;:! ])', ' ', s)
    s = _sub(r'\$|\\[()[\]]', ' ', s)
    s = _sub(r'(?:[A-Za-z]|\\[a-zA-Z]+)(?:_\{?\w+\}?)?\s*=', ' ', s)
    s = _sub(r'[,;.]', ' , ', s)
    words = [w for w in _split_ws(s) if w != '']
    if not words:
        return True
    connective = any(w == ',' or _test(r'^(?:and|or)$', w, 'i') for w in words)
    return connective and len([w for w in words if w != ',']) <= 4 and len(words) <= 8


def _last_group_at(text: str, items: list, together=None):
    """items: (start, end, content); the last group of joined answers as (answer, end)."""
    if not items:
        return None
    k = len(items) - 1
    group = [items[k]]
    while k > 0 and items[k - 1][1] <= items[k][0] and (
        _joins_answers(text[items[k - 1][1]:items[k][0]]) or (together is not None and together(items[k - 1], items[k]))
    ):
        k -= 1
        group.insert(0, items[k])
    parts = [g[2] for g in group if g[2] != '']
    return None if not parts else ('; '.join(parts), items[-1][1])


def _last_boxes_at(text: str):
    found = _boxes(text)
    if len(found) < 2:
        return _last_group_at(text, found)
    spans = _math_spans(text)

    def span_of(b):
        for idx, s in enumerate(spans):
            if s[0] < b[0] and b[1] <= s[1]:
                return idx
        return -1

    return _last_group_at(text, found, lambda a, b: span_of(a) >= 0 and span_of(a) == span_of(b))


def _extract_boxed(text: str):
    found = _last_boxes_at(text)
    return None if found is None else found[0]


def _extract_gsm8k(text: str):
    at = text.rfind('####')
    if at < 0:
        return None
    value = _trim(text[at + 4:].split('\n')[0])
    return None if value == '' else value


def _math_spans(text: str) -> list:
    spans = []
    i = 0
    n = len(text)
    while i < n:
        rest = text[i:i + 2]
        opened = ''
        close = ''
        if rest == '$$':
            opened, close = '$$', '$$'
        elif rest == '\\[':
            opened, close = '\\[', '\\]'
        elif rest == '\\(':
            opened, close = '\\(', '\\)'
        elif text[i] == '$' and _at(text, i - 1) != '\\':
            opened, close = '$', '$'
        elif text[i] == '\\':
            i += 2
            continue
        if not opened:
            i += 1
            continue
        start = i + len(opened)
        inline = opened in ('$', '\\(')
        j = start
        end = -1
        while j < n:
            if inline and text[j] == '\n':
                break
            if text.startswith(close, j) and _at(text, j - 1) != '\\':
                end = j
                break
            if close != '$' and close != '$$' and text[j] == '\\':
                j += 1
            j += 1
        if end < 0:
            i = start
            continue
        content = _trim(text[start:end])
        if content != '':
            spans.append((i, end + len(close), content))
        i = end + len(close)
    return spans


_NUMBER = r'-?(?:\d{1,3}(?:[ ,]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?|\.\d+)'


def _last_number_at(text: str):
    pattern = r'(?<![\w.,\d])(' + _NUMBER + r'(?:/' + _NUMBER + r')?)(?:\s*(%|percent(?:age)?|pct)(?![a-zA-Z]))?(?!\d)'
    found = list(_re(pattern, 'gi').finditer(text))
    if not found:
        return None
    last = found[-1]
    return (last.group(1) + ('%' if last.group(2) else ''), last.end())


def _answer_value(raw: str):
    value = _sub(r'^\*\*\s*', '', _trim(raw), everywhere=False)
    value = _sub('^\\\\?["\u201c]', '', value, everywhere=False)
    spans = _math_spans(value)
    if spans and spans[0][0] == 0:
        k = 0
        while k + 1 < len(spans) and _joins_answers(value[spans[k][1]:spans[k + 1][0]]):
            k += 1
        value = '; '.join(s[2] for s in spans[:k + 1])
        boxed = _extract_boxed(value)
        return value if boxed is None else boxed
    value = value.split('\n')[0]
    boxed = _extract_boxed(value)
    if boxed is not None:
        return boxed
    value = _trim(_sub(r'\.(?:\s.*)?$', '', value, everywhere=False))
    value = _trim(_sub(r'\*\*$', '', _sub(r'^\*\*(.*?)\*\*.*$', '$1', value, everywhere=False), everywhere=False))
    value = _trim(_sub(r'^\$+(.*?)\$+$', '$1', value, everywhere=False))
    return None if value == '' else value


def _answer_is_at(text: str):
    plain = list(_re(r'answer is\s*:?\s*(?=([^\n]+))', 'gi').finditer(text))
    final = list(_re(r'final answer\s*:?[^\n]{0,100}?\s(?:is|are)\s*:?\s*(?=([$\\\d(\[-][^\n]*))', 'gi').finditer(text))
    matches = plain + final
    if matches:
        last = matches[0]
        for b in matches[1:]:
            if b.end() > last.end():
                last = b
        answer = _answer_value(last.group(1))
        is_final = _test('final answer', last.group(0), 'i') or _test(r'final\s*$', text[max(0, last.start() - 8):last.start()], 'i')
        if answer is not None:
            return (answer, last.end(), is_final)
    return None


GRADER_METHODS = ('boxed', 'gsm8k', 'answer_is')


def _extract_answer(text: str, methods=GRADER_METHODS):
    def gsm8k(t):
        answer = _extract_gsm8k(t)
        return None if answer is None else (answer, t.rfind('####'))

    finders = {
        'boxed': _last_boxes_at,
        'gsm8k': gsm8k,
        'answer_is': lambda t: (lambda f: None if f is None else (f[0], f[1]))(_answer_is_at(t)),
        'final_math': lambda t: _last_group_at(t, _math_spans(t)),
        'last_number': _last_number_at,
    }
    for method in methods:
        found = finders[method](text)
        if found is None or found[0] == '':
            continue
        if method == 'boxed' and 'answer_is' in methods:
            fin = _answer_is_at(text)
            if fin is not None and fin[2] and fin[1] > found[1]:
                return (fin[0], 'answer_is')
        rival = 'last_number' if method == 'final_math' else 'final_math' if method == 'last_number' else None
        if rival and rival in methods:
            other = finders[rival](text)
            if other is not None and other[0] != '' and other[1] > found[1]:
                return (other[0], rival)
        return (found[0], method)
    return None


def extract_answer(text: str):
    """The final answer the lab's grader reads from a text (boxed, ####, "the answer is"), or None."""
    found = _extract_answer(_utf16(text))
    return None if found is None else _from_utf16(found[0])


# ---- normalisation (docs/reward.md#equivalence) ------------------------------------------------

def _read_argument(s: str, i: int):
    """(arg, end, braced) of the argument at i: a {...} group, a \\command, or one character."""
    if i >= len(s):
        return None
    if s[i] == '{':
        depth = 0
        j = i
        while j < len(s):
            if s[j] == '\\':
                j += 2
                continue
            if s[j] == '{':
                depth += 1
            elif s[j] == '}':
                depth -= 1
                if depth == 0:
                    return (s[i + 1:j], j + 1, True)
            j += 1
        return None
    if s[i] == '\\':
        m = _re(r'^\\[a-zA-Z]+').search(s[i:])
        if m:
            return (m.group(0), i + len(m.group(0)), False)
    return (s[i], i + 1, False)


_TEXT_COMMANDS = r'\\(?:text|textbf|textit|textrm|textnormal|textsf|texttt|mathrm|mathbf|mathit|mathsf|mbox|hbox|operatorname)\s*(?=\{)'
_UNIT_WORDS = (
    'units?|cm|mm|km|m|meters?|metres?|inches|inch|in|feet|foot|ft|yards?|yd|miles?|mi|cents?|dollars?|degrees?|deg|radians?|hours?|hrs?|'
    'minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|pounds?|lbs?|ounces?|oz|kg|grams?|g|liters?|litres?|ml|mph|sq|square|cubic|people|students|points'
)


def _unwrap_text(s: str) -> str:
    out = ''
    last = 0
    for m in _re(_TEXT_COMMANDS).finditer(s):
        if m.start() < last:
            continue
        group = _read_argument(s, m.end())
        if not group:
            continue
        out += s[last:m.start()]
        last = group[1]
        content = group[0]
        is_unit = _test(r'[\d}]\s*$', out) and _test(r'^\s*[a-zA-Z][a-zA-Z\s.]*$', content) and not _test(r'(?<![a-zA-Z])(?:and|or)(?![a-zA-Z])', content, 'i')
        if is_unit:
            power = _re(r'^\s*\^\s*\{?\s*[23]\s*\}?').search(s[last:])
            if power:
                last += len(power.group(0))
        else:
            out += (' ' + content + ' ') if _test(r'^\s*[a-zA-Z][a-zA-Z\s.]*$', content) else content
    return out + s[last:]


def _brace_arguments(s: str) -> str:
    out = []
    i = 0
    cmd_re = _re(r'\\(frac|sqrt)(?![a-zA-Z])')
    while i < len(s):
        cmd = cmd_re.match(s, i)
        if not cmd:
            out.append(s[i])
            i += 1
            continue
        out.append(cmd.group(0))
        i = cmd.end()
        if cmd.group(1) == 'sqrt' and _at(s, i) == '[':
            close = s.find(']', i)
            if close < 0:
                continue
            out.append(s[i:close + 1])
            i = close + 1
        for _ in range(2 if cmd.group(1) == 'frac' else 1):
            a = _read_argument(s, i)
            if not a:
                break
            out.append('{' + (_brace_arguments(a[0]) if a[2] else a[0]) + '}')
            i = a[1]
    return ''.join(out)


_PERCENT_WORD = r'(\d|\})\s*(?:percent(?:age)?|pct)(?![a-zA-Z])'


def _has_percent(raw: str) -> bool:
    return '%' in raw or _test(_PERCENT_WORD, raw, 'i')


_NUMBER_WORDS = {
    'zero': 0, 'one': 1, 'two': 2, 'three': 3, 'four': 4, 'five': 5, 'six': 6, 'seven': 7, 'eight': 8, 'nine': 9, 'ten': 10,
    'eleven': 11, 'twelve': 12, 'thirteen': 13, 'fourteen': 14, 'fifteen': 15, 'sixteen': 16, 'seventeen': 17, 'eighteen': 18, 'nineteen': 19,
}
_TENS = {'twenty': 20, 'thirty': 30, 'forty': 40, 'fifty': 50, 'sixty': 60, 'seventy': 70, 'eighty': 80, 'ninety': 90}
_NAN = float('nan')


def _number_from_words(text: str):
    words = [w for w in _split_ws(_trim(text).lower().replace('-', ' ')) if w != 'and']
    if len(words) == 0 or len(words) > 5:
        return None
    total = 0
    current = 0
    seen = False
    for w in words:
        if w in _NUMBER_WORDS:
            if current % 10 != 0 or (current != 0 and current % 100 != 0 and _NUMBER_WORDS[w] >= 10):
                return None
            current += _NUMBER_WORDS[w]
        elif w in _TENS:
            if current % 100 != 0:
                return None
            current += _TENS[w]
        elif w == 'hundred':
            if current == 0 or current >= 10:
                return None
            total += current * 100
            current = 0
        else:
            return None
        seen = True
    return total + current if seen else None


def _canonical_relations(s: str) -> str:
    s = _sub('\\\\(?:leqslant|leq|le)(?![a-zA-Z])|<=|\u2264', '\\le ', s)
    s = _sub('\\\\(?:geqslant|geq|ge)(?![a-zA-Z])|>=|\u2265', '\\ge ', s)
    s = _sub('\\\\(?:neq|ne)(?![a-zA-Z])|!=|\u2260', '\\ne ', s)
    s = _sub(r'\\lt(?![a-zA-Z])', '<', s)
    return _sub(r'\\gt(?![a-zA-Z])', '>', s)


_REPAIRABLE = 'left|right|frac|dfrac|tfrac|sqrt|pi|le|leq|ge|geq|lt|gt|neq|ne|cdot|times|infty|text|in|cup|pm|boxed|approx'


def _strip_outer_braces(s: str) -> str:
    while s.startswith('{'):
        g = _read_argument(s, 0)
        if not g or g[1] != len(s):
            break
        s = g[0]
    return s


_ROW_BREAK = '\u0002'


def _normalize_form(raw: str) -> str:
    s = _sub(r'(?<!\\)\\\\(?=(?:' + _REPAIRABLE + r')(?![a-zA-Z]))', '\\', raw)
    s = _sub(r'\\\\', _ROW_BREAK, s)
    s = _sub('\u2212', '-', s)
    s = _sub('\u00d7', '\\times ', s)
    s = _sub('\u00b7', '\\cdot ', s)
    s = _sub('\u03c0', '\\pi ', s)
    s = _sub('\u221e', '\\infty ', s)
    s = _sub('\u221a', '\\sqrt', s)
    s = _sub('\u00b0', '^\\circ', s)
    s = _trim(_sub(r'\s+', ' ', s))

    s = _sub(r'\\varnothing(?![a-zA-Z])|\\\{\s*\\\}', '\\emptyset', s)
    s = _sub(r'\\displaystyle', '', s)
    s = _sub(r'\\[dtc]frac(?![a-zA-Z])', '\\frac', s)
    s = _sub(r'\\[dt]binom(?![a-zA-Z])', '\\binom', s)
    s = _sub(r'\\(?:left|right)\.', '', s)
    s = _sub(r'\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])', '', s)
    s = _sub(r'\\!\s*', '', s)
    s = _sub(r'(\d)\\,(?=\d{3}(?!\d))', '$1,', s)
    s = _sub(r'(\d)\s*\{\s*,\s*\}\s*(?=\d)', '$1,', s)
    s = _sub(r'\\[,;:> ]', ' ', s)
    s = _sub(r'\\q?quad', ' ', s)
    s = _sub(r'~', ' ', s)
    s = _sub(r'\\\$', '', s)
    s = _sub(r'\$', '', s)
    s = _sub(r'\\[()[\]]', '', s)
    s = _sub(r'\^\s*\{?\s*\\circ\s*\}?', '', s)
    s = _sub(r'\\(?:circ|degree)(?![a-zA-Z])', '', s)
    s = _sub(r'\\%', '', s)
    s = _sub(r'%', '', s)
    s = _sub(_PERCENT_WORD, '$1', s, 'i')
    s = _canonical_relations(s)
    s = _unwrap_text(s)
    s = _sub(r'(\d|\})\s+(?:' + _UNIT_WORDS + r')(?:\s*\^\s*\{?[23]\}?)?\.?$', '$1', s, everywhere=False)
    s = _trim(_sub(r'[\s.]+$', '', s, everywhere=False))
    spelled = _number_from_words(s)
    if spelled is not None:
        s = str(spelled)

    s = _sub(r'\s*[,;]?\s*(?<![A-Za-z\\])(?:and|or)(?![A-Za-z])\s*', ';', s)
    if _test(r'^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$', s) or _test(r'^-?[1-9]\d{0,2}(?: \d{3})+(?:\.\d+)?$', s):
        s = _sub(r'[, ]', '', s)

    s = _sub(r'(\\[a-zA-Z]+)\s+(?=[a-zA-Z])', '$1\u0001', s)
    s = _sub(r'(\d)\s+(?=\d)', '$1\u0001', s)
    s = _sub(r'\s+', '', s)
    s = _sub('\u0001', ' ', s)

    s = _brace_arguments(s)
    s = _sub(r'([\^_])\{(\w)\}', '$1$2', s)
    s = _sub(r'(^|[^\d}])\.(\d)', '$10.$2', s)
    s = _sub(r'\\(?:cdot|times)(?![a-zA-Z])', '*', s)
    s = _sub(r'^\+', '', s, everywhere=False)
    s = _sub(r'(^|[^a-zA-Z\\])(?:infinity|inf)(?![a-zA-Z])', '$1\\infty', s)
    s = _sub(r'\+\\infty', '\\infty', s)
    s = _strip_outer_braces(s)
    choice = _re(r'^\(([A-Ea-e])\)$').search(s)
    if choice:
        s = choice.group(1).upper()
    return s.replace(_ROW_BREAK, '\\\\')


# ---- numeric value (docs/reward.md#equivalence, "Numeric") ---------------------------------------

_INF = float('inf')


def _is_integer(x: float) -> bool:
    return math.isfinite(x) and x == math.floor(x)


def _js_div(a: float, b: float) -> float:
    if b == 0:
        if a == 0 or math.isnan(a):
            return _NAN
        return _INF if (a > 0) == (math.copysign(1.0, b) > 0) else -_INF
    return a / b


def _js_sqrt(x: float) -> float:
    return _NAN if math.isnan(x) or x < 0 else math.sqrt(x)


def _js_sign(x: float) -> float:
    if math.isnan(x):
        return _NAN
    return 1.0 if x > 0 else -1.0 if x < 0 else x


def _js_pow(x: float, y: float) -> float:
    """Math.pow as ECMAScript defines it."""
    if math.isnan(y):
        return _NAN
    if y == 0:
        return 1.0
    if math.isnan(x):
        return _NAN
    odd = _is_integer(y) and abs(y) < 2 ** 53 and int(y) % 2 == 1
    if math.isinf(y):
        ax = abs(x)
        if ax == 1:
            return _NAN
        return (_INF if ax > 1 else 0.0) if y > 0 else (0.0 if ax > 1 else _INF)
    if x == _INF:
        return _INF if y > 0 else 0.0
    if x == -_INF:
        if y > 0:
            return -_INF if odd else _INF
        return -0.0 if odd else 0.0
    if x == 0:
        negative_zero = math.copysign(1.0, x) < 0
        if y > 0:
            return -0.0 if negative_zero and odd else 0.0
        return -_INF if negative_zero and odd else _INF
    if x < 0 and not _is_integer(y):
        return _NAN
    try:
        return math.pow(x, y)
    except OverflowError:
        return -_INF if x < 0 and odd else _INF


def _js_round(x: float) -> float:
    if not math.isfinite(x):
        return x
    f = math.floor(x)
    return f + 1 if x - f >= 0.5 else f


class _NotANumber(Exception):
    pass


def _add(a, b):
    return (a[0] + b[0], a[1] + b[1])


def _subc(a, b):
    return (a[0] - b[0], a[1] - b[1])


def _mul(a, b):
    return (a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0])


def _div(a, b):
    d = b[0] * b[0] + b[1] * b[1]
    if d == 0:
        raise _NotANumber('division by zero')
    return ((a[0] * b[0] + a[1] * b[1]) / d, (a[1] * b[0] - a[0] * b[1]) / d)


def _sqrtc(a):
    if a[1] == 0:
        return (_js_sqrt(a[0]), 0.0) if a[0] >= 0 else (0.0, _js_sqrt(-a[0]))
    r = math.hypot(a[0], a[1])
    return (_js_sqrt((r + a[0]) / 2), _js_sign(a[1]) * _js_sqrt((r - a[0]) / 2))


def _powc(base, exp):
    if exp[1] != 0:
        raise _NotANumber('complex exponent')
    e = exp[0]
    if base[1] == 0 and (base[0] > 0 or _is_integer(e)):
        return (_js_pow(base[0], e), 0.0)
    if _is_integer(e) and abs(e) <= 64:
        r = (1.0, 0.0)
        for _ in range(int(abs(e))):
            r = _mul(r, base)
        return _div((1.0, 0.0), r) if e < 0 else r
    raise _NotANumber('unsupported power')


def _rootc(a, n):
    if a[1] != 0 or not _is_integer(n) or n < 1:
        raise _NotANumber('unsupported root')
    if a[0] >= 0:
        return (_js_pow(a[0], 1 / n), 0.0)
    if n % 2 == 1:
        return (-_js_pow(-a[0], 1 / n), 0.0)
    raise _NotANumber('even root of a negative number')


def _binomial(n, k):
    if n[1] != 0 or k[1] != 0 or not _is_integer(n[0]) or not _is_integer(k[0]) or k[0] < 0 or k[0] > n[0] or n[0] > 1000:
        raise _NotANumber('unsupported binomial')
    r = 1.0
    for j in range(1, int(k[0]) + 1):
        r = (r * (n[0] - k[0] + j)) / j
    return (_js_round(r), 0.0)


def _factorial(n):
    if n[1] != 0 or not _is_integer(n[0]) or n[0] < 0 or n[0] > 170:
        raise _NotANumber('unsupported factorial')
    r = 1.0
    for j in range(2, int(n[0]) + 1):
        r *= j
    return (r, 0.0)


class _Parser:
    def __init__(self, s: str):
        self.s = s
        self.i = 0

    def parse(self):
        v = self.expr()
        if self.i != len(self.s):
            raise _NotANumber('unexpected text')
        return v

    def peek(self, text):
        return self.s.startswith(text, self.i)

    def expect(self, text):
        if not self.peek(text):
            raise _NotANumber('expected ' + text)
        self.i += len(text)

    def expr(self):
        v = self.term()
        while self.peek('+') or self.peek('-'):
            op = self.s[self.i]
            self.i += 1
            t = self.term()
            v = _add(v, t) if op == '+' else _subc(v, t)
        return v

    def term(self):
        v = self.unary()
        while True:
            if self.peek('*'):
                self.i += 1
                v = _mul(v, self.unary())
            elif self.peek('/'):
                self.i += 1
                v = _div(v, self.unary())
            elif self.i < len(self.s) and _test(r'[\d({\\i]', self.s[self.i]) and not self.peek('\\infty'):
                v = _mul(v, self.power())
            else:
                return v

    def unary(self):
        if self.peek('-'):
            self.i += 1
            return _subc((0.0, 0.0), self.unary())
        if self.peek('+'):
            self.i += 1
            return self.unary()
        return self.power()

    def power(self):
        base = self.atom()
        while self.peek('!') and not self.peek('!='):
            self.i += 1
            base = _factorial(base)
        if not self.peek('^'):
            return base
        self.i += 1
        if self.peek('{'):
            self.i += 1
            e = self.expr()
            self.expect('}')
            return _powc(base, e)
        if self.peek('-'):
            self.i += 1
            return _powc(base, _subc((0.0, 0.0), self.atom()))
        digit = _re(r'^\d+').search(self.s[self.i:])
        if digit:
            self.i += len(digit.group(0))
            return _powc(base, (float(digit.group(0)), 0.0))
        return _powc(base, self.atom())

    def group(self, opened, close):
        self.expect(opened)
        v = self.expr()
        self.expect(close)
        return v

    def atom(self):
        rest = self.s[self.i:]
        num = _re(r'^(\d+(?:\.\d*)?|\.\d+)').search(rest)
        if num:
            self.i += len(num.group(0))
            mixed = _re(r'^\\frac\{(\d+)\}\{(\d+)\}').search(self.s[self.i:])
            if mixed and _test(r'^\d+$', num.group(0)):
                self.i += len(mixed.group(0))
                return (float(num.group(0)) + _js_div(float(mixed.group(1)), float(mixed.group(2))), 0.0)
            return (float(num.group(0)), 0.0)
        if rest.startswith('('):
            return self.group('(', ')')
        if rest.startswith('{'):
            return self.group('{', '}')
        if rest.startswith('\\frac'):
            self.i += 5
            a = self.group('{', '}')
            return _div(a, self.group('{', '}'))
        if _test(r'^\\binom(?![a-zA-Z])', rest):
            self.i += 6
            n = self.group('{', '}')
            return _binomial(n, self.group('{', '}'))
        if rest.startswith('\\sqrt'):
            self.i += 5
            if self.peek('['):
                n = self.group('[', ']')
                return _rootc(self.group('{', '}'), n[0])
            return _sqrtc(self.group('{', '}'))
        if _test(r'^\\pi(?![a-zA-Z])', rest):
            self.i += 3
            return (math.pi, 0.0)
        if _test(r'^i(?![a-zA-Z])', rest):
            self.i += 1
            return (0.0, 1.0)
        raise _NotANumber('not a number')


def _evaluate(s: str):
    if s == '' or _test(r'[=,<>]|\\infty', s):
        return None
    try:
        v = _Parser(s).parse()
    except Exception:  # the lab's evaluator treats every failure, a too-deep expression included, as "no value"
        return None
    return v if math.isfinite(v[0]) and math.isfinite(v[1]) else None


def _values_equal(a, b) -> bool:
    def integral(x):
        return _is_integer(x) and abs(x) < 2 ** 53

    if integral(a[0]) and integral(a[1]) and integral(b[0]) and integral(b[1]):
        return a[0] == b[0] and a[1] == b[1]
    diff = math.hypot(a[0] - b[0], a[1] - b[1])
    return diff <= 1e-6 * max(math.hypot(a[0], a[1]), math.hypot(b[0], b[1])) or diff < 1e-12


# ---- structure (docs/reward.md#equivalence, "Structure") -----------------------------------------

_OPENERS = '([{'
_CLOSERS = ')]}'


def _split_top_level(s: str, source: str):
    parts = []
    seps = []
    depth = 0
    start = 0
    sticky = _re(source)
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == '\\' and _at(s, i + 1) in ('{', '}') and _at(s, i + 1) != '':
            depth += 1 if s[i + 1] == '{' else -1
            i += 2
            continue
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
        elif depth == 0:
            m = sticky.match(s, i)
            if m and len(m.group(0)) > 0:
                parts.append(s[start:i])
                seps.append(m.group(0))
                start = i + len(m.group(0))
                i += len(m.group(0)) - 1
        i += 1
    parts.append(s[start:])
    return parts, seps


def _split(s: str, sep: str) -> list:
    return _split_top_level(s, re.sub(r'[\\^$.*+?()[\]{}|]', lambda m: '\\' + m.group(0), sep))[0]


def _wrapped(s: str) -> bool:
    if s == '' or s[0] not in '([' or s[-1] not in ')]':
        return False
    depth = 0
    for i, ch in enumerate(s):
        if ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


_NAME = (
    r"(?:\\angle|m\\angle|\\overline\{[A-Za-z]+\}|\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|theta|vartheta|lambda|mu|nu|rho|sigma|tau|phi|varphi|psi|omega|xi|eta|zeta|kappa|chi|Delta|Omega|Theta|Phi|Gamma)(?![a-zA-Z])|[A-Za-z]{1,8})"
    r"(?:[A-Za-z]{1,8})?(?:'+|_\{[\w,]+\}|_\w|\^\{?\*\}?)*"
)
_NAME_RE = '^' + _NAME + '$'
_FUNCTION_CALL = r'^[A-Za-z](?:_\w|_\{\w+\})?\((?:[A-Za-z0-9]+(?:,[A-Za-z0-9]+)*)\)$'


def _is_label(s: str) -> bool:
    if s == '' or _test(r'^[+-]', s):
        return False
    if _test(_NAME_RE, _sub(r'\s', '', _sub(r'^\\angle\s?', '\\angle', s, everywhere=False))):
        return not _test(r'^(?:\\angle|m\\angle)$', s)
    if _test(_FUNCTION_CALL, s):
        return True
    if _test(r'^\|.+\|$', s):
        return _is_label(s[1:-1])
    if _wrapped(s) and s[0] == '(':
        items = _split(s[1:-1], ',')
        return len(items) > 1 and all(_test(_NAME_RE, x) for x in items)
    ratio = _split(s, ':')
    if len(ratio) > 1:
        return all(_is_label(r) for r in ratio)
    frac = _re(r'^\\frac\{([A-Za-z_{}\d]+)\}\{([A-Za-z_{}\d]+)\}$').search(s)
    return frac is not None and _is_label(frac.group(1)) and _is_label(frac.group(2))


def _label_key(label: str) -> str:
    return _sub(r'[{}\s]', '', label)


def _same_label(a: str, b: str) -> bool:
    return _label_key(a) == _label_key(b)


_RELATION = r'\\(?:le|ge|ne)(?![a-zA-Z])|<|>|='
_MEMBER = r'\\in(?![a-zA-Z])'


def _atom(text):
    return {'kind': 'atom', 'text': text}


def _labelled(label, value, member):
    return {'kind': 'labelled', 'label': label, 'value': value, 'member': member}


def _set(items, bare):
    flat = []
    for a in items:
        if a['kind'] == 'set':
            flat.extend(a['items'])
        else:
            flat.append(a)
    return {'kind': 'set', 'bare': bare, 'items': flat}


def _propagate_labels(items):
    label = None
    out = []
    for item in items:
        if item['kind'] == 'labelled':
            label = item
            out.append(item)
        elif label is not None and item['kind'] not in ('relation', 'record'):
            out.append({**label, 'value': item})
        else:
            out.append(item)
    return out


def _list(items, bare):
    with_labels = _propagate_labels(items)
    labels = [_label_key(a['label']) if a['kind'] == 'labelled' else None for a in with_labels]
    if len(with_labels) > 1 and all(lb is not None for lb in labels) and len(set(labels)) == len(labels):
        return {'kind': 'record', 'items': with_labels}
    return _set(with_labels, bare)


def _is_constant(s: str) -> bool:
    return _evaluate(s) is not None


def _parse_item(s: str):
    approx = _re(r'\\approx(?![a-zA-Z])').search(s)
    if approx is not None:
        before = s[:approx.start()]
        s = (before + '=' + _sub(r'\\approx(?![a-zA-Z])', '=', s[approx.start() + 7:])) if _is_label(before) else before
    member = _split_top_level(s, _MEMBER)[0]
    if len(member) == 2 and _is_label(member[0]):
        return _labelled(member[0], _parse_group(member[1]), True)
    parts, seps = _split_top_level(s, _RELATION)
    if len(parts) > 1 and all(p != '' for p in parts):
        ops = [_trim(sep) for sep in seps]
        if all(o == '=' for o in ops):
            last = parts[-1]
            if _is_label(parts[0]):
                return _labelled(parts[0], _parse_group(last), False)
            if len(parts) > 2 or (_is_constant(parts[0]) and _is_constant(last)):
                return _parse_group(last)
        return {'kind': 'relation', 'parts': parts, 'ops': ops}
    pm = _split(s, '\\pm')
    if len(pm) == 2:
        return _set([_parse_item(pm[0] + '+' + pm[1]), _parse_item(pm[0] + '-' + pm[1])], False)
    return _atom(s)


_MATRIX = r'^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$'


def _parse_group(s: str):
    if s == '':
        return _atom(s)
    if _wrapped(s) and _test(_MATRIX, s[1:-1]):
        s = s[1:-1]
    matrix = _re(_MATRIX).search(s)
    if matrix:
        rows = [r for r in _split(matrix.group(2), '\\\\') if r != '']
        return {
            'kind': 'tuple', 'open': 'matrix', 'close': 'matrix',
            'items': [{'kind': 'tuple', 'open': 'row', 'close': 'row', 'items': [_parse_group(x) for x in _split(r, '&')]} for r in rows],
        }
    member = _split_top_level(s, _MEMBER)[0]
    if len(member) == 2 and _is_label(member[0]):
        return _labelled(member[0], _parse_group(member[1]), True)
    union = _split(s, '\\cup')
    if len(union) > 1:
        return _set([_parse_group(u) for u in union], False)
    if s.startswith('\\{') and s.endswith('\\}') and len(_split(s[2:-2], ',')) >= 1 and '\\}' not in s[2:-2]:
        return _list([_parse_group(x) for x in _split_top_level(s[2:-2], '[,;]')[0]], False)
    if _wrapped(s):
        items = _split_top_level(s[1:-1], '[,;]')[0]
        if len(items) > 1:
            return {'kind': 'tuple', 'open': s[0], 'close': s[-1], 'items': [_parse_group(x) for x in items]}
    items = _split(s, ',')
    if len(items) > 1:
        return _list([_parse_group(x) for x in items], True)
    return _parse_item(s)


def _parse_answer(s: str):
    groups = [g for g in _split(s, ';') if g != '']
    if len(groups) > 1:
        return _list([_parse_group(g) for g in groups], True)
    return _parse_group(groups[0] if groups else '')


def _all(verdicts):
    verdicts = list(verdicts)
    if any(v is False for v in verdicts):
        return False
    return True if all(v is True for v in verdicts) else None


def _perfect_matching(n, ok) -> bool:
    owner = [-1] * n

    def augment(i, seen):
        for j in range(n):
            if seen[j] or not ok(i, j):
                continue
            seen[j] = True
            if owner[j] < 0 or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(n):
        if not augment(i, [False] * n):
            return False
    return True


def _match_all(a, b, cmp):
    if len(a) != len(b):
        return False
    v = [[cmp(x, y) for y in b] for x in a]
    if _perfect_matching(len(a), lambda i, j: v[i][j] is True):
        return True
    return None if _perfect_matching(len(a), lambda i, j: v[i][j] is not False) else False


def _distinct(items):
    seen = set()
    out = []
    for x in items:
        key = json.dumps(x)
        if key in seen:
            continue
        seen.add(key)
        out.append(x)
    return out


_FLIP = {'>': '<', '\\ge': '\\le'}


def _canonical(r):
    if all(o in ('>', '\\ge') for o in r['ops']):
        return {'parts': list(reversed(r['parts'])), 'ops': [_FLIP[o] for o in reversed(r['ops'])]}
    return r


def _relation_text(r) -> str:
    out = []
    for i, p in enumerate(r['parts']):
        if i == 0:
            out.append(p)
        else:
            op = r['ops'][i - 1]
            out.append(op + (' ' if op.startswith('\\') else '') + p)
    return ''.join(out)


def _strictness(o):
    return 's' if o in ('<', '>') else 'w' if o in ('\\le', '\\ge') else o


def _compare_relations(a, b, atoms):
    ca, cb = _canonical(a), _canonical(b)
    if len(ca['parts']) != len(cb['parts']):
        return False
    if any(_strictness(o) != _strictness(cb['ops'][i]) for i, o in enumerate(ca['ops'])):
        return False
    same_ops = all(o == cb['ops'][i] for i, o in enumerate(ca['ops']))
    if same_ops:
        pairwise = _all([atoms(p, cb['parts'][i]) for i, p in enumerate(ca['parts'])])
        if pairwise is True or len(ca['parts']) > 2:
            return pairwise
    if len(ca['parts']) > 2:
        return False
    return atoms(_relation_text(a), _relation_text(b))


def _relation_interval(r):
    c = _canonical(r)
    if not all(o in ('<', '\\le') for o in c['ops']):
        return None

    def end(s):
        return _is_constant(s) or _test(r'^-?\\infty$', s)

    def bracket(o, side):
        if o == '<':
            return '(' if side == 'open' else ')'
        return '[' if side == 'open' else ']'

    p, ops = c['parts'], c['ops']
    if len(p) == 3 and _is_label(p[1]) and end(p[0]) and end(p[2]):
        return (p[1], {'kind': 'tuple', 'open': bracket(ops[0], 'open'), 'close': bracket(ops[1], 'close'), 'items': [_atom(p[0]), _atom(p[2])]})
    if len(p) == 2 and _is_label(p[0]) and end(p[1]):
        return (p[0], {'kind': 'tuple', 'open': '(', 'close': bracket(ops[0], 'close'), 'items': [_atom('-\\infty'), _atom(p[1])]})
    if len(p) == 2 and _is_label(p[1]) and end(p[0]):
        return (p[1], {'kind': 'tuple', 'open': bracket(ops[0], 'open'), 'close': ')', 'items': [_atom(p[0]), _atom('\\infty')]})
    return None


def _plainly_interval(a) -> bool:
    if a['kind'] == 'labelled':
        return a['member']
    if a['kind'] == 'set':
        return len(a['items']) > 0 and all(_plainly_interval(x) for x in a['items'])
    if a['kind'] != 'tuple' or len(a['items']) != 2 or a['open'] not in ('(', '['):
        return False
    return a['open'] == '[' or a['close'] == ']' or any(x['kind'] == 'atom' and _test(r'\\infty', x['text']) for x in a['items'])


def _relation_versus_set(rel, other, relation_is_reference, atoms):
    iv = _relation_interval(rel)
    if iv is None:
        return False
    if not relation_is_reference and not _plainly_interval(other):
        return False
    if other['kind'] == 'labelled':
        value = other['value'] if other['member'] and _same_label(other['label'], iv[0]) else None
    else:
        value = other
    if value is None:
        return False
    return _compare(value, iv[1], atoms) if relation_is_reference else _compare(iv[1], value, atoms)


def _values_of(a):
    if a['kind'] == 'record':
        return [x['value'] for x in a['items']]
    if (a['kind'] == 'tuple' and a['open'] == '(') or (a['kind'] == 'set' and a['bare']):
        return a['items']
    return None


def _compare(a, b, atoms, reversed_=False):
    if a['kind'] == 'atom' and b['kind'] == 'atom':
        return atoms(b['text'], a['text']) if reversed_ else atoms(a['text'], b['text'])

    def again(x, y):
        return _compare(x, y, atoms, reversed_)

    def flipped():
        return _compare(b, a, atoms, not reversed_)

    ka, kb = a['kind'], b['kind']
    if ka == 'labelled' and kb == 'labelled':
        if _same_label(a['label'], b['label']):
            return again(a['value'], b['value']) if a['member'] == b['member'] else False
        if a['value']['kind'] == 'atom' and b['value']['kind'] == 'atom' and not a['member'] and not b['member'] and not _is_constant(a['value']['text']) and not _is_constant(b['value']['text']):
            def rel(lab):
                return {'parts': [lab['label'], lab['value']['text']], 'ops': ['=']}

            return _compare_relations(rel(b), rel(a), atoms) if reversed_ else _compare_relations(rel(a), rel(b), atoms)
        return False
    if ka == 'relation' and kb == 'relation':
        return _compare_relations(b, a, atoms) if reversed_ else _compare_relations(a, b, atoms)
    if ka == 'relation' and kb == 'labelled':
        return flipped()
    if ka == 'labelled' and kb == 'relation':
        if a['member']:
            return _relation_versus_set(b, a, not reversed_, atoms)
        if a['value']['kind'] != 'atom' or _is_constant(a['value']['text']):
            return False
        r = {'parts': [a['label'], a['value']['text']], 'ops': ['=']}
        return _compare_relations(b, r, atoms) if reversed_ else _compare_relations(r, b, atoms)
    if ka == 'relation' and kb != 'atom':
        return _relation_versus_set(a, b, reversed_, atoms)
    if kb in ('labelled', 'relation'):
        return flipped()
    if ka == 'labelled':
        return again(a['value'], b)
    if ka == 'relation':
        return False

    if ka == 'record' and kb == 'record':
        if len(a['items']) != len(b['items']):
            return False
        return _match_all(a['items'], b['items'], lambda x, y: again(x['value'], y['value']) if _same_label(x['label'], y['label']) else False)
    if ka == 'record' or kb == 'record':
        va, vb = _values_of(a), _values_of(b)
        if va is None or vb is None or len(va) != len(vb):
            return False
        return _all([again(x, vb[i]) for i, x in enumerate(va)])
    if ka == 'tuple' and kb == 'tuple':
        if a['open'] != b['open'] or a['close'] != b['close'] or len(a['items']) != len(b['items']):
            return False
        return _all([again(x, b['items'][i]) for i, x in enumerate(a['items'])])
    if ka == 'set' and kb == 'set':
        reference = a if reversed_ else b
        multiset = reference['bare'] and len(_distinct(reference['items'])) < len(reference['items'])
        if multiset:
            return _match_all(a['items'], b['items'], again)
        return _match_all(_distinct(a['items']), _distinct(b['items']), again)
    if not reversed_ and ka == 'set' and a['bare'] and len(a['items']) > 1 and kb == 'atom':
        return _all([again(x, b) for x in a['items']])
    la = a['items'] if ka == 'set' and a['bare'] else None
    lb = b['items'] if kb == 'set' and b['bare'] else None
    if (la is not None and kb == 'tuple' and b['open'] == '(' and b['close'] == ')') or (lb is not None and ka == 'tuple' and a['open'] == '(' and a['close'] == ')'):
        xa, xb = _values_of(a), _values_of(b)
        return _all([again(x, xb[i]) for i, x in enumerate(xa)]) if len(xa) == len(xb) else False
    return False


_LETTERS = r'^[A-Za-z]+$'
_KNOWN_COMMANDS = (
    r'\\(?:sin|cos|tan|cot|sec|csc|arcsin|arccos|arctan|sinh|cosh|tanh|exp|ln|log|pi|infty|frac|sqrt|le|ge|ne|alpha|beta|gamma|delta|epsilon|theta|lambda|mu|phi|psi|omega|rho|sigma|tau)(?![a-zA-Z])'
)


def _symbolic_candidate(s: str) -> bool:
    bare = _sub(_KNOWN_COMMANDS, '', s)
    return _test(r'[a-zA-Z]', bare) and not _test(r'\\[a-zA-Z]', bare) and '_' not in bare and not _test(r'[a-zA-Z]{3,}', bare)


def _atom_verdict(a, b, scales_a, scales_b):
    if a == b:
        return True
    if _test(_LETTERS, a) and _test(_LETTERS, b):
        return len(a) > 1 and a.lower() == b.lower()
    va = _evaluate(a)
    vb = _evaluate(b)
    if va is not None and vb is not None:
        return any(_values_equal((va[0] * sa, va[1] * sa), (vb[0] * sb, vb[1] * sb)) for sa in scales_a for sb in scales_b)
    if (va is not None and _symbolic_candidate(b)) or (vb is not None and _symbolic_candidate(a)) or (_symbolic_candidate(a) and _symbolic_candidate(b)):
        return None
    return False


def _decimal_comma(prediction: str, reference: str) -> bool:
    return _test(r'^-?\d+,(?:\d{1,2}|\d{4,})$', prediction) and _test(r'^-?\d+\.\d+$', reference) and prediction.replace(',', '.', 1) == reference


def _verdict_with(prediction: str, reference: str, atoms):
    a = _normalize_form(prediction)
    b = _normalize_form(reference)
    if a == '' or b == '':
        return False
    if a == b or _decimal_comma(a, b):
        return True
    return _compare(_parse_answer(a), _parse_answer(b), atoms)


MAX_SYMBOLIC_PAIRS = 64


def _scale_pair(prediction: str, reference: str):
    pa, pb = _has_percent(prediction), _has_percent(reference)
    if pa and pb:
        return [1], [1]
    return ([1, 0.01] if pa else [1]), ([1, 0.01] if pb else [1])


# ---- symbolic check with sympy (docs/reward.md#equivalence, "Symbolic") -------------------------

_GREEK = {'alpha', 'beta', 'gamma', 'delta', 'epsilon', 'theta', 'lambda', 'mu', 'phi', 'psi', 'omega', 'rho', 'sigma', 'tau'}
_RELATIONS = {'le': '<=', 'ge': '>=', 'ne': '!='}
_FUNCTIONS = {
    'sin': 'sin', 'cos': 'cos', 'tan': 'tan', 'cot': 'cot', 'sec': 'sec', 'csc': 'csc',
    'arcsin': 'asin', 'arccos': 'acos', 'arctan': 'atan', 'sinh': 'sinh', 'cosh': 'cosh', 'tanh': 'tanh',
    'exp': 'exp', 'ln': 'log', 'log': 'log',
}


def _convert(s: str) -> str:
    out = []
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == '\\':
            m = _re(r'^\\([a-zA-Z]+)').search(s[i:])
            if not m:
                raise ValueError('unsupported')
            name = m.group(1)
            i += len(name) + 1
            if name == 'frac':
                a = _read_argument(s, i)
                b = a and _read_argument(s, a[1])
                if not a or not b:
                    raise ValueError('incomplete \\frac')
                out.append('((' + _convert(a[0]) + ')/(' + _convert(b[0]) + '))')
                i = b[1]
            elif name == 'sqrt':
                degree = ''
                if _at(s, i) == '[':
                    close = s.find(']', i)
                    if close < 0:
                        raise ValueError('incomplete \\sqrt[')
                    degree = _convert(s[i + 1:close])
                    i = close + 1
                a = _read_argument(s, i)
                if not a:
                    raise ValueError('incomplete \\sqrt')
                out.append('((' + _convert(a[0]) + ')**(1/(' + degree + ')))' if degree else 'sqrt(' + _convert(a[0]) + ')')
                i = a[1]
            elif name == 'pi':
                out.append(' pi ')
            elif name in _GREEK:
                out.append(' lamda ' if name == 'lambda' else ' ' + name + ' ')
            elif name in _RELATIONS:
                out.append(_RELATIONS[name])
            elif name == 'infty':
                out.append(' oo ')
            elif name in _FUNCTIONS:
                out.append(' ' + _FUNCTIONS[name])
            else:
                raise ValueError('unsupported \\' + name)
        elif ch == '{':
            out.append('(')
            i += 1
        elif ch == '}':
            out.append(')')
            i += 1
        elif ch == '^':
            out.append('**')
            i += 1
        else:
            out.append(ch)
            i += 1
    return ''.join(out)


def _latex_to_sympy(latex: str):
    try:
        out = _trim(_sub(r'\s+', ' ', _convert(latex)))
    except Exception:  # the lab treats every conversion failure as "not for sympy"
        return None
    if out != '' and _test(r'^[A-Za-z0-9+\-*/().=!<> ]+$', out) and len(_re(r'<=|>=|!=|=|<|>').findall(out)) <= 1:
        return out
    return None


_SYMPY_PROGRAM = '''from sympy import simplify, I, pi, E, oo, Symbol
from sympy.parsing.sympy_parser import parse_expr, standard_transformations, implicit_multiplication_application, convert_xor
T = standard_transformations + (implicit_multiplication_application, convert_xor)
G = {}
exec('from sympy import *', G)
L = {'i': I, 'pi': pi, 'e': E, 'oo': oo}
for n in ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'theta', 'lamda', 'mu', 'phi', 'psi', 'omega', 'rho', 'sigma', 'tau']:
    L[n] = Symbol(n)
for c in 'ABCDFGHJKLMNOPQRSTUVWXYZabcdfghjklmnopqrstuvwxyz':
    L[c] = Symbol(c)
def P(s):
    return parse_expr(s, local_dict=dict(L), global_dict=G, transformations=T)
def side(s):
    for op in ('<=', '>=', '!=', '<', '>', '='):
        if op in s:
            l, r = s.split(op)
            if op in ('>', '>='):
                return P(r) - P(l), op.replace('>', '<')
            return P(l) - P(r), op
    return P(s), None
def same(A, B):
    (a, oa), (b, ob) = side(A), side(B)
    if oa != ob:
        return False
    if oa is None:
        d = simplify(a - b)
        if d == 0:
            return True
        if not d.free_symbols:
            return abs(complex(d.evalf(30))) < 1e-9
        return False
    r = simplify(a / b)
    if r.free_symbols or not (r.is_finite and r != 0):
        return False
    if oa in ('<', '<='):
        return bool(r.is_positive)
    return True
try:
    print(same(%s, %s))
except Exception:
    print(None)
'''


def symbolic_check_code(a: str, b: str):
    """The Python program the lab runs in its sandbox for a pair of LaTeX atoms, or None when sympy should not see them."""
    pa = _latex_to_sympy(a)
    pb = _latex_to_sympy(b)
    if pa is None or pb is None:
        return None
    return _SYMPY_PROGRAM % (json.dumps(pa), json.dumps(pb))


def _parse_symbolic_output(stdout: str):
    lines = _trim(stdout).split('\n')
    last = _trim(lines[-1]) if lines else ''
    return True if last == 'True' else False if last == 'False' else None


SYMPY_TIMEOUT_S = 10.0
_VERDICTS: dict = {}


def _run_program(code: str, timeout_s: float):
    """stdout of the program when it ran to the end (status ok), else None. A separate interpreter with a timeout where the
    platform has processes; in-process (no timeout) in Pyodide."""
    if sys.platform == 'emscripten':
        import contextlib
        import io

        buffer = io.StringIO()
        try:
            with contextlib.redirect_stdout(buffer):
                exec(compile(code, '<thor-sympy>', 'exec'), {'__name__': '__thor_sympy__'})
        except BaseException:  # noqa: BLE001 - the sandbox reports any failure as an error status
            return None
        return buffer.getvalue()
    import subprocess

    try:
        run = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=timeout_s)
    except (subprocess.TimeoutExpired, OSError):
        return None
    return run.stdout if run.returncode == 0 else None


def _symbolic_equivalent(a: str, b: str, timeout_s: float):
    code = symbolic_check_code(a, b)
    if code is None:
        return None
    if code not in _VERDICTS:
        stdout = _run_program(code, timeout_s)
        _VERDICTS[code] = None if stdout is None else _parse_symbolic_output(stdout)
    return _VERDICTS[code]


def _answers_equivalent(prediction: str, reference: str):
    sa, sb = _scale_pair(prediction, reference)
    return _verdict_with(prediction, reference, lambda a, b: _atom_verdict(a, b, sa, sb))


def _is_equivalent(prediction: str, reference: str, symbolic=True, timeout_s=SYMPY_TIMEOUT_S) -> bool:
    cheap = _answers_equivalent(prediction, reference)
    if cheap is not None or not symbolic:
        return bool(cheap)
    sa, sb = _scale_pair(prediction, reference)
    pending = {}

    def collect(a, b):
        v = _atom_verdict(a, b, sa, sb)
        if v is None:
            pending[(a, b)] = True
        return v

    _verdict_with(prediction, reference, collect)
    if len(pending) > MAX_SYMBOLIC_PAIRS:
        return False
    decided = {pair: _symbolic_equivalent(pair[0], pair[1], timeout_s) for pair in pending}

    def final(a, b):
        v = _atom_verdict(a, b, sa, sb)
        return decided.get((a, b)) if v is None else v

    return bool(_verdict_with(prediction, reference, final))


def is_equivalent(prediction: str, reference: str, symbolic: bool = True) -> bool:
    """The lab's answer equivalence: cheap checks, then sympy on the pairs they leave open (undecided counts as different)."""
    return _is_equivalent(_utf16(prediction), _utf16(reference), symbolic)


# ---- rewards (docs/reward.md#thor-reward, #torl-reward) ----------------------------------------

DEFAULT_SETTINGS = {'scheme': 'thor', 'code_failure_penalty': False, 'repetition_penalty': True, 'repetition_ngram': 20, 'repetition_max_count': 20}


def _has_repetition(text: str, n: int = 20, max_count: int = 20) -> bool:
    counts: dict = {}
    for i in range(0, len(text) - n + 1):
        gram = text[i:i + n]
        c = counts.get(gram, 0) + 1
        if c > max_count:
            return True
        counts[gram] = c
    return False


def _compute_reward(correct: bool, code_failed: bool, text: str, s: dict) -> float:
    if s['scheme'] == 'thor':
        if s['repetition_penalty'] and _has_repetition(text, s['repetition_ngram'], s['repetition_max_count']):
            return 0
        return 1 if correct else 0
    base = 1 if correct else -1
    return base - 0.5 if s['code_failure_penalty'] and code_failed else base


def _settings(extra_info, overrides) -> dict:
    given = extra_info.get('reward') if isinstance(extra_info, dict) else None
    settings = dict(DEFAULT_SETTINGS)
    for key in DEFAULT_SETTINGS:
        for source in (given if isinstance(given, dict) else {}, overrides):
            value = source.get(key)
            if value is not None:
                settings[key] = value.item() if hasattr(value, 'item') else value
    if settings['scheme'] not in ('thor', 'torl'):
        raise ValueError(f"reward scheme {settings['scheme']!r}: expected 'thor' or 'torl'")
    return settings


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
    """verl's reward function: {'score': reward, 'acc': correct, 'pred': extracted answer}.

    The reward settings come from extra_info['reward'] (the lab's export writes them in every row), then
    from keyword arguments (verl's custom_reward_function.reward_kwargs), else THOR's defaults. A
    boolean extra_info['code_failed'] (the lab's agent loop reports it) says whether a code call failed;
    without it, failures are read from the ```output blocks' text.
    """
    del data_source  # one reward for every source
    settings = _settings(extra_info, {k: v for k, v in kwargs.items() if k in DEFAULT_SETTINGS})
    response = _utf16(str(solution_str))
    reference = _utf16(ground_truth if isinstance(ground_truth, str) else str(ground_truth))
    flag = extra_info.get('code_failed') if isinstance(extra_info, dict) else None
    code_failed = bool(flag) if type(flag).__name__ in ('bool', 'bool_') else _code_failed(response)
    text = _policy_text(response)
    found = _extract_answer(text)
    try:
        correct = found is not None and _is_equivalent(found[0], reference)
    except RecursionError:  # nesting deeper than the interpreter allows: judged different (docs/verl.md#the-reward)
        correct = False
    score = _compute_reward(correct, code_failed, text, settings)
    return {'score': float(score), 'acc': bool(correct), 'pred': '' if found is None else _from_utf16(found[0])}
