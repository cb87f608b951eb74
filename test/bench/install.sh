#!/usr/bin/env bash
# Installs what `npm run bench` compares against and loads with: nginx, HAProxy and wrk.
# Called by test/bench/run.ts only when one of the binaries is missing. As root on Debian/Ubuntu it
# runs apt-get (nginx-light where that package still exists, else nginx); anywhere else it prints
# the command to run and exits 1, and the benchmark reports the missing targets as unavailable.
set -euo pipefail

export PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"
missing=()
for bin in nginx haproxy wrk; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "bench: nginx, haproxy and wrk are installed"
  exit 0
fi

echo "bench: missing ${missing[*]}"
if [ "$(id -u)" = "0" ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  nginx_pkg=nginx-light
  apt-cache show nginx-light >/dev/null 2>&1 || nginx_pkg=nginx
  apt-get install -y "$nginx_pkg" haproxy wrk
else
  echo "bench: install them with (Debian/Ubuntu):" >&2
  echo "  sudo apt-get update && sudo apt-get install -y nginx-light haproxy wrk" >&2
  exit 1
fi
