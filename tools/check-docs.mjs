// Checks that README.md and docs/ say only what exists: every relative link
// resolves, every `make TARGET` is a target of the Makefile, every
// `--example NAME` and `--test NAME` is a file of the project. Run by
// `make test`; prints each broken reference and exits 1 if there is one.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const files = ['README.md'];
const walk = (d) => {
  for (const f of readdirSync(join(root, d))) {
    const p = join(d, f);
    if (statSync(join(root, p)).isDirectory()) walk(p);
    else if (p.endsWith('.md')) files.push(p);
  }
};
walk('docs');

const makefile = readFileSync(join(root, 'Makefile'), 'utf8');
const targets = new Set([...makefile.matchAll(/^([a-z][a-z0-9-]*):/gm)].map((m) => m[1]));
const problems = [];
let checked = 0;
for (const file of files) {
  const text = readFileSync(join(root, file), 'utf8');
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^(https?:|mailto:|#)/.test(target)) continue;
    const path = target.split('#')[0];
    checked++;
    if (!existsSync(join(root, dirname(file), path))) problems.push(`${file}: link to ${target}, which does not exist`);
  }
  for (const [, target] of text.matchAll(/\bmake ([a-z][a-z0-9-]*)/g)) {
    checked++;
    if (!targets.has(target)) problems.push(`${file}: \`make ${target}\`, which the Makefile does not have`);
  }
  for (const [, name] of text.matchAll(/--example ([a-z_]+)/g)) {
    checked++;
    if (!existsSync(join(root, 'examples', `${name}.rs`))) problems.push(`${file}: example ${name}, which examples/ does not have`);
  }
  for (const [, name] of text.matchAll(/cargo test[^\n`]*--test ([a-z_]+)/g)) {
    checked++;
    if (!existsSync(join(root, 'tests', `${name}.rs`))) problems.push(`${file}: test ${name}, which tests/ does not have`);
  }
}
for (const p of problems) console.error(p);
console.log(`docs: ${checked} references in ${files.length} files checked, ${problems.length} broken`);
process.exit(problems.length ? 1 : 0);
