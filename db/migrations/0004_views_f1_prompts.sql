-- Macro-F1 and the demonstrations and seed a cell actually used, added at the end of the views
-- (their columns are a stable interface: only ever added at the end); and cell_demonstrations.

CREATE OR REPLACE VIEW "cell_results" AS
SELECT
  sc."sweep",
  sc."model",
  sc."dataset",
  sc."task",
  sc."module",
  sc."layer",
  sc."ratio",
  sc."split",
  c."accuracy",
  c."accuracy_norm",
  c."n",
  COALESCE(c."status", 'pending') AS "status",
  c."error",
  sc."reused",
  c."seconds",
  c."forward_tokens",
  c."worker",
  sc."cell_key",
  c."f1_macro",
  c."shots",
  c."seed"
FROM "sweep_cells" sc
LEFT JOIN "cells" c ON c."key" = sc."cell_key";
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
  SELECT b0."cell_key", b0."accuracy", b0."f1_macro"
  FROM "cell_results" b0
  WHERE b0."sweep" = r."sweep" AND b0."model" = r."model" AND b0."dataset" = r."dataset"
    AND b0."split" = r."split" AND b0."ratio" = 0
  ORDER BY (b0."status" = 'done') DESC, b0."cell_key"
  LIMIT 1
) b ON true;
--> statement-breakpoint

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
  COALESCE(b."status", 'pending') AS "baseline_status",
  b."accuracy" AS "baseline_accuracy",
  b."n" AS "baseline_n",
  s."selected_cell_key",
  COALESCE(x."status", 'pending') AS "selected_status",
  x."accuracy" AS "selected_accuracy",
  x."n" AS "selected_n",
  x."accuracy" - b."accuracy" AS "delta",
  b."f1_macro" AS "baseline_f1_macro",
  x."f1_macro" AS "selected_f1_macro"
FROM "selections" s
LEFT JOIN "cells" b ON b."key" = s."baseline_cell_key"
LEFT JOIN "cells" x ON x."key" = s."selected_cell_key"
LEFT JOIN LATERAL (
  SELECT sc."task"
  FROM "sweep_cells" sc
  WHERE sc."sweep" = s."sweep" AND sc."dataset" = s."dataset" AND sc."task" IS NOT NULL
  LIMIT 1
) t ON true;
--> statement-breakpoint

-- The demonstrations of each computed cell: train row indices in prompt order and their classes,
-- and the split file its examples' idx refer to.
CREATE VIEW "cell_demonstrations" AS
SELECT
  c."key" AS "cell_key",
  c."split",
  c."shots",
  c."seed",
  d."demonstration_split",
  d."rows" AS "demonstration_rows",
  d."labels" AS "demonstration_labels",
  d."examples_split"
FROM "cells" c
JOIN "demonstration_draws" d
  ON d."dataset_fingerprint" = c."dataset_fingerprint" AND d."split" = c."split"
  AND d."shots" = c."shots" AND d."seed" = c."seed";
