/**
 * Symbolic equivalence through sympy, for answers the cheap checks cannot decide ("x^3+3x-6" vs
 * "3x-6+x^3"). LaTeX is turned into sympy syntax here, in TypeScript (no parse_latex, which needs
 * antlr); the sandbox only runs the snippet from symbolicCheckCode and prints True, False or None.
 */
import { readArgument } from './normalize';

/** Greek letters become plain symbol names (lambda is spelled lamda, as sympy does: lambda is a Python keyword). */
const GREEK = new Set(['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'theta', 'lambda', 'mu', 'phi', 'psi', 'omega', 'rho', 'sigma', 'tau']);
const RELATIONS: Record<string, string> = { le: '<=', ge: '>=', ne: '!=' };

const FUNCTIONS: Record<string, string> = {
  sin: 'sin', cos: 'cos', tan: 'tan', cot: 'cot', sec: 'sec', csc: 'csc',
  arcsin: 'asin', arccos: 'acos', arctan: 'atan', sinh: 'sinh', cosh: 'cosh', tanh: 'tanh',
  exp: 'exp', ln: 'log', log: 'log',
};

function convert(s: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch === '\\') {
      const name = /^\\([a-zA-Z]+)/.exec(s.slice(i))?.[1];
      if (!name) throw new Error(`unsupported "${s.slice(i, i + 2)}"`);
      i += name.length + 1;
      if (name === 'frac') {
        const a = readArgument(s, i);
        const b = a && readArgument(s, a.end);
        if (!a || !b) throw new Error('incomplete \\frac');
        out += `((${convert(a.arg)})/(${convert(b.arg)}))`;
        i = b.end;
      } else if (name === 'sqrt') {
        let degree = '';
        if (s[i] === '[') {
          const close = s.indexOf(']', i);
          if (close < 0) throw new Error('incomplete \\sqrt[');
          degree = convert(s.slice(i + 1, close));
          i = close + 1;
        }
        const a = readArgument(s, i);
        if (!a) throw new Error('incomplete \\sqrt');
        out += degree ? `((${convert(a.arg)})**(1/(${degree})))` : `sqrt(${convert(a.arg)})`;
        i = a.end;
      } else if (name === 'pi') out += ' pi ';
      else if (GREEK.has(name)) out += name === 'lambda' ? ' lamda ' : ` ${name} `;
      else if (RELATIONS[name]) out += RELATIONS[name];
      else if (name === 'infty') out += ' oo ';
      else if (FUNCTIONS[name]) out += ` ${FUNCTIONS[name]}`;
      else throw new Error(`unsupported \\${name}`);
    } else if (ch === '{') {
      out += '(';
      i++;
    } else if (ch === '}') {
      out += ')';
      i++;
    } else if (ch === '^') {
      out += '**';
      i++;
    } else {
      out += ch;
      i++;
    }
  }
  return out;
}

/**
 * sympy syntax for a normalised LaTeX expression, equation or inequality (one relation at most), or
 * undefined when it holds something sympy should not see. Only letters, digits, operators and
 * parentheses survive, so the text cannot reach Python attributes or strings.
 */
export function latexToSympy(latex: string): string | undefined {
  try {
    const out = convert(latex).replace(/\s+/g, ' ').trim();
    return out !== '' && /^[A-Za-z0-9+\-*/().=!<> ]+$/.test(out) && (out.match(/<=|>=|!=|=|<|>/g) ?? []).length <= 1 ? out : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Python program that prints True / False (equivalent or not) or None (could not decide).
 * Expressions are equal when their difference simplifies to 0 (or is a constant below 1e-9).
 * Relations are compared as "left - right" against 0 with < and <= (a > b read as b < a): two
 * equations (or two "!=") are equal when the sides differ by a non-zero constant factor, two
 * inequalities of the same kind when they differ by a positive one. Names are parsed with sympy's
 * names only (no Python builtins), and one- or two-letter names are symbols.
 */
export function symbolicCheckCode(a: string, b: string): string | undefined {
  const pa = latexToSympy(a);
  const pb = latexToSympy(b);
  if (pa === undefined || pb === undefined) return undefined;
  return `from sympy import simplify, I, pi, E, oo, Symbol
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
    print(same(${JSON.stringify(pa)}, ${JSON.stringify(pb)}))
except Exception:
    print(None)
`;
}

/** The verdict printed by symbolicCheckCode's program. */
export function parseSymbolicOutput(stdout: string): boolean | undefined {
  const last = stdout.trim().split('\n').pop()?.trim();
  return last === 'True' ? true : last === 'False' ? false : undefined;
}
