#!/bin/sh
# The demo's stand-in for buildout: check the sources, then "compile" the app
# into bin/ of the branch directory (the step's working directory).
# A file named BROKEN in the checkout makes the build fail, on purpose.
set -eu
src=$(dirname "$0")
echo "building $STAGEPOST_BRANCH, build $STAGEPOST_BUILD, source revision $STAGEPOST_REV_APP"
if [ -e "$src/BROKEN" ]; then
  echo "compile error: $src/BROKEN is present:" >&2
  cat "$src/BROKEN" >&2
  exit 1
fi
mkdir -p bin var
cp "$src/app-server.mjs" bin/app-server.mjs
cp "$src/restart.mjs" bin/restart.mjs
sleep 1
echo "compiled $(wc -l < "$src/CHANGES.txt") changes"
