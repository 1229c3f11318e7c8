#!/usr/bin/env bash
# Runs every test from a fresh Debian machine: installs what the tests need, then dotnet test.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh
install_test_prerequisites

dotnet build EmbeddingService.slnx -c Release -warnaserror --nologo -v quiet

# A real PostgreSQL + pgvector for the storage tests (each test class makes a database of its own in it).
TEST_DATABASE_URL=$(scripts/postgres.sh start)
export TEST_DATABASE_URL

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test EmbeddingService.slnx -c Release --no-build --nologo "$@" 2>&1 | tee "$log" || status=$?

# dotnet test's summary ("Passed!  - Failed: 0, Passed: 82, Skipped: 0, ...") as one plain closing line.
count() { grep -E '^(Passed|Failed)!' "$log" | grep -oE "$1: +[0-9]+" | awk '{ sum += $2 } END { print sum + 0 }'; }
echo "$(count Passed) passed, $(count Failed) failed, $(count Skipped) skipped"
exit "$status"
