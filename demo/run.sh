#!/usr/bin/env bash
# The loyalty demo: installs what is missing, builds and installs the
# extension, starts a throwaway cluster in .tmp/, loads the UCI Online
# Retail data (demo/data) through the accrual trigger, and prints balances,
# points by country, the points liability, a coupon campaign for at-risk
# members with its performance view, and loyalty.verify().
# The cluster is stopped when the script exits, even on failure.
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"

setup_toolchain
ensure_packages gzip
build_install
start_cluster
psql_q -d postgres -c 'CREATE DATABASE loyalty_demo'
cd "$ROOT"
SECONDS=0
psql_q -d loyalty_demo -f demo/demo.sql
log "demo finished in ${SECONDS}s; the cluster is stopped now"
