CREATE TABLE "selection_draws" (
	"sweep" text NOT NULL,
	"model" text NOT NULL,
	"dataset" text NOT NULL,
	"draw" integer NOT NULL,
	"seed" integer,
	"validation_cell_key" text NOT NULL,
	"baseline_cell_key" text NOT NULL,
	"selected_cell_key" text NOT NULL,
	CONSTRAINT "selection_draws_pkey" PRIMARY KEY("sweep","model","dataset","draw")
);
--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "rule" text DEFAULT 'paper' NOT NULL;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "level" double precision;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "correction" text;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "draws" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "baseline_validation_accuracy" double precision;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "validation_gain" double precision;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "validation_gain_lower" double precision;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "validation_gain_upper" double precision;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "validation_gain_p" double precision;--> statement-breakpoint
ALTER TABLE "selections" ADD COLUMN "decision" jsonb;--> statement-breakpoint
ALTER TABLE "selection_draws" ADD CONSTRAINT "selection_draws_selection_fk" FOREIGN KEY ("sweep","model","dataset") REFERENCES "public"."selections"("sweep","model","dataset") ON DELETE cascade ON UPDATE no action;