/**
 * Image commands: `ckpt images`, `ckpt inspect`, `ckpt verify`, `ckpt gc`
 * and `ckpt image convert`. Thin: parsing and output only; the work is in
 * src/images.ts (imported lazily so `ckpt --help` stays fast).
 */
import { Command, Option } from 'commander';

import { CkptError, ExitCode } from '../errors.js';
import type { IndexedGeneration } from '../images.js';
import { formatBytes, printJson, table } from './output.js';
import { formatAge, progress } from './progress.js';

const images = () => import('../images.js');

function intArg(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v)) throw new CkptError('ERR_CKPT_USAGE', `${name} must be an integer (got "${v}")`);
    const n = Number(v);
    if (n < min || n > max) throw new CkptError('ERR_CKPT_USAGE', `${name} must be between ${min} and ${max} (got ${n})`);
    return n;
  };
}

/** A progress line "what done/total" on a terminal; silent otherwise or with --json. */
function bar(what: string, unit: 'images' | 'bytes', quiet: boolean) {
  const p = progress({ quiet });
  return {
    onProgress: (done: number, total: number) => {
      if (total <= 0) return;
      const pct = Math.min(100, Math.floor((done / total) * 100));
      const width = 24;
      const fill = Math.round((pct / 100) * width);
      const amount = unit === 'bytes' ? `${formatBytes(done)}/${formatBytes(total)}` : `${done}/${total} images`;
      p.update(`${what} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% ${amount}`);
    },
    done: () => p.done(),
  };
}

function statusOf(g: IndexedGeneration): string {
  if (g.complete) return g.newestComplete ? 'complete (newest)' : 'complete';
  return `incomplete: ${g.reason ?? 'unknown'}`;
}

function describeGenerations(gens: IndexedGeneration[], now: number): string {
  if (gens.length === 0) return 'No checkpoint images found.\n';
  const rows = gens.map((g) => [
    g.computation,
    String(g.generation),
    g.format,
    `${new Set(g.processes.map((p) => p.processId)).size}/${g.numPeers}`,
    g.hosts.length ? g.hosts.join(',') : '-',
    formatBytes(g.bytes),
    g.newestMtimeMs ? formatAge(now - g.newestMtimeMs) : '-',
    statusOf(g),
  ]);
  return table(['COMPUTATION', 'GEN', 'FORMAT', 'PROCS', 'HOSTS', 'SIZE', 'AGE', 'STATUS'], rows);
}

export function register(program: Command): void {
  program
    .command('images')
    .summary('list checkpoints found in directories, complete or not')
    .description(
      'Find checkpoint images (ckpt and DMTCP, raw, gzip or compressed by `ckpt image convert`) and restart\n' +
        'scripts below each DIR, group them by computation and generation, and say which sets are complete.\n' +
        'A set is complete when numPeers distinct processes are present, every image is intact (ckpt: header\n' +
        'and trailer checksums and a matching MANIFEST; raw DMTCP: the end marker), and no temporary file of a\n' +
        'newer checkpoint is next to it. Each image costs two small reads; --deep reads everything.',
    )
    .argument('[dir...]', 'directories or image files to index (default: the current directory)')
    .option('--json', 'print one JSON array of generations (see docs/cli.md for the fields)')
    .option('--deep', 'verify every image in full (all checksums / a full DMTCP record walk)')
    .option('--max-depth <n>', 'directory levels to search below each DIR', intArg('--max-depth', 0, 64), 4)
    .addHelpText(
      'after',
      `
Examples:
  ckpt images                          checkpoints in the current directory
  ckpt images /scratch/ckpt --deep     verify every image in full
  ckpt images a/ b/ --json | jq '.[] | select(.complete) | .generation'

Exit codes: 0 listed (even if some sets are incomplete), 2 usage, 3 a DIR does not exist.`,
    )
    .action(async (dirs: string[], o: { json?: boolean; deep?: boolean; maxDepth: number }) => {
      const { indexImages } = await images();
      const b = bar(o.deep ? 'verifying' : 'indexing', 'images', Boolean(o.json));
      let r;
      try {
        r = await indexImages(dirs.length ? dirs : ['.'], { deep: o.deep, maxDepth: o.maxDepth, onProgress: b.onProgress });
      } finally {
        b.done();
      }
      if (o.json) {
        printJson(r.generations);
      } else {
        process.stdout.write(describeGenerations(r.generations, Date.now()));
        for (const g of r.generations) {
          for (const w of g.warnings) process.stdout.write(`  note (${g.computation} gen ${g.generation}): ${w}\n`);
        }
        const newest = r.generations.filter((g) => g.newestComplete);
        for (const g of newest) {
          if (g.format === 'dmtcp') {
            const wrapped = g.processes.some((p) => p.encoding === 'wrapped');
            process.stdout.write(
              `restart ${g.computation} from generation ${g.generation}: ${wrapped ? 'convert the compressed images back (ckpt image convert SRC DST --raw), then ' : ''}dmtcp_restart ${g.processes
                .map((p) => (p.encoding === 'wrapped' && p.path.endsWith('.dmtcp.ckpt') ? p.path.slice(0, -'.ckpt'.length) : p.path))
                .join(' ')}\n`,
            );
          }
        }
      }
      for (const u of r.unreadable) process.stderr.write(`ckpt: warning: ${u.path}: ${u.problem}\n`);
    });

  program
    .command('inspect')
    .summary('show the header and regions of one image')
    .description('Show the header (identity, generation, numPeers, host, kernel, engine) and the regions of a ckpt image,\nor the header (and record walk) of a DMTCP image. Only header, trailer and table are read.')
    .argument('<image>', 'image file (.ckpt or .dmtcp)')
    .option('--json', 'print the inspection as JSON')
    .option('--walk', 'for gzip DMTCP images, also decompress and walk every record (reads the whole file)')
    .addHelpText(
      'after',
      `
Examples:
  ckpt inspect ckpt/job/gen-3/p40000.ckpt
  ckpt inspect ckpt_python3_98ff-40000-959cd1ac24.dmtcp --json

Exit codes: 0 ok, 3 no such file, 4 the image is damaged (the message names the offset).`,
    )
    .action(async (file: string, o: { json?: boolean; walk?: boolean }) => {
      const { inspectImage } = await images();
      const r = await inspectImage(file, { walk: o.walk });
      if (o.json) {
        printJson(r);
        return;
      }
      const h = r.header as Record<string, unknown>;
      const lines: string[] = [`${file}: ${r.format} image, ${formatBytes(r.fileSize)}`];
      for (const [k, v] of Object.entries(h)) lines.push(`  ${k.padEnd(16)} ${Array.isArray(v) ? v.join(' ') : String(v)}`);
      if (r.format === 'ckpt') {
        const regions = r.regions as Array<Record<string, unknown>>;
        lines.push(`  regions: ${regions.length}, chunks: ${String(r.chunkCount)}, stored ${formatBytes(Number(r.storedBytes))}, zero pages elided ${formatBytes(Number(r.zeroBytes))}, root checksum ${String(r.rootChecksum)}`);
        const rows = regions.map((g) => [
          `${String(g.start)}-${String(g.end)}`,
          String(g.kind),
          formatBytes(Number(g.length)),
          formatBytes(Number(g.storedBytes)),
          String(g.chunks),
          String(g.name ?? ''),
        ]);
        lines.push(table(['RANGE', 'KIND', 'LENGTH', 'STORED', 'CHUNKS', 'NAME'], rows).trimEnd());
      } else {
        lines.push(`  encoding         ${String(r.encoding)}`);
        if (r.endMarkerOk !== undefined) lines.push(`  end marker       ${r.endMarkerOk ? 'ok' : 'MISSING (truncated image)'}`);
        const w = r.walk as Record<string, number> | undefined;
        if (w) lines.push(`  records          ${w.records} (${w.topLevelAreas} areas), ${formatBytes(w.dataBytes ?? 0)} data, logical size ${w.logicalSize}`);
        if (r.walkError) lines.push(`  walk             FAILED: ${String(r.walkError)}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  program
    .command('verify')
    .summary('check images in full; exit 0 only when everything is intact')
    .description(
      'Read an image, or every image below a directory, in full: every chunk checksum and the MANIFEST of\n' +
        'each ckpt generation; a complete record walk of DMTCP images (decompressing gzip ones). Exits 0 only\n' +
        'when every image is intact and every generation found is complete; otherwise prints each problem\n' +
        '(file and offset) and exits 4.',
    )
    .argument('<path>', 'an image file or a directory')
    .option('--json', 'print {ok, images, generations, problems[]} as JSON')
    .option('--threads <n>', 'verification threads (default: all cores)', intArg('--threads', 1, 256))
    .addHelpText(
      'after',
      `
Examples:
  ckpt verify ckpt/job/gen-3/p40000.ckpt
  ckpt verify /scratch/ckpt && echo intact

Exit codes: 0 intact, 3 no such path, 4 damaged or incomplete (the first bad file and offset are named).`,
    )
    .action(async (target: string, o: { json?: boolean; threads?: number }) => {
      const { verifyPath } = await images();
      const b = bar('verifying', 'bytes', Boolean(o.json));
      let r;
      try {
        r = await verifyPath(target, { threads: o.threads, onProgress: b.onProgress });
      } finally {
        b.done();
      }
      if (o.json) printJson(r);
      else if (r.ok) process.stdout.write(`${target}: intact (${r.images} image${r.images === 1 ? '' : 's'}${r.generations ? `, ${r.generations} generation${r.generations === 1 ? '' : 's'}` : ''})\n`);
      else {
        for (const p of r.problems) process.stderr.write(`ckpt: ${p.problem.startsWith(p.path) ? p.problem : `${p.path}: ${p.problem}`}\n`);
        process.stderr.write(`ckpt: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} found; run \`ckpt images ${target}\` to see which checkpoints are still complete\n`);
      }
      if (!r.ok) process.exitCode = ExitCode.Corrupt;
    });

  program
    .command('gc')
    .summary('remove old checkpoint generations, keeping the newest N complete ones')
    .description(
      'Per computation, keep the newest N complete generations and remove older generations (complete or\n' +
        'not). Never removes the newest complete generation, anything newer than it (a checkpoint may be in\n' +
        'progress), the generation `latest` points at, computations without any complete generation, or any\n' +
        'file it cannot classify.',
    )
    .argument('<dir>', 'checkpoint directory')
    .requiredOption('--keep <n>', 'complete generations to keep per computation (>= 1)', intArg('--keep', 1, 1_000_000))
    .option('--dry-run', 'only print what would be removed')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Examples:
  ckpt gc /scratch/ckpt --keep 2 --dry-run
  ckpt gc /scratch/ckpt --keep 1 --json

Exit codes: 0 done, 2 usage, 3 DIR does not exist.`,
    )
    .action(async (dir: string, o: { keep: number; dryRun?: boolean; json?: boolean }) => {
      const { gc } = await images();
      const b = bar('indexing', 'images', Boolean(o.json));
      let r;
      try {
        r = await gc(dir, { keep: o.keep, dryRun: o.dryRun, onProgress: b.onProgress });
      } finally {
        b.done();
      }
      if (o.json) {
        printJson(r);
        return;
      }
      const verb = r.dryRun ? 'would remove' : 'removed';
      for (const x of r.removed) process.stdout.write(`${verb} ${x.path} (${formatBytes(x.bytes)}; ${x.computation} gen ${x.generation}: ${x.why})\n`);
      for (const k of r.kept) process.stdout.write(`kept ${k.format} ${k.computation} generation ${k.generation}\n`);
      for (const s of r.skipped) process.stdout.write(`left ${s.path}: ${s.why}\n`);
      process.stdout.write(`${r.dryRun ? 'would free' : 'freed'} ${formatBytes(r.freedBytes)}${r.dryRun ? ' (dry run: nothing was removed)' : ''}\n`);
    });

  const image = program.command('image').summary('image utilities (convert)').description('Image utilities. See `ckpt image convert --help`.');
  image
    .command('convert')
    .summary('compress or decompress an image without changing what it restores')
    .description(
      'Convert SRC to DST:\n' +
        '  DMTCP image (raw or gzip)   -> ckpt container (zstd), listed with its DMTCP generation by `ckpt images`\n' +
        '  ckpt container of DMTCP     -> the raw DMTCP image, byte-identical (checked with the stored checksum)\n' +
        '  gzip DMTCP image, --raw     -> raw DMTCP image (what dmtcp_restart reads fastest)\n' +
        '  ckpt image                  -> ckpt image with another codec (--raw or --zstd LEVEL)\n' +
        'SRC is read in full and checked first (a truncated DMTCP image is refused). DST is written under a\n' +
        'temporary name and renamed when complete; SRC is never modified.',
    )
    .argument('<src>', 'source image')
    .argument('<dst>', 'destination file')
    .addOption(new Option('--zstd <level>', 'compress with zstd at LEVEL (-7..19; default 3)').argParser(intArg('--zstd', -7, 19)).conflicts('raw'))
    .addOption(new Option('--raw', 'write uncompressed output (raw DMTCP image for DMTCP sources)').conflicts('zstd'))
    .option('--threads <n>', 'compression threads (default: all cores)', intArg('--threads', 1, 256))
    .option('--force', 'replace DST if it exists')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Examples:
  ckpt image convert ckpt_a_98ff-40000-1.dmtcp ckpt_a_98ff-40000-1.dmtcp.ckpt --zstd 3
  ckpt image convert ckpt_a_98ff-40000-1.dmtcp.ckpt ckpt_a_98ff-40000-1.dmtcp --raw

Exit codes: 0 done, 2 usage, 3 SRC missing, 4 SRC damaged, 5 DST exists (use --force).`,
    )
    .action(async (src: string, dst: string, o: { zstd?: number; raw?: boolean; threads?: number; force?: boolean; json?: boolean }) => {
      const { convertImage } = await images();
      const b = bar('converting', 'bytes', Boolean(o.json));
      let r;
      try {
        r = await convertImage(src, dst, { zstd: o.zstd, raw: o.raw, threads: o.threads, force: o.force, onProgress: b.onProgress });
      } finally {
        b.done();
      }
      if (o.json) printJson(r);
      else
        process.stdout.write(
          `${src} (${r.from}, ${formatBytes(r.inBytes)}) -> ${dst} (${r.to}, ${formatBytes(r.outBytes)})${r.contentChecksum ? `, content xxh3 ${r.contentChecksum}` : ''}\n`,
        );
    });
}
