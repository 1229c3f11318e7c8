#!/usr/bin/env bash
# Runs every test from a fresh Debian machine: installs what the tests need, then dotnet test.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh
install_test_prerequisites

dotnet build EmbeddingService.slnx -c Release -warnaserror --nologo -v quiet
dotnet test EmbeddingService.slnx -c Release --no-build --nologo "$@"
