#!/usr/bin/env bash
# Cut the bundled sample: the first 1,000 cases of helpdesk.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
awk -F, 'NR == 1 { print; next } $1 != last { n++; last = $1 } n <= 1000 { print }' \
  ../shared/data/helpdesk.csv > public/sample/helpdesk-1000.csv
