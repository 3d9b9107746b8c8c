#!/usr/bin/env bash
# Installs everything Strata needs to build, test and benchmark on Debian 12
# (run as root), including clang for the sanitizer and fuzzing build. Safe to
# run again.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  libsqlite3-dev sqlite3 libzstd-dev libxxhash-dev \
  libfuse3-dev fuse3 libseccomp-dev libarchive-dev \
  libcli11-dev nlohmann-json3-dev libfmt-dev libcurl4-openssl-dev libssl-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  make gcc tar diffutils python3 python3-venv stress-ng attr linux-perf bubblewrap \
  util-linux procps clang libclang-rt-dev >/dev/null
# For the S3 remote tests: tools/dev-s3.sh runs a throwaway Ceph cluster with
# radosgw (Ceph 16.2) and waits on it with curl. awscli is for the benchmarks.
apt-get install -y -qq --no-install-recommends \
  ceph-mon ceph-osd radosgw ceph-common curl awscli >/dev/null
