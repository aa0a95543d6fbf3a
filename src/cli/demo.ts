/**
 * `ckpt demo` (`npm run demo`): the Apptainer walkthrough on the host, step
 * by step, with a Python HTTP server that holds a value. Everything lives in
 * a temporary $CKPT_HOME that is removed at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import type { Command } from 'commander';

import { CkptError } from '../errors.js';
import { parseEngineName } from '../engines/engine.js';

/** A tiny HTTP server holding one integer: GET returns it, POST sets it. */
export const VALUE_SERVER_PY = `import http.server, sys
value = 0
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = str(value).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        global value
        length = int(self.headers.get("Content-Length", 0))
        value = int(self.rfile.read(length) or b"0")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
print("serving on port", sys.argv[1], flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
`;

/** The real python3 executable (not a pyenv shell shim, which would carry the engine into every helper). */
export function realPython(): string {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' });
  const exe = r.status === 0 ? r.stdout.trim() : '';
  if (!exe) throw new CkptError('ERR_CKPT_NOT_FOUND', 'python3 is needed for the demo: `apt-get install python3`.');
  return exe;
}

/** A TCP port that was free a moment ago (the kernel's choice). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET or POST to the value server, retrying while it starts (bounded). */
export async function httpValue(port: number, post?: number, waitMs = 20_000): Promise<string> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, post === undefined ? {} : { method: 'POST', body: String(post) });
      return (await res.text()).trim();
    } catch (err) {
      if (Date.now() > deadline) throw new CkptError('ERR_CKPT_TIMEOUT', `The server on port ${port} did not answer: ${(err as Error).message}`);
      await sleep(100);
    }
  }
}

const ckptBin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'ckpt');

async function run(env: NodeJS.ProcessEnv, args: string[]): Promise<void> {
  process.stdout.write(`\n\x1b[1m$ ckpt ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}\x1b[0m\n`);
  const code = await new Promise<number>((resolve) => {
    const c = spawn(process.execPath, [ckptBin, ...args], { env, stdio: 'inherit' });
    c.once('exit', (c2) => resolve(c2 ?? 1));
  });
  if (code !== 0) throw new CkptError('ERR_CKPT_STATE', `The demo stopped: \`ckpt ${args.join(' ')}\` exited with ${code}.`, { exitCode: code });
}

export function register(program: Command): void {
  const cmd = program
    .command('demo')
    .description('walk through checkpoint/restart of a Python server with Apptainer-style commands (uses a temporary state directory)')
    .option('--engine <engine>', 'builtin or dmtcp', parseEngineName, 'builtin');
  cmd.addHelpText('after', '\nExamples:\n  ckpt demo\n  npm run demo\n  DMTCP_PREFIX=/opt/dmtcp ckpt demo --engine dmtcp');
  cmd.action(async (o: { engine: 'builtin' | 'dmtcp' }) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-demo-'));
    const env = { ...process.env, CKPT_HOME: home };
    const server = path.join(home, 'value-server.py');
    fs.writeFileSync(server, VALUE_SERVER_PY);
    const python = realPython();
    const port = await freePort();
    const say = (s: string) => process.stdout.write(`\n\x1b[36m# ${s}\x1b[0m\n`);
    const show = async (label: string, expect: string, post?: number) => {
      const v = await httpValue(port, post);
      process.stdout.write(`${label} -> ${post === undefined ? v : 'ok'}\n`);
      if (post === undefined && v !== expect) throw new CkptError('ERR_CKPT_CORRUPT', `Expected the server to hold ${expect}, it holds ${v}.`);
    };
    const started: string[] = [];
    try {
      say(`A temporary state directory: CKPT_HOME=${home}; engine: ${o.engine}; server port ${port}.`);
      say('Create a named checkpoint.');
      await run(env, ['checkpoint', 'create', 'example']);
      say('Start a server that holds a value, under checkpoint control, as instance "server".');
      await run(env, ['instance', 'start', '--engine', o.engine, '--dmtcp-launch', 'example', '--host', 'server', '--', python, server, String(port)]);
      started.push('server');
      say('Talk to it.');
      await show(`GET  http://127.0.0.1:${port}/`, '0');
      await show(`POST http://127.0.0.1:${port}/ 1`, '', 1);
      await show(`GET  http://127.0.0.1:${port}/`, '1');
      say('Checkpoint it; this returns once the images are durable.');
      await run(env, ['checkpoint', 'instance', 'server']);
      await run(env, ['checkpoint', 'list']);
      say('Stop it, and restart it at once as "restarted" on the same port.');
      await run(env, ['instance', 'stop', 'server']);
      started.pop();
      await run(env, ['instance', 'start', '--engine', o.engine, '--dmtcp-restart', 'example', '--host', 'restarted', '--', python, server, String(port)]);
      started.push('restarted');
      await run(env, ['instance', 'list']);
      say('The value survived.');
      await show(`GET  http://127.0.0.1:${port}/`, '1');
      say('Clean up.');
      await run(env, ['instance', 'stop', 'restarted']);
      started.pop();
      await run(env, ['checkpoint', 'delete', 'example']);
      say('Done: checkpoint, stop, restart, and the server still holds 1.');
    } finally {
      for (const name of started) spawnSync(process.execPath, [ckptBin, 'instance', 'stop', name], { env, stdio: 'ignore' });
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
}
