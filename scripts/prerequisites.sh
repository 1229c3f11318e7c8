#!/usr/bin/env bash
# What the project needs beyond the machine image; sourced by the run and test scripts.

need_root() { if [ "$(id -u)" -ne 0 ]; then echo sudo; fi; }

apt_install() {
  local missing=()
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    $(need_root) apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $(need_root) apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

install_dotnet() {
  if ! command -v dotnet >/dev/null 2>&1; then
    echo "The .NET 10 SDK is required: https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2
    exit 1
  fi
}

install_service_prerequisites() {
  install_dotnet
}

install_test_prerequisites() {
  install_dotnet
  # The end-to-end tests run the README's client snippets unchanged: curl, Debian's python3 with requests,
  # and node with axios + form-data pinned by tests/e2e-js/package-lock.json.
  apt_install curl python3 python3-requests binutils
  # The search page's browser tests drive Debian's Chromium (browsers cannot be downloaded by Playwright here).
  apt_install chromium
  # A Node.js that came with its own npm (as on these machines) conflicts with Debian's npm package.
  command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  if [ ! -d tests/e2e-js/node_modules ] || [ tests/e2e-js/package-lock.json -nt tests/e2e-js/node_modules ]; then
    (cd tests/e2e-js && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
