#!/usr/bin/env node
/**
 * Runs before `npm test`: the tests need Chromium (the browser tests drive it, and it brings
 * SwiftShader, the WebGPU device of a machine without a GPU, which the Node WebGPU tests use too),
 * the Vulkan loader (Dawn opens it in Node), python3 (it compiles the sandbox's guard.py) with sympy
 * (the CPython sandbox's tests run generated code in it, tests/unit/sandbox-cpython.test.ts) and
 * PyTorch in Debian's /usr/bin/python3 (python3-torch: the independent reference the transformer's
 * logits are checked against, tests/reference/hf_reference.py), and sympy and PyYAML there (python3-sympy,
 * python3-yaml: verl's reward module is checked against the lab's reward in CPython, and the verl
 * configuration is read back with PyYAML, docs/verl.md). When
 * they are missing, this installs them with apt-get if it runs as root on Debian or Ubuntu;
 * otherwise it stops at once with one line that says what to install, instead of a wall of failed
 * tests.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromium = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const VULKAN_DIRS = ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'];

const hasVulkan = () => VULKAN_DIRS.some((dir) => existsSync(`${dir}/libvulkan.so.1`));
const hasPython = () => spawnSync('python3', ['--version']).status === 0;
const hasSympy = () => spawnSync('python3', ['-I', '-c', 'import sympy']).status === 0;
// Debian's interpreter by path: the python3 first on PATH may be another one, without torch.
const TORCH_PYTHON = '/usr/bin/python3';
const hasTorch = () => spawnSync(TORCH_PYTHON, ['-c', 'import torch']).status === 0;
const hasModule = (name) => spawnSync(TORCH_PYTHON, ['-c', `import ${name}`]).status === 0;
const missing = () => [...new Set([
  ...(existsSync(chromium) ? [] : ['chromium']),
  ...(hasVulkan() ? [] : ['libvulkan1']),
  ...(hasPython() ? [] : ['python3']),
  ...(hasSympy() ? [] : ['python3-sympy']),
  ...(hasTorch() ? [] : ['python3-torch']),
  ...(hasModule('sympy') ? [] : ['python3-sympy']),
  ...(hasModule('yaml') ? [] : ['python3-yaml']),
])];

let packages = missing();
if (packages.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const hasApt = existsSync('/usr/bin/apt-get');
if (isRoot && hasApt && !process.env.CHROMIUM_PATH) {
  console.log(`tests: installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env });
  } catch {
    // Reported below with the packages still missing.
  }
  packages = missing();
  if (packages.length === 0) process.exit(0);
}

const where = process.env.CHROMIUM_PATH && packages.includes('chromium') ? ` (CHROMIUM_PATH=${chromium} does not exist)` : '';
if (packages.includes('python3-sympy')) console.error('python3 cannot import sympy: tests/unit/sandbox-cpython.test.ts runs the CPython sandbox with it');
if (packages.includes('python3-torch')) console.error(`${TORCH_PYTHON} cannot import torch: tests/unit/hf-parity.test.ts checks the model against PyTorch with it`);
console.error(
  `the tests need ${packages.join(' and ')}${where}: run \`sudo apt-get install ${packages.join(' ')}\` (Debian/Ubuntu), or set CHROMIUM_PATH to a Chromium, then \`npm test\` again`,
);
process.exit(1);
