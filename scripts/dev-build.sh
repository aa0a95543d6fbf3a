#!/usr/bin/env bash
# Incremental development build of everything `npm install` builds: the
# node-gyp targets (addon, executables, engine) and the TypeScript.
# Several people (or agents) may share one checkout: the build is serialised
# with a lock so two builds never write into build/ at the same time.
#
#   scripts/dev-build.sh          configure + build native (incremental) + tsc
#   scripts/dev-build.sh --native only the native part
#   scripts/dev-build.sh --ts     only the TypeScript
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
exec 9>/tmp/ckpt-dev-build.lock
flock 9
if [[ $what == all || $what == --native ]]; then
  npx --no-install node-gyp configure >/dev/null
  npx --no-install node-gyp build -j 2 2>&1 | grep -vE '^gyp info' || { echo "native build failed" >&2; exit 1; }
fi
if [[ $what == all || $what == --ts ]]; then
  npx --no-install tsc -p tsconfig.build.json
fi
