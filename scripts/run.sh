#!/usr/bin/env bash
# Runs the service on port 8000 (PORT to change). On first start it downloads the CLIP model into MODEL_DIR
# (default ~/.cache/embedding-service/clip-vit-base-patch32). Offline, `scripts/run.sh --synthetic` first
# generates a model of the real architecture with random weights into .models/synthetic-vit-b32 and runs
# on it: its vectors mean nothing, the service says so in GET / and in its log. The generated directory holds every
# variant (fp32, quantized, fp16), so MODEL_VARIANT picks any of them.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/prerequisites.sh
source scripts/prerequisites.sh
install_service_prerequisites

if [ "${1:-}" = "--synthetic" ]; then
  export MODEL_DIR="${MODEL_DIR:-$PWD/.models/synthetic-vit-b32}"
  if [ ! -f "$MODEL_DIR/onnx/vision_model.onnx" ]; then
    bpe=../shared/clip/bpe_simple_vocab_16e6.txt.gz
    dotnet run --project tools/SyntheticModel -c Release -- --preset vit-b32 --seed 1 --out "$MODEL_DIR" \
      --variants fp32,quantized,fp16 $([ -f "$bpe" ] && echo --bpe "$bpe")
  fi
fi

dotnet build src/EmbeddingService -c Release --nologo -v quiet
variant="${MODEL_VARIANT:-fp32}"
if [ "${1:-}" = "--synthetic" ] && [ "$variant" != fp32 ] && [ ! -f "$MODEL_DIR/onnx/vision_model_$variant.onnx" ]; then
  # A directory generated before it held every variant.
  dotnet src/EmbeddingService/bin/Release/net10.0/EmbeddingService.dll quantize --dir "$MODEL_DIR" --variant "$variant"
fi
exec dotnet src/EmbeddingService/bin/Release/net10.0/EmbeddingService.dll
