-- Views for SQL users: a stable, public interface (documented in db/README.md).
-- Columns are only ever added (at the end), never renamed or removed.

-- One row per (sweep, cell): coordinates as the sweep sees them (sweep_cells), results from the
-- shared cell (cells). A cell nobody has started yet has status 'pending'.
CREATE VIEW "cell_results" AS
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
  sc."cell_key"
FROM "sweep_cells" sc
LEFT JOIN "cells" c ON c."key" = sc."cell_key";
--> statement-breakpoint

-- cell_results + the unpruned (ratio 0) cell of the same sweep, model, dataset and split:
-- delta = accuracy - baseline_accuracy (null while either is not done).
CREATE VIEW "cell_deltas" AS
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
  r."accuracy" - b."accuracy" AS "delta"
FROM "cell_results" r
LEFT JOIN LATERAL (
  SELECT b0."cell_key", b0."accuracy"
  FROM "cell_results" b0
  WHERE b0."sweep" = r."sweep" AND b0."model" = r."model" AND b0."dataset" = r."dataset"
    AND b0."split" = r."split" AND b0."ratio" = 0
  ORDER BY (b0."status" = 'done') DESC, b0."cell_key"
  LIMIT 1
) b ON true;
--> statement-breakpoint

-- One row per selection (the paper's Algorithm 1), with the test accuracy and n of the unpruned
-- (baseline) cell and of the selected cell; delta = selected_accuracy - baseline_accuracy.
CREATE VIEW "selection_results" AS
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
  x."accuracy" - b."accuracy" AS "delta"
FROM "selections" s
LEFT JOIN "cells" b ON b."key" = s."baseline_cell_key"
LEFT JOIN "cells" x ON x."key" = s."selected_cell_key"
LEFT JOIN LATERAL (
  SELECT sc."task"
  FROM "sweep_cells" sc
  WHERE sc."sweep" = s."sweep" AND sc."dataset" = s."dataset" AND sc."task" IS NOT NULL
  LIMIT 1
) t ON true;
