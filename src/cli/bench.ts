/**
 * `ckpt bench storage|stream|coordinator|checkpoint|all`: how fast this
 * machine can checkpoint and what limits it. Thin: options are parsed and
 * validated here, the work is in src/bench/.
 */
import type { Command } from 'commander';

import { CkptError, ExitCode } from '../errors.js';
import { printJson } from './output.js';

const COMMON_HELP = `
Method: one warm-up run (discarded), then several runs; each figure is the median with its min – max,
flagged "noisy" when the spread exceeds 20% of the median. Benchmark data goes to a temporary
.ckpt-bench-* directory inside DIR (default: the system temp dir) and is removed afterwards, also on
Ctrl-C. Run it on an otherwise idle machine; other load makes the figures noisy.

Output: a table with the ratios that matter; --json prints one document (schema "ckpt-bench/1",
see docs/bench.md) with every figure; --report DIR writes DIR/index.html, a self-contained report
with plots and the machine description (open it in any browser, no network needed).

Exit codes: 0 measured (sections that could not run say why); 1 the requested section could not be
measured at all; 2 invalid option; 3 DIR does not exist.`;

interface CommonOpts {
  json?: boolean;
  report?: string;
  runs?: string;
  warmup?: string;
  quick?: boolean;
}

interface AllOpts extends CommonOpts {
  size?: string;
  blockSize?: string;
  queueDepth?: string;
  fsyncRounds?: string;
  sweep?: string | false;
  imageSize?: string;
  zstdLevels?: string;
  workers?: string;
  dmtcpPrefix?: string;
  rss?: string;
  spinIterations?: string;
}

function addCommon(cmd: Command, withQuick = true): Command {
  cmd
    .option('--json', 'print one JSON document (schema ckpt-bench/1) instead of the table')
    .option('--report <dir>', 'also write a self-contained HTML report to <dir>/index.html')
    .option('--runs <n>', 'measured runs per figure (default 5, --quick 3)')
    .option('--warmup <n>', 'warm-up runs per figure, discarded (default 1)');
  if (withQuick) cmd.option('--quick', 'smaller sizes and fewer runs');
  return cmd;
}

function addStorageOpts(cmd: Command): Command {
  return cmd
    .option('--size <bytes>', 'bytes per measured file, e.g. 256M (default 1G, --quick 128M)')
    .option('--block-size <bytes>', 'bytes per write/read call (default 4M)')
    .option('--queue-depth <n>', 'O_DIRECT transfers in flight (default 1)')
    .option('--fsync-rounds <n>', 'rounds of 4 KiB write + fsync (default 100, --quick 20)')
    .option('--sweep <sizes>', 'block sizes of the bandwidth-vs-size sweep (default 64K,256K,1M,4M,16M)')
    .option('--no-sweep', 'skip the block-size sweep');
}

async function run(sections: Array<'storage' | 'stream' | 'coordinator' | 'checkpoint'>, dir: string | undefined, o: AllOpts): Promise<void> {
  // Everything is loaded before measuring, so the code that renders the
  // results is the code that produced them.
  const { runBench } = await import('../bench/runner.js');
  const { writeReport } = await import('../bench/report.js');
  const { formatDocument } = await import('../bench/format.js');
  const { parseIntOption, parseSize, parseSizeList, parseIntList } = await import('../bench/units.js');
  const { ttyProgress, silentProgress } = await import('../bench/progress.js');
  const MiB = 1024 * 1024;

  const plan: { warmup?: number; runs?: number } = {};
  if (o.runs !== undefined) plan.runs = parseIntOption(o.runs, '--runs', 1, 100);
  if (o.warmup !== undefined) plan.warmup = parseIntOption(o.warmup, '--warmup', 0, 10);
  const storage: Record<string, unknown> = {};
  if (o.size !== undefined) {
    storage.fileBytes = parseSize(o.size, '--size');
    storage.sweepFileBytes = Math.min(storage.fileBytes as number, 256 * MiB);
  }
  if (o.blockSize !== undefined) storage.blockSize = parseSize(o.blockSize, '--block-size');
  if (o.queueDepth !== undefined) storage.queueDepth = parseIntOption(o.queueDepth, '--queue-depth', 1, 64);
  if (o.fsyncRounds !== undefined) storage.fsyncRounds = parseIntOption(o.fsyncRounds, '--fsync-rounds', 1, 10000);
  if (o.sweep === false) storage.sweepBlockSizes = [];
  else if (typeof o.sweep === 'string') storage.sweepBlockSizes = parseSizeList(o.sweep, '--sweep');
  for (const k of ['fileBytes', 'blockSize', 'sweepFileBytes'] as const) {
    const v = storage[k];
    if (typeof v === 'number' && v % 4096 !== 0)
      throw new CkptError('ERR_CKPT_INVALID_ARGUMENT', `sizes must be multiples of 4 KiB (got ${v} bytes)`);
  }
  const stream: Record<string, unknown> = {};
  if (o.imageSize !== undefined) stream.imageBytes = parseSize(o.imageSize, '--image-size');
  if (o.zstdLevels !== undefined) stream.zstdLevels = parseIntList(o.zstdLevels, '--zstd-levels', 1, 22);
  const coordinator: Record<string, unknown> = {};
  if (o.workers !== undefined) coordinator.workers = parseIntList(o.workers, '--workers', 1, 100000);
  if (o.dmtcpPrefix !== undefined) coordinator.dmtcpPrefix = o.dmtcpPrefix;
  const checkpoint: Record<string, unknown> = {};
  if (o.rss !== undefined) checkpoint.rssBytes = parseSizeList(o.rss, '--rss');
  if (o.spinIterations !== undefined) checkpoint.spinIterations = parseIntOption(o.spinIterations, '--spin-iterations', 0, 1e12);
  if (o.dmtcpPrefix !== undefined) checkpoint.dmtcpPrefix = o.dmtcpPrefix;

  const progress = process.stderr.isTTY ? ttyProgress(process.stderr) : silentProgress;
  const doc = await runBench({
    sections,
    quick: o.quick === true,
    ...(dir === undefined ? {} : { dir }),
    plan,
    storage,
    stream,
    coordinator,
    checkpoint,
    command: ['ckpt', ...process.argv.slice(2)].join(' '),
    progress,
  });
  // The figures are printed first: a failure while writing the report must
  // never lose a long run's results.
  if (o.json) printJson(doc);
  else process.stdout.write(formatDocument(doc));
  if (o.report !== undefined) {
    const file = writeReport(doc, o.report);
    if (!o.json) process.stderr.write(`report written to ${file}\n`);
  }
  // A single-section command whose section could not run at all failed.
  if (sections.length === 1) {
    const sec = doc[sections[0] as 'storage'];
    if (sec && !sec.available) process.exitCode = ExitCode.Failure;
  }
}

export function register(program: Command): void {
  const bench = program
    .command('bench')
    .summary('measure storage, image streaming, the coordinator and checkpoints on this machine')
    .description(
      'How fast can this machine checkpoint, and what limits it? Measures the raw storage bandwidth and\n' +
        'how close image writing, the coordinator and end-to-end checkpoints get to it, side by side with\n' +
        'DMTCP when DMTCP_PREFIX (or --dmtcp-prefix) points at an installation.',
    );
  bench.addHelpText(
    'after',
    `
Examples:
  ckpt bench storage /scratch                 raw bandwidth and fsync cost of /scratch
  ckpt bench all --quick                      everything, in under two minutes
  ckpt bench all /scratch --report out/       full run with an HTML report in out/index.html
  ckpt bench coordinator --workers 1,900,10000 --json
${COMMON_HELP}`,
  );

  addStorageOpts(addCommon(bench.command('storage').argument('[dir]', 'directory on the storage to measure (default: system temp dir)')))
    .summary('raw sequential write/read bandwidth (O_DIRECT and buffered) and fsync cost')
    .description(
      'Sequential write and read bandwidth of the storage holding DIR, through O_DIRECT (page cache\n' +
        'bypassed; "O_DIRECT unsupported" on filesystems such as older tmpfs) and buffered (writes timed\n' +
        'until fsync returned, reads from a cold cache), a block-size sweep, and the latency of a 4 KiB\n' +
        'write + fsync. Names the filesystem and the block device.',
    )
    .addHelpText('after', `\nExamples:\n  ckpt bench storage /scratch\n  ckpt bench storage /scratch --size 4G --queue-depth 4\n  ckpt bench storage --size 64M --runs 3 --no-sweep --json\n${COMMON_HELP}`)
    .action(async (dir: string | undefined, o: AllOpts) => run(['storage'], dir, o));

  addStorageOpts(addCommon(bench.command('stream').argument('[dir]', 'directory for the test images (default: system temp dir)')))
    .option('--image-size <bytes>', 'logical bytes of the test image (default 1G, --quick 128M)')
    .option('--zstd-levels <list>', 'zstd levels to measure (default 1,3; --quick 1)')
    .summary('image write/read through the streaming core as a share of raw storage bandwidth')
    .description(
      'Writes and reads (with verification) a test image through the streaming core, raw and at zstd\n' +
        'levels, and reports each as a share of the storage bandwidth measured in the same run; gzip -1\n' +
        "(DMTCP's compression) and zstd -T0 on the same data are the references.",
    )
    .addHelpText('after', `\nExamples:\n  ckpt bench stream /scratch\n  ckpt bench stream --zstd-levels 1,3,9 --image-size 512M\n${COMMON_HELP}`)
    .action(async (dir: string | undefined, o: AllOpts) => run(['stream'], dir, o));

  addCommon(bench.command('coordinator'))
    .option('--workers <list>', 'synthetic worker counts (default 1,100,900,1000,10000; --quick 1,100,900,10000)')
    .option('--dmtcp-prefix <dir>', 'compare with the original dmtcp_coordinator of this DMTCP installation (default $DMTCP_PREFIX)')
    .summary('connect rate, checkpoint round trip and RSS with N synthetic workers, vs the original')
    .description(
      'Connects N synthetic workers (one load-generator process) to a coordinator and measures the connect\n' +
        'rate, a full checkpoint round (DO_CHECKPOINT, every barrier, filenames, resume) and the\n' +
        "coordinator's RSS; the same against DMTCP's original dmtcp_coordinator when present, in the same\n" +
        'run. The original holds at most 961 workers, so its side is capped there (and says so).',
    )
    .addHelpText('after', `\nExamples:\n  ckpt bench coordinator\n  DMTCP_PREFIX=/opt/dmtcp ckpt bench coordinator --workers 1,900 --json\n${COMMON_HELP}`)
    .action(async (o: AllOpts) => run(['coordinator'], undefined, o));

  addStorageOpts(addCommon(bench.command('checkpoint').argument('[dir]', 'directory for the images (default: system temp dir)')))
    .option('--rss <sizes>', 'resident sizes of the synthetic program (default 64M,512M,2G; --quick 32M,128M)')
    .option('--dmtcp-prefix <dir>', 'also checkpoint with DMTCP (gzip and --no-gzip) from this installation (default $DMTCP_PREFIX)')
    .option('--spin-iterations <n>', 'length of the CPU-bound loop of the runtime-overhead figure (0 skips it)')
    .summary('end-to-end checkpoint/restart time, downtime, image size, share of storage bandwidth')
    .description(
      'Checkpoints and restarts a synthetic program of each resident size with the built-in engine (and\n' +
        'DMTCP with gzip and --no-gzip when present): time, downtime, image size and the effective\n' +
        'bandwidth as a share of the storage bandwidth measured in the same run.',
    )
    .addHelpText('after', `\nExamples:\n  ckpt bench checkpoint /scratch\n  ckpt bench checkpoint --rss 64M,2G --json\n${COMMON_HELP}`)
    .action(async (dir: string | undefined, o: AllOpts) => run(['checkpoint'], dir, o));

  addStorageOpts(addCommon(bench.command('all').argument('[dir]', 'directory on the storage to measure (default: system temp dir)')))
    .option('--image-size <bytes>', 'logical bytes of the stream test image')
    .option('--zstd-levels <list>', 'zstd levels of the stream benchmark')
    .option('--workers <list>', 'synthetic worker counts of the coordinator benchmark')
    .option('--rss <sizes>', 'resident sizes of the checkpoint benchmark')
    .option('--spin-iterations <n>', 'length of the CPU-bound loop of the runtime-overhead figure (0 skips it)')
    .option('--dmtcp-prefix <dir>', 'DMTCP installation to compare with (default $DMTCP_PREFIX)')
    .summary('every benchmark above (--quick: under two minutes)')
    .description('Runs storage, stream, coordinator and checkpoint in one process, so every ratio is taken side by side.')
    .addHelpText('after', `\nExamples:\n  ckpt bench all --quick\n  ckpt bench all /scratch --report bench-report --json > bench.json\n${COMMON_HELP}`)
    .action(async (dir: string | undefined, o: AllOpts) => run(['storage', 'stream', 'coordinator', 'checkpoint'], dir, o));
}
