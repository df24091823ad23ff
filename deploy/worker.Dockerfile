# syntax=docker/dockerfile:1
# icl-sweep GPU worker: Node 20 + onnxruntime-node with its CUDA 12 execution provider, on NVIDIA's
# CUDA 12 + cuDNN 9 runtime. Build from the repository root:
#   docker build -f deploy/worker.Dockerfile -t icl-sweep-worker .
# The CUDA provider is switched on by configuration, not by the image: ICL_SWEEP_EXECUTION_PROVIDER=cuda
# (set below; override with cpu to run the same image without a GPU).

ARG NODE_VERSION=20
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

# --- dependencies: npm ci with onnxruntime-node's CUDA 12 binaries -------------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# onnxruntime-node's install script fetches libonnxruntime_providers_cuda.so & co. for "cuda12".
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
RUN npm ci --omit=dev --no-audit --no-fund \
 && ls node_modules/onnxruntime-node/bin/napi-v6/linux/x64/ | grep -q providers_cuda

# --- runtime ---------------------------------------------------------------------------------------
FROM ${CUDA_IMAGE}
ARG NODE_VERSION
# LAPACK/OpenBLAS for the engine's SVD (koffi calls LAPACKE_sgesdd); tini forwards SIGTERM.
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblapacke libopenblas0-pthread tini ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=deps /usr/local/bin/node /usr/local/bin/node
COPY --from=deps /usr/local/lib/node_modules /usr/local/lib/node_modules
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && useradd --create-home --uid 10001 icl

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY sweepspec ./sweepspec
COPY engine ./engine
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY db ./db
COPY cli ./cli
COPY analysis ./analysis

ENV NODE_ENV=production \
    ICL_SWEEP_EXECUTION_PROVIDER=cuda \
    ICL_SWEEP_ROLES=cells \
    ICL_SWEEP_METRICS_PORT=9464 \
    ICL_SWEEP_TEMPORAL_METRICS_PORT=9465 \
    ICL_SWEEP_CACHE_DIR=/cache \
    ICL_SWEEP_DATA_ROOTS=/models:/datasets \
    ICL_SWEEP_SHUTDOWN_GRACE_SECONDS=600 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN mkdir -p /cache /models /datasets && chown icl /cache /models /datasets
USER icl
VOLUME ["/cache"]
EXPOSE 9464 9465
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD node -e "fetch('http://127.0.0.1:'+(process.env.ICL_SWEEP_METRICS_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tini is PID 1 and passes SIGTERM to the worker, which drains (stops polling, lets running cells
# finish for ICL_SWEEP_SHUTDOWN_GRACE_SECONDS) and exits.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--import", "tsx", "worker/main.ts"]
