// Starts the real release server on a free port with its own SQLite file.
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');
const binary = process.env.CAUSERIE_BIN || path.join(root, 'target', 'release', 'causerie');

/** The servers' directories (databases, logs), removed when the test
 * worker exits: a server stopped and started again keeps its data. */
const dirs: string[] = [];
process.on('exit', () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
function made(dir: string): string {
  dirs.push(dir);
  return dir;
}

export class Server {
  url = '';
  private child?: ChildProcess;
  readonly dir = made(mkdtempSync(path.join(tmpdir(), 'causerie-e2e-')));
  private port = 0;
  /** Everything the server printed, and how it ended: shown when a test fails. */
  log = '';
  exited = '';

  constructor(private env: Record<string, string> = {}) {}

  /** Starts (or restarts on the same port and database). */
  async start(): Promise<void> {
    const addr = `127.0.0.1:${this.port}`;
    const child = spawn(binary, [], {
      cwd: this.dir,
      env: {
        ...process.env,
        CAUSERIE_ADDR: addr,
        DATABASE_URL: `sqlite://${path.join(this.dir, 'chat.db')}`,
        LEPTOS_SITE_ROOT: process.env.CAUSERIE_SITE_ROOT || path.join(root, 'target', 'site'),
        LEPTOS_OUTPUT_NAME: 'causerie',
        RUST_LOG: 'info',
        // Tests register several accounts; a test of the modes sets its own.
        CAUSERIE_REGISTRATION: 'open',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.log += chunk.toString()));
    child.on('exit', (code, signal) => (this.exited = `pid ${child.pid} exited: code ${code}, signal ${signal}`));
    this.url = await new Promise<string>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${seen}`)), 20_000);
      const onData = (chunk: Buffer) => {
        // CAUSERIE_E2E_LOG=1 shows the server's log with the test's.
        if (process.env.CAUSERIE_E2E_LOG) process.stdout.write(chunk);
        seen += chunk.toString();
        const m = seen.match(/listening on (http:\/\/[\d.]+:\d+)/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${seen}`)));
    });
    this.port = Number(new URL(this.url).port);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    // Ended on its own (a signal leaves exitCode null): say so, with its log,
    // rather than wait for an 'exit' that already happened.
    if (child.exitCode !== null || child.signalCode !== null) {
      console.error(`the server ended before the test stopped it (${this.exited}); its log:\n${this.log}`);
      return;
    }
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}
