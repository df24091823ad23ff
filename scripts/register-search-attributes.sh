#!/usr/bin/env bash
# Registers the sweep workflow's custom search attributes (workflows/search-attributes.ts) on a
# Temporal namespace with the `temporal` CLI; idempotent. Uses TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE
# (and the CLI's own TLS / API key variables). Workers register missing ones themselves at start-up
# when the server lets them; run this where it does not (Temporal Cloud: use `tcld` or the UI).
set -euo pipefail
address="${TEMPORAL_ADDRESS:-localhost:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"
existing=$(temporal operator search-attribute list --address "$address" --namespace "$namespace" --output json)
for spec in IclSweepName:Keyword IclSweepModels:KeywordList IclSweepDatasets:KeywordList; do
  name=${spec%%:*}
  type=${spec##*:}
  if grep -q "\"$name\"" <<<"$existing"; then continue; fi
  temporal operator search-attribute create --address "$address" --namespace "$namespace" --name "$name" --type "$type"
done
echo "search attributes registered on $namespace at $address"
