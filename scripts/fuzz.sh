#!/usr/bin/env bash
# Sends hostile requests (tools/Fuzz: mutated and crafted images, broken framing; deterministic by seed) to a
# started service and prints counts by status, the 5xx count (must be 0) and the service's RSS at start, peak
# and end. Exits 1 on any 5xx or unanswered request.
#   scripts/fuzz.sh [--url http://127.0.0.1:8000] [--count 100000] [--seed 1] [--concurrency 4] [--pid PID]
# Without --pid, the service's process is found from the port it listens on.
set -euo pipefail
cd "$(dirname "$0")/.."

url=http://127.0.0.1:8000
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "--url" ]; then url=${args[$((i + 1))]}; fi
done
if [[ " $* " != *" --pid "* ]]; then
  port=$(echo "$url" | sed -E 's#^[a-z]+://[^:/]+:?([0-9]*).*#\1#')
  port=${port:-80}
  pid=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -oE 'pid=[0-9]+' | head -n 1 | cut -d= -f2 || true)
  if [ -n "$pid" ]; then args+=(--pid "$pid"); else echo "no process found listening on port $port: RSS is not reported" >&2; fi
fi

dotnet build tools/Fuzz -c Release --nologo -v quiet
exec dotnet tools/Fuzz/bin/Release/net10.0/Fuzz.dll --images ../shared/images "${args[@]}"
