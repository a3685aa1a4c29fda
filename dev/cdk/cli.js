#!/usr/bin/env node
// `npx cdk ...` from the repository root runs this file (the root package.json names it as the project's
// `cdk` command). It installs the AWS CDK CLI and the Node.js LTS it runs on, both pinned in
// dev/cdk/package-lock.json, under .cache/cdk/ once (again only when the lock file changes), then runs the
// CLI on that Node.js, first on PATH so the CDK app's jsii runtime uses it too. Any Node.js with npm starts
// it; the CDK app itself then needs Go (and Docker only where the host cannot build the Lambdas).
'use strict';

const { spawnSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');
const lockFile = path.join(__dirname, 'package-lock.json');
const cache = path.join(root, '.cache', 'cdk');
const cli = path.join(cache, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const binDir = path.join(cache, 'node_modules', '.bin');
const node = path.join(binDir, process.platform === 'win32' ? 'node.exe' : 'node');
const stamp = path.join(cache, '.lock-sha256');

function die(msg) {
  process.stderr.write(`cdk: ${msg}\n`);
  process.exit(1);
}

function install() {
  const want = crypto.createHash('sha256').update(fs.readFileSync(lockFile)).digest('hex');
  let have = '';
  try {
    have = fs.readFileSync(stamp, 'utf8').trim();
  } catch {
    // not installed yet
  }
  if (want === have && fs.existsSync(cli)) return;

  process.stderr.write(`cdk: installing the pinned AWS CDK CLI into ${path.relative(root, cache)}\n`);
  // Install into a fresh directory and swap it in, so an interrupted install never leaves a half tree.
  fs.mkdirSync(path.dirname(cache), { recursive: true });
  const tmp = fs.mkdtempSync(cache + '.tmp-');
  for (const f of ['package.json', 'package-lock.json']) {
    fs.copyFileSync(path.join(__dirname, f), path.join(tmp, f));
  }
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // npm's own output (its "added 3 packages" summary goes to stdout) goes to stderr: stdout carries only
  // what the CDK CLI prints, e.g. the template of `cdk synth`.
  const r = spawnSync(npm, ['ci', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: tmp,
    stdio: ['ignore', process.stderr, 'inherit'],
    shell: process.platform === 'win32',
  });
  if (r.error || r.status !== 0) {
    fs.rmSync(tmp, { recursive: true, force: true });
    die(`npm ci of dev/cdk/package-lock.json failed${r.error ? ': ' + r.error.message : ''}`);
  }
  fs.writeFileSync(path.join(tmp, '.lock-sha256'), want + '\n');
  fs.rmSync(cache, { recursive: true, force: true });
  fs.renameSync(tmp, cache);
  if (!fs.existsSync(cli)) die(`the CDK CLI is missing at ${cli} after npm ci`);
  if (!fs.existsSync(node)) die(`Node.js is missing at ${node} after npm ci (package node in dev/cdk/package.json)`);
}

install();
const env = { ...process.env, PATH: binDir + path.delimiter + (process.env.PATH || '') };
const child = spawn(node, [cli, ...process.argv.slice(2)], { cwd: process.cwd(), stdio: 'inherit', env });
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => child.kill(sig));
}
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  process.exit(code ?? 1);
});
