/**
 * Registers the sweep's custom search attributes (workflows/search-attributes.ts) on the namespace
 * when they are missing. A workflows worker does it at start-up, so a sweep never meets a namespace
 * without them (its workflow task would fail until they exist). Where the worker may not register
 * them (Temporal Cloud, a locked-down server), an operator runs scripts/register-search-attributes.sh.
 */
import type { SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../workflows/search-attributes.ts';

type IndexedValueType = proto.temporal.api.enums.v1.IndexedValueType;
const { IndexedValueType } = proto.temporal.api.enums.v1;

const INDEXED: Partial<Record<SearchAttributeType, IndexedValueType>> = {
  KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** The operator service calls this needs (a client Connection's or a NativeConnection's). */
export interface SearchAttributeOperator {
  listSearchAttributes(req: { namespace: string }): Promise<{ customAttributes?: Record<string, unknown> | null }>;
  addSearchAttributes(req: { namespace: string; searchAttributes: Record<string, IndexedValueType> }): Promise<unknown>;
}

/**
 * Registers the missing attributes; returns their names (empty when all were there). A server that
 * will not list them (a namespace-scoped credential) is taken at its word: nothing to do here.
 */
export async function ensureSearchAttributes(operator: SearchAttributeOperator, namespace: string): Promise<string[]> {
  let present: Record<string, unknown>;
  try {
    present = (await operator.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    console.warn(`could not list the search attributes of namespace "${namespace}" (${(err as Error).message}); sweeps need ${SEARCH_ATTRIBUTES.map((k) => k.name).join(', ')}`);
    return [];
  }
  const missing = SEARCH_ATTRIBUTES.filter((key) => !(key.name in present));
  if (missing.length === 0) return [];
  try {
    await operator.addSearchAttributes({ namespace, searchAttributes: Object.fromEntries(missing.map((key) => [key.name, INDEXED[key.type]!])) });
  } catch (err) {
    // Another worker registering them at the same moment is fine.
    if (!/already exists/i.test((err as Error).message)) {
      throw new Error(
        `search attributes ${missing.map((k) => k.name).join(', ')} are not registered on namespace "${namespace}" and this worker could not register them ` +
          `(${(err as Error).message}); run scripts/register-search-attributes.sh against it`,
      );
    }
  }
  return missing.map((key) => key.name);
}
