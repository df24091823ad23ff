CREATE TABLE "cells" (
	"key" text PRIMARY KEY NOT NULL,
	"engine_version" text,
	"model_fingerprint" text,
	"dataset_fingerprint" text,
	"module" text NOT NULL,
	"layer" integer NOT NULL,
	"ratio" double precision NOT NULL,
	"split" text NOT NULL,
	"shots" integer,
	"seed" integer,
	"params" jsonb,
	"status" text NOT NULL,
	"accuracy" double precision,
	"accuracy_norm" double precision,
	"n" integer,
	"forward_tokens" bigint,
	"seconds" double precision,
	"cost" jsonb,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"worker" text,
	"error" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "cells_status_check" CHECK ("cells"."status" in ('running', 'done', 'failed')),
	CONSTRAINT "cells_split_check" CHECK ("cells"."split" in ('validation', 'test'))
);
--> statement-breakpoint
CREATE TABLE "examples" (
	"cell_key" text NOT NULL,
	"idx" integer NOT NULL,
	"label" integer NOT NULL,
	"prediction" integer NOT NULL,
	"scores" real[] NOT NULL,
	CONSTRAINT "examples_pkey" PRIMARY KEY("cell_key","idx")
);
--> statement-breakpoint
CREATE TABLE "selections" (
	"sweep" text NOT NULL,
	"model" text NOT NULL,
	"dataset" text NOT NULL,
	"module" text NOT NULL,
	"layer" integer NOT NULL,
	"ratio" double precision NOT NULL,
	"validation_accuracy" double precision NOT NULL,
	"validation_cell_key" text NOT NULL,
	"baseline_cell_key" text NOT NULL,
	"selected_cell_key" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "selections_pkey" PRIMARY KEY("sweep","model","dataset")
);
--> statement-breakpoint
CREATE TABLE "sweep_cells" (
	"sweep" text NOT NULL,
	"cell_key" text NOT NULL,
	"model" text NOT NULL,
	"dataset" text NOT NULL,
	"task" text,
	"module" text NOT NULL,
	"layer" integer NOT NULL,
	"ratio" double precision NOT NULL,
	"split" text NOT NULL,
	"reused" boolean DEFAULT false NOT NULL,
	"linked_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sweep_cells_pkey" PRIMARY KEY("sweep","cell_key")
);
--> statement-breakpoint
CREATE TABLE "sweeps" (
	"name" text PRIMARY KEY NOT NULL,
	"workflow_id" text NOT NULL,
	"spec" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "examples" ADD CONSTRAINT "examples_cell_key_cells_key_fk" FOREIGN KEY ("cell_key") REFERENCES "public"."cells"("key") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "selections" ADD CONSTRAINT "selections_sweep_sweeps_name_fk" FOREIGN KEY ("sweep") REFERENCES "public"."sweeps"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sweep_cells" ADD CONSTRAINT "sweep_cells_sweep_sweeps_name_fk" FOREIGN KEY ("sweep") REFERENCES "public"."sweeps"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "cells_status_idx" ON "cells" USING btree ("status");--> statement-breakpoint
CREATE INDEX "sweep_cells_cell_key_idx" ON "sweep_cells" USING btree ("cell_key");--> statement-breakpoint
CREATE INDEX "sweep_cells_sweep_coords_idx" ON "sweep_cells" USING btree ("sweep","model","dataset","split","ratio");