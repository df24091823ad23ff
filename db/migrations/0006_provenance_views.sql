-- cell_results gains, at its end, where and how each result was computed (db/README.md).
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
  c."seed",
  c."host",
  c."execution_provider",
  c."weight_dtype",
  c."onnxruntime_version",
  c."engine_version",
  NULLIF(c."attempts", 0) AS "attempt"
FROM "sweep_cells" sc
LEFT JOIN "cells" c ON c."key" = sc."cell_key";
--> statement-breakpoint

-- Rows older than the progress columns: their sweeps reported last when they were last updated.
UPDATE "sweeps" SET "reported_at" = "updated_at";
