# Not built on this project's build machines (no Docker engine there): tests/EmbeddingService.Tests/Operations/
# DeploymentTests publishes the service as the build stage does and runs it with this file's ENTRYPOINT and ENV.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Onnx/Onnx.csproj src/Onnx/
COPY src/EmbeddingService/EmbeddingService.csproj src/EmbeddingService/
RUN dotnet restore src/EmbeddingService/EmbeddingService.csproj
COPY src/ src/
RUN dotnet publish src/EmbeddingService -c Release -o /app --no-restore

# GPU image: docker build --target gpu -t embedding-service:gpu .  Microsoft.ML.OnnxRuntime.Gpu.Linux 1.32.0's CUDA
# provider links libcudart.so.13, libcublas(Lt).so.13, libcurand.so.10 and loads cuDNN 9: the CUDA 13 + cuDNN 9 runtime
# image. Self-contained, so the image needs no .NET runtime. Run with --gpus all and CUDA_VISIBLE_DEVICES=0.
FROM build AS build-gpu
RUN dotnet publish src/EmbeddingService -c Release -p:Gpu=true -r linux-x64 --self-contained -o /app-gpu

FROM nvidia/cuda:13.0.1-cudnn-runtime-ubuntu24.04 AS gpu
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app embedding && mkdir /models && chown embedding /models
WORKDIR /app
COPY --from=build-gpu /app-gpu ./
USER 10001
ENV PORT=8000 MODEL_DIR=/models LOG_FORMAT=json SHUTDOWN_TIMEOUT_S=30 CUDA_VISIBLE_DEVICES=0
VOLUME /models
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 CMD curl -fsS http://127.0.0.1:8000/health/ready || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/EmbeddingService"]

# The CPU image, the default target (last stage).
FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS cpu
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app embedding && mkdir /models && chown embedding /models
WORKDIR /app
COPY --from=build /app ./
USER 10001
ENV PORT=8000 MODEL_DIR=/models LOG_FORMAT=json SHUTDOWN_TIMEOUT_S=30
VOLUME /models
EXPOSE 8000
# Ready = model loaded, database reachable (when DATABASE_URL is set), not stopping. The start period allows for
# the first model download. SIGTERM (docker stop) drains: give it more than SHUTDOWN_TIMEOUT_S (docker stop -t 35).
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 CMD curl -fsS http://127.0.0.1:8000/health/ready || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["dotnet", "EmbeddingService.dll"]
