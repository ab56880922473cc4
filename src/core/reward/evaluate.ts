/**
 * Numeric value of a normalised LaTeX answer with no variables: numbers, + - * /, ^, parentheses,
 * \frac, \sqrt, \sqrt[n], \binom, n!, \pi, the imaginary unit i, implicit multiplication and mixed
 * numbers (1\frac{4}{5} = 9/5). Complex-valued so that "6-5i" and "-5i+6" compare equal.
 * Returns undefined for anything else (variables, functions, \infty, relations, lists).
 */

export interface Complex {
  re: number;
  im: number;
}

const C = (re: number, im = 0): Complex => ({ re, im });
const add = (a: Complex, b: Complex): Complex => C(a.re + b.re, a.im + b.im);
const sub = (a: Complex, b: Complex): Complex => C(a.re - b.re, a.im - b.im);
const mul = (a: Complex, b: Complex): Complex => C(a.re * b.re - a.im * b.im, a.re * b.im + a.im * b.re);
function div(a: Complex, b: Complex): Complex {
  const d = b.re * b.re + b.im * b.im;
  if (d === 0) throw new Error('division by zero');
  return C((a.re * b.re + a.im * b.im) / d, (a.im * b.re - a.re * b.im) / d);
}

/** Principal square root. */
function sqrt(a: Complex): Complex {
  if (a.im === 0) return a.re >= 0 ? C(Math.sqrt(a.re)) : C(0, Math.sqrt(-a.re));
  const r = Math.hypot(a.re, a.im);
  return C(Math.sqrt((r + a.re) / 2), Math.sign(a.im) * Math.sqrt((r - a.re) / 2));
}

function pow(base: Complex, exp: Complex): Complex {
  if (exp.im !== 0) throw new Error('complex exponent');
  const e = exp.re;
  if (base.im === 0 && (base.re > 0 || Number.isInteger(e))) return C(Math.pow(base.re, e));
  if (Number.isInteger(e) && Math.abs(e) <= 64) {
    let r = C(1);
    for (let k = 0; k < Math.abs(e); k++) r = mul(r, base);
    return e < 0 ? div(C(1), r) : r;
  }
  throw new Error('unsupported power');
}

function root(a: Complex, n: number): Complex {
  if (a.im !== 0 || !Number.isInteger(n) || n < 1) throw new Error('unsupported root');
  if (a.re >= 0) return C(Math.pow(a.re, 1 / n));
  if (n % 2 === 1) return C(-Math.pow(-a.re, 1 / n));
  throw new Error('even root of a negative number');
}

/** n choose k for integers 0 <= k <= n <= 1000. */
function binomial(n: Complex, k: Complex): Complex {
  if (n.im !== 0 || k.im !== 0 || !Number.isInteger(n.re) || !Number.isInteger(k.re) || k.re < 0 || k.re > n.re || n.re > 1000) {
    throw new Error('unsupported binomial');
  }
  let r = 1;
  for (let j = 1; j <= k.re; j++) r = (r * (n.re - k.re + j)) / j;
  return C(Math.round(r));
}

/** n! for integers 0 <= n <= 170. */
function factorial(n: Complex): Complex {
  if (n.im !== 0 || !Number.isInteger(n.re) || n.re < 0 || n.re > 170) throw new Error('unsupported factorial');
  let r = 1;
  for (let j = 2; j <= n.re; j++) r *= j;
  return C(r);
}

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  parse(): Complex {
    const v = this.expr();
    if (this.i !== this.s.length) throw new Error(`unexpected "${this.s.slice(this.i)}"`);
    return v;
  }

  private peek(text: string): boolean {
    return this.s.startsWith(text, this.i);
  }

  private expect(text: string): void {
    if (!this.peek(text)) throw new Error(`expected "${text}"`);
    this.i += text.length;
  }

  private expr(): Complex {
    let v = this.term();
    while (this.peek('+') || this.peek('-')) {
      const op = this.s[this.i++];
      const t = this.term();
      v = op === '+' ? add(v, t) : sub(v, t);
    }
    return v;
  }

  /** Products and quotients; juxtaposition ("2\sqrt{3}", "3i", "2(1+i)") multiplies. */
  private term(): Complex {
    let v = this.unary();
    for (;;) {
      if (this.peek('*')) {
        this.i++;
        v = mul(v, this.unary());
      } else if (this.peek('/')) {
        this.i++;
        v = div(v, this.unary());
      } else if (this.i < this.s.length && /[\d({\\i]/.test(this.s[this.i]) && !this.peek('\\infty')) {
        v = mul(v, this.power());
      } else return v;
    }
  }

  private unary(): Complex {
    if (this.peek('-')) {
      this.i++;
      return sub(C(0), this.unary());
    }
    if (this.peek('+')) {
      this.i++;
      return this.unary();
    }
    return this.power();
  }

  private power(): Complex {
    let base = this.atom();
    while (this.peek('!') && !this.peek('!=')) {
      this.i++;
      base = factorial(base);
    }
    if (!this.peek('^')) return base;
    this.i++;
    if (this.peek('{')) {
      this.i++;
      const e = this.expr();
      this.expect('}');
      return pow(base, e);
    }
    if (this.peek('-')) {
      this.i++;
      return pow(base, sub(C(0), this.atom()));
    }
    // "2^10" is read as 1024, as people type it in plain text.
    const digit = /^\d+/.exec(this.s.slice(this.i));
    if (digit) {
      this.i += digit[0].length;
      return pow(base, C(Number(digit[0])));
    }
    return pow(base, this.atom());
  }

  private group(open: string, close: string): Complex {
    this.expect(open);
    const v = this.expr();
    this.expect(close);
    return v;
  }

  private atom(): Complex {
    const rest = this.s.slice(this.i);
    const num = /^(\d+(?:\.\d*)?|\.\d+)/.exec(rest);
    if (num) {
      this.i += num[0].length;
      // Mixed number: an integer written right before a fraction of integers.
      const mixed = /^\\frac\{(\d+)\}\{(\d+)\}/.exec(this.s.slice(this.i));
      if (mixed && /^\d+$/.test(num[0])) {
        this.i += mixed[0].length;
        return C(Number(num[0]) + Number(mixed[1]) / Number(mixed[2]));
      }
      return C(Number(num[0]));
    }
    if (rest.startsWith('(')) return this.group('(', ')');
    if (rest.startsWith('{')) return this.group('{', '}');
    if (rest.startsWith('\\frac')) {
      this.i += 5;
      const a = this.group('{', '}');
      return div(a, this.group('{', '}'));
    }
    if (/^\\binom(?![a-zA-Z])/.test(rest)) {
      this.i += 6;
      const n = this.group('{', '}');
      return binomial(n, this.group('{', '}'));
    }
    if (rest.startsWith('\\sqrt')) {
      this.i += 5;
      if (this.peek('[')) {
        const n = this.group('[', ']');
        return root(this.group('{', '}'), n.re);
      }
      return sqrt(this.group('{', '}'));
    }
    if (/^\\pi(?![a-zA-Z])/.test(rest)) {
      this.i += 3;
      return C(Math.PI);
    }
    if (/^i(?![a-zA-Z])/.test(rest)) {
      this.i += 1;
      return C(0, 1);
    }
    throw new Error(`not a number at "${rest}"`);
  }
}

export function evaluateLatex(s: string): Complex | undefined {
  if (s === '' || /[=,<>]|\\infty/.test(s)) return undefined;
  try {
    const v = new Parser(s).parse();
    return Number.isFinite(v.re) && Number.isFinite(v.im) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Equal values: exactly for integers (large results must match to the unit), else within 1e-6 relative. */
export function valuesEqual(a: Complex, b: Complex): boolean {
  const integral = (x: number) => Number.isInteger(x) && Math.abs(x) < 2 ** 53;
  if (integral(a.re) && integral(a.im) && integral(b.re) && integral(b.im)) return a.re === b.re && a.im === b.im;
  const diff = Math.hypot(a.re - b.re, a.im - b.im);
  return diff <= 1e-6 * Math.max(Math.hypot(a.re, a.im), Math.hypot(b.re, b.im)) || diff < 1e-12;
}
