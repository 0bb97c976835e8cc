/**
 * Builds the user page (/app) with esbuild: web/app/main.ts and style.css bundled into
 * content-hashed files under dist/web/assets, and index.html pointing at them. No build server at
 * run time: the web dyno serves the files (src/http/routes/app.ts). Type-checking is `tsc -p web`.
 *
 * Builds may run at once (two browser test files, or a test while `npm run build` runs): every file
 * is written beside its place and renamed into it, so a reader never sees half a file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

function projectRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'dist') dir = path.dirname(dir);
  return dir;
}

export interface WebBuild {
  /** dist/web: index.html and assets/. */
  outDir: string;
  /** The hashed asset names index.html refers to. */
  assets: { js: string; css: string };
}

export async function buildWeb(opts: { root?: string; minify?: boolean } = {}): Promise<WebBuild> {
  const root = opts.root ?? projectRoot();
  const srcDir = path.join(root, 'web/app');
  const outDir = path.join(root, 'dist/web');
  const assetsDir = path.join(outDir, 'assets');
  fs.mkdirSync(assetsDir, { recursive: true });

  const result = await build({
    entryPoints: { app: path.join(srcDir, 'main.ts'), style: path.join(srcDir, 'style.css') },
    bundle: true,
    write: false,
    outdir: assetsDir,
    entryNames: '[name]-[hash]',
    format: 'iife',
    platform: 'browser',
    target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
    minify: opts.minify ?? true,
    sourcemap: 'linked',
    legalComments: 'none',
    logLevel: 'silent',
  });

  const written = new Set<string>();
  let js = '';
  let css = '';
  for (const file of result.outputFiles) {
    const name = path.basename(file.path);
    writeAtomically(file.path, file.contents);
    written.add(name);
    if (/^app-.*\.js$/.test(name)) js = name;
    if (/^style-.*\.css$/.test(name)) css = name;
  }
  if (!js || !css) throw new Error(`esbuild produced no app bundle or stylesheet (got ${[...written].join(', ')})`);

  const template = fs.readFileSync(path.join(srcDir, 'index.html'), 'utf8');
  const html = template.replaceAll('{{APP_JS}}', `/app/assets/${js}`).replaceAll('{{APP_CSS}}', `/app/assets/${css}`);
  if (html.includes('{{')) throw new Error('web/app/index.html has a placeholder the build does not know');
  // index.html last: it names the assets, which are in place by now.
  writeAtomically(path.join(outDir, 'index.html'), html);

  // Bundles of earlier builds are no longer referenced.
  for (const name of fs.readdirSync(assetsDir)) {
    if (!written.has(name) && !name.includes('.tmp-')) fs.rmSync(path.join(assetsDir, name), { force: true });
  }
  return { outDir, assets: { js, css } };
}

function writeAtomically(file: string, contents: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  fs.writeFileSync(tmp, contents);
  fs.renameSync(tmp, file);
}

if (require.main === module) {
  buildWeb()
    .then(({ outDir, assets }) => process.stdout.write(`web: ${path.relative(process.cwd(), outDir)} (${assets.js}, ${assets.css})\n`))
    .catch((err: unknown) => {
      process.stderr.write(`web build failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
