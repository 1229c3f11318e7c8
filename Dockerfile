# Not built on this project's build machines (no Docker engine there); kept simple on purpose.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/EmbeddingService/EmbeddingService.csproj src/EmbeddingService/
RUN dotnet restore src/EmbeddingService/EmbeddingService.csproj
COPY src/ src/
RUN dotnet publish src/EmbeddingService -c Release -o /app --no-restore

FROM mcr.microsoft.com/dotnet/aspnet:10.0
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app embedding && mkdir /models && chown embedding /models
WORKDIR /app
COPY --from=build /app ./
USER embedding
ENV PORT=8000 MODEL_DIR=/models
VOLUME /models
EXPOSE 8000
# /health answers 503 while the model downloads and loads: allow for the first download.
HEALTHCHECK --interval=15s --timeout=3s --start-period=300s --retries=3 CMD curl -fsS http://127.0.0.1:8000/health || exit 1
ENTRYPOINT ["dotnet", "EmbeddingService.dll"]
