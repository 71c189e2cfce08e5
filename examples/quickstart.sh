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
# The main job: simulate a network like the 2020 Pakistan case, find it, write the
# report (DIR/result/report.html) and score the finding against the simulation's truth.
concerted demo --out "${case%.duckdb}-demo"
