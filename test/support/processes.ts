/** Real dueflow processes (the compiled build), as a dyno would run them. */
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { capture } from './leakScan';

const mainJs = path.resolve(__dirname, '../../dist/processors/main.js');

export interface DueflowProcess {
  child: ChildProcess;
  /** Every line the process wrote (stdout and stderr). */
  output: string[];
  /** Resolves with the first JSON log line whose msg matches. */
  waitForLog(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, any>>;
  /** Resolves with the exit code (or signal) and how long after the call it came. */
  waitForExit(timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

export function spawnDueflow(env: Record<string, string>): DueflowProcess {
  const child = spawn(process.execPath, [mainJs], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      output.push(line);
      capture('processes', line);
      for (const l of listeners) l(line);
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );

  return {
    child,
    output,
    waitForLog(msg, timeoutMs = 20_000) {
      const matches = (line: string) => {
        try {
          const parsed = JSON.parse(line);
          return (typeof msg === 'string' ? parsed.msg === msg : msg.test(parsed.msg)) ? parsed : undefined;
        } catch {
          return undefined;
        }
      };
      for (const line of output) {
        const hit = matches(line);
        if (hit) return Promise.resolve(hit);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`no log "${msg}" within ${timeoutMs} ms; output:\n${output.join('\n')}`));
        }, timeoutMs);
        const listener = (line: string) => {
          const hit = matches(line);
          if (hit) {
            clearTimeout(timer);
            listeners.delete(listener);
            resolve(hit);
          }
        };
        listeners.add(listener);
        void exited.then(() => {
          clearTimeout(timer);
          listeners.delete(listener);
          reject(new Error(`process exited before log "${msg}"; output:\n${output.join('\n')}`));
        });
      });
    },
    waitForExit(timeoutMs = 30_000) {
      return Promise.race([
        exited,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`process did not exit within ${timeoutMs} ms`)), timeoutMs).unref()),
      ]);
    },
    kill(signal = 'SIGTERM') {
      child.kill(signal);
    },
  };
}
