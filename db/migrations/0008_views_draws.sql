-- Demonstration draws: the two-sided 95% Student t quantile (for intervals over draws), cell_deltas
-- pairing each cell with the unpruned cell of its own draw, cell_draw_summaries (a grid point over its
-- draws), selection_results over every draw of a pick with the rule's decision added at the end, and
-- the draws of the selections stored before draws existed (each its one draw).

-- t(0.975, df): exact to 15 digits up to 30 degrees of freedom, Abramowitz and Stegun 26.7.5 beyond
-- (error under 3e-8); analysis/draws.ts computes the same quantile exactly.
CREATE OR REPLACE FUNCTION "icl_sweep_t975"("df" integer) RETURNS double precision
LANGUAGE sql IMMUTABLE STRICT AS $$
  SELECT CASE
    WHEN df < 1 THEN NULL
    WHEN df <= 30 THEN (ARRAY[
      12.7062047361747, 4.30265272974946, 3.18244630528371, 2.7764451051978, 2.57058183563632,
      2.44691185114497, 2.36462425159279, 2.30600413520417, 2.26215716279821, 2.22813885198628,
      2.20098516009164, 2.17881282966723, 2.16036865646279, 2.1447866879178, 2.13144954555978,
      2.11990529922126, 2.10981557783332, 2.10092204024104, 2.09302405440831, 2.08596344726586,
      2.07961384472768, 2.07387306790403, 2.06865761041905, 2.06389856162803, 2.0595385527533,
      2.05552943864287, 2.05183051648029, 2.04840714179525, 2.04522964213271, 2.04227245630124
    ]::double precision[])[df]
    ELSE 1.959963984540054 + 2.372271230298562 / df + 2.8224986157396112 / df ^ 2
      + 2.555849679507722 / df ^ 3 + 1.5895340533938225 / df ^ 4
  END
$$;
--> statement-breakpoint

CREATE OR REPLACE VIEW "cell_deltas" AS
SELECT
  r."sweep",
  r."model",
  r."dataset",
  r."task",
  r."module",
  r."layer",
  r."ratio",
  r."split",
  r."accuracy",
  r."accuracy_norm",
  r."n",
  r."status",
  r."error",
  r."reused",
  r."seconds",
  r."forward_tokens",
  r."worker",
  r."cell_key",
  b."cell_key" AS "baseline_cell_key",
  b."accuracy" AS "baseline_accuracy",
  r."accuracy" - b."accuracy" AS "delta",
  r."f1_macro",
  r."shots",
  r."seed",
  b."f1_macro" AS "baseline_f1_macro"
FROM "cell_results" r
LEFT JOIN LATERAL (
  -- The unpruned cell of the same draw: the same seed once both are done (a seed is recorded when a cell is).
  SELECT b0."cell_key", b0."accuracy", b0."f1_macro"
  FROM "cell_results" b0
  WHERE b0."sweep" = r."sweep" AND b0."model" = r."model" AND b0."dataset" = r."dataset"
    AND b0."split" = r."split" AND b0."ratio" = 0
    AND (r."seed" IS NULL OR b0."seed" IS NULL OR b0."seed" = r."seed")
  ORDER BY (b0."seed" = r."seed") DESC NULLS LAST, (b0."status" = 'done') DESC, b0."cell_key"
  LIMIT 1
) b ON true;
--> statement-breakpoint

-- One row per grid point (sweep, model, dataset, module, layer, ratio, split) over its demonstration
-- draws: the mean accuracy of the done draws, their spread and a 95% interval of the mean that counts
-- both the draws and the examples (analysis/draws.ts summarizeDraws; Wilson's with one draw).
CREATE VIEW "cell_draw_summaries" AS
SELECT
  g."sweep",
  g."model",
  g."dataset",
  g."task",
  g."module",
  g."layer",
  g."ratio",
  g."split",
  g."draws",
  g."draws_done",
  g."mean_accuracy",
  g."sd_accuracy",
  g."min_accuracy",
  g."max_accuracy",
  CASE
    WHEN g."draws_done" = 0 THEN NULL
    WHEN g."draws_done" = 1 THEN CASE WHEN g."mean_accuracy" = 0 THEN 0 ELSE GREATEST(0,
      (g."mean_accuracy" + 1.959963984540054 ^ 2 / (2 * g."n")) / (1 + 1.959963984540054 ^ 2 / g."n")
      - 1.959963984540054 / (1 + 1.959963984540054 ^ 2 / g."n")
        * sqrt(g."mean_accuracy" * (1 - g."mean_accuracy") / g."n" + 1.959963984540054 ^ 2 / (4.0 * g."n" * g."n"))) END
    ELSE GREATEST(0, g."mean_accuracy" - "icl_sweep_t975"(g."draws_done" - 1) * sqrt(GREATEST(g."var_accuracy", g."within") / g."draws_done"))
  END AS "ci_lower",
  CASE
    WHEN g."draws_done" = 0 THEN NULL
    WHEN g."draws_done" = 1 THEN CASE WHEN g."mean_accuracy" = 1 THEN 1 ELSE LEAST(1,
      (g."mean_accuracy" + 1.959963984540054 ^ 2 / (2 * g."n")) / (1 + 1.959963984540054 ^ 2 / g."n")
      + 1.959963984540054 / (1 + 1.959963984540054 ^ 2 / g."n")
        * sqrt(g."mean_accuracy" * (1 - g."mean_accuracy") / g."n" + 1.959963984540054 ^ 2 / (4.0 * g."n" * g."n"))) END
    ELSE LEAST(1, g."mean_accuracy" + "icl_sweep_t975"(g."draws_done" - 1) * sqrt(GREATEST(g."var_accuracy", g."within") / g."draws_done"))
  END AS "ci_upper",
  g."mean_delta",
  g."mean_f1_macro",
  g."n",
  g."seeds"
FROM (
  SELECT
    d."sweep", d."model", d."dataset", d."task", d."module", d."layer", d."ratio", d."split",
    count(*)::integer AS "draws",
    (count(*) FILTER (WHERE d."status" = 'done' AND d."accuracy" IS NOT NULL AND d."n" > 0))::integer AS "draws_done",
    avg(d."accuracy") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "mean_accuracy",
    stddev_samp(d."accuracy") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "sd_accuracy",
    var_samp(d."accuracy") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "var_accuracy",
    avg(d."accuracy" * (1 - d."accuracy") / d."n") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "within",
    min(d."accuracy") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "min_accuracy",
    max(d."accuracy") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "max_accuracy",
    avg(d."delta") FILTER (WHERE d."status" = 'done') AS "mean_delta",
    avg(d."f1_macro") FILTER (WHERE d."status" = 'done') AS "mean_f1_macro",
    (sum(d."n") FILTER (WHERE d."status" = 'done' AND d."n" > 0))::integer AS "n",
    array_agg(d."seed" ORDER BY d."seed") FILTER (WHERE d."status" = 'done' AND d."n" > 0) AS "seeds"
  FROM "cell_deltas" d
  GROUP BY d."sweep", d."model", d."dataset", d."task", d."module", d."layer", d."ratio", d."split"
) g;
--> statement-breakpoint

INSERT INTO "selection_draws" ("sweep", "model", "dataset", "draw", "seed", "validation_cell_key", "baseline_cell_key", "selected_cell_key")
SELECT s."sweep", s."model", s."dataset", 0, NULL, s."validation_cell_key", s."baseline_cell_key", s."selected_cell_key"
FROM "selections" s
ON CONFLICT DO NOTHING;
--> statement-breakpoint

-- Test accuracies are over the pick's draws: the mean of the done draws, n summed, the status done
-- once every draw is; with one draw, the values of its two cells as before.
CREATE OR REPLACE VIEW "selection_results" AS
SELECT
  s."sweep",
  s."model",
  s."dataset",
  t."task",
  s."module",
  s."layer",
  s."ratio",
  s."validation_accuracy",
  s."validation_cell_key",
  s."baseline_cell_key",
  d."baseline_status",
  d."baseline_accuracy",
  d."baseline_n",
  s."selected_cell_key",
  d."selected_status",
  d."selected_accuracy",
  d."selected_n",
  d."selected_accuracy" - d."baseline_accuracy" AS "delta",
  d."baseline_f1_macro",
  d."selected_f1_macro",
  s."rule",
  s."level",
  s."correction",
  s."draws",
  s."baseline_validation_accuracy",
  s."validation_gain",
  s."validation_gain_lower",
  s."validation_gain_upper",
  s."validation_gain_p",
  d."test_draws_done",
  s."decision"
FROM "selections" s
LEFT JOIN LATERAL (
  SELECT
    CASE WHEN count(*) = 0 THEN 'pending'
      WHEN bool_and(COALESCE(b."status", 'pending') = 'done') THEN 'done'
      WHEN bool_or(b."status" = 'failed') THEN 'failed'
      WHEN bool_or(b."status" = 'running') THEN 'running'
      ELSE 'pending' END AS "baseline_status",
    avg(b."accuracy") AS "baseline_accuracy",
    (sum(b."n"))::integer AS "baseline_n",
    avg(b."f1_macro") AS "baseline_f1_macro",
    CASE WHEN count(*) = 0 THEN 'pending'
      WHEN bool_and(COALESCE(x."status", 'pending') = 'done') THEN 'done'
      WHEN bool_or(x."status" = 'failed') THEN 'failed'
      WHEN bool_or(x."status" = 'running') THEN 'running'
      ELSE 'pending' END AS "selected_status",
    avg(x."accuracy") AS "selected_accuracy",
    (sum(x."n"))::integer AS "selected_n",
    avg(x."f1_macro") AS "selected_f1_macro",
    (count(*) FILTER (WHERE b."status" = 'done' AND x."status" = 'done'))::integer AS "test_draws_done"
  FROM "selection_draws" sd
  LEFT JOIN "cells" b ON b."key" = sd."baseline_cell_key"
  LEFT JOIN "cells" x ON x."key" = sd."selected_cell_key"
  WHERE sd."sweep" = s."sweep" AND sd."model" = s."model" AND sd."dataset" = s."dataset"
) d ON true
LEFT JOIN LATERAL (
  SELECT sc."task"
  FROM "sweep_cells" sc
  WHERE sc."sweep" = s."sweep" AND sc."dataset" = s."dataset" AND sc."task" IS NOT NULL
  LIMIT 1
) t ON true;
