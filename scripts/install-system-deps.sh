#!/usr/bin/env bash
# System packages the test suite uses for real: bubblewrap (sandbox), universal-ctags (benchmarks),
# docker.io (a local engine for the docker sandbox tests). Best effort: tests skip with a reason
# when a tool is missing, so a machine without root still runs the rest.
set -u
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v ctags >/dev/null 2>&1 || need+=(universal-ctags)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v git >/dev/null 2>&1 || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 \
      || echo "warning: could not install ${need[*]}; the tests that need them will skip" >&2
  else
    echo "warning: not root; missing ${need[*]}; the tests that need them will skip" >&2
  fi
fi
exit 0
