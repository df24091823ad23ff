CREATE TABLE "cell_conflicts" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "cell_conflicts_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"cell_key" text NOT NULL,
	"sweep" text,
	"accuracy" double precision,
	"accuracy_norm" double precision,
	"n" integer,
	"differing_predictions" integer NOT NULL,
	"worker" text,
	"host" text,
	"attempt" integer,
	"execution_provider" text,
	"weight_dtype" text,
	"onnxruntime_version" text,
	"engine_version" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "cells" ADD COLUMN "host" text;--> statement-breakpoint
ALTER TABLE "cells" ADD COLUMN "execution_provider" text;--> statement-breakpoint
ALTER TABLE "cells" ADD COLUMN "weight_dtype" text;--> statement-breakpoint
ALTER TABLE "cells" ADD COLUMN "onnxruntime_version" text;--> statement-breakpoint
ALTER TABLE "sweeps" ADD COLUMN "grid" text;--> statement-breakpoint
ALTER TABLE "sweeps" ADD COLUMN "cells_planned" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sweeps" ADD COLUMN "cells_finished" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sweeps" ADD COLUMN "status" text DEFAULT 'running' NOT NULL;--> statement-breakpoint
ALTER TABLE "sweeps" ADD COLUMN "reported_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "cell_conflicts" ADD CONSTRAINT "cell_conflicts_cell_key_cells_key_fk" FOREIGN KEY ("cell_key") REFERENCES "public"."cells"("key") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "cell_conflicts_cell_key_idx" ON "cell_conflicts" USING btree ("cell_key");--> statement-breakpoint
ALTER TABLE "sweeps" ADD CONSTRAINT "sweeps_status_check" CHECK ("sweeps"."status" in ('running', 'completed', 'failed', 'cancelled'));