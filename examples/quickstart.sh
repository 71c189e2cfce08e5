#!/bin/sh
# Ingest the example files, one per format and table, into one case; show what it holds.
set -e
here=$(dirname "$0")
case=${1:-example.duckdb}
concerted ingest "$case" "$here/accounts.tsv" --format generic --table accounts
concerted ingest "$case" "$here/posts.csv" --format generic --table posts --map account_id=author
concerted ingest "$case" "$here/roles.json" --format generic --table roles
concerted ingest "$case" "$here/reports.jsonl" --format reports
concerted ingest "$case" "$here/shares.csv" --format coortweet --platform twitter
concerted info "$case"
# A simulated platform with a planted network; find it, and score the finding.
concerted simulate --scenario cib --seed 1 --out "${case%.duckdb}-sim" --overwrite
concerted analyze "${case%.duckdb}-sim" --out "${case%.duckdb}-result" --overwrite
concerted evaluate "${case%.duckdb}-result" --truth "${case%.duckdb}-sim"
