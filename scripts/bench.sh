#!/usr/bin/env bash
# Prints the performance table of the README: raw inference, preprocessing, the service over HTTP (from a
# separate process), overload and memory, on a generated vit-b32 model (made on first use, ~5 s).
# Options: --model DIR --seconds N (per measurement, default 10) --soak N (requests, default 10000);
# --focus (1 and 8 clients and a 24 MP photo against raw inference, five interleaved rounds), --text, --storage, --hostile,
# --variants (fp32 vs int8 vs fp16), --operations (/metrics, SIGTERM) run one part; --storage --items N with
# BENCH_REUSE_STORE=1 searches the store the last run imported;
# --layout [--items N --queries N --layouts vector,halfvec] compares the store's layouts (column type, vector index).
# --indexing: the index command as one process, as two shards at once and from a manifest of URLs, against the service.
# --family [--presets vit-b32,vit-b16,vit-l14,vit-l14-336]: each CLIP model at full size, fp32 and int8 (the README's model table).
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build bench/EmbeddingService.Bench -c Release --nologo -v quiet
# The store's figures need PostgreSQL + pgvector: the same throwaway cluster as the tests.
# A store of a million vectors and its indexes: give PostgreSQL the memory a production server would.
case " $* " in *" --layout "*|*" --items "*) export PG_SHARED_BUFFERS=${PG_SHARED_BUFFERS:-4GB} ;; esac
BENCH_DATABASE_URL=$(scripts/postgres.sh start)
export BENCH_DATABASE_URL
exec dotnet bench/EmbeddingService.Bench/bin/Release/net10.0/EmbeddingService.Bench.dll "$@"
