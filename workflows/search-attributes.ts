/**
 * The custom search attributes the sweep workflow sets, so `temporal workflow list` finds the sweeps
 * of a name, a model or a dataset:
 *
 *   temporal workflow list --query "IclSweepModels = 'smollm2-135m'"
 *
 * They must be registered on the namespace before a sweep runs: workers register missing ones at
 * start-up (worker/search-attributes.ts), scripts/register-search-attributes.sh does it with the
 * `temporal` CLI for an operator, and the demo's dev server starts with them.
 */
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

export const SWEEP_NAME = defineSearchAttributeKey('IclSweepName', SearchAttributeType.KEYWORD);
export const SWEEP_MODELS = defineSearchAttributeKey('IclSweepModels', SearchAttributeType.KEYWORD_LIST);
export const SWEEP_DATASETS = defineSearchAttributeKey('IclSweepDatasets', SearchAttributeType.KEYWORD_LIST);

export const SEARCH_ATTRIBUTES = [SWEEP_NAME, SWEEP_MODELS, SWEEP_DATASETS];
