CREATE TABLE "demonstration_draws" (
	"dataset_fingerprint" text NOT NULL,
	"split" text NOT NULL,
	"shots" integer NOT NULL,
	"seed" integer NOT NULL,
	"demonstration_split" text NOT NULL,
	"rows" integer[] NOT NULL,
	"labels" integer[] NOT NULL,
	"examples_split" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "demonstration_draws_pkey" PRIMARY KEY("dataset_fingerprint","split","shots","seed"),
	CONSTRAINT "demonstration_draws_split_check" CHECK ("demonstration_draws"."split" in ('validation', 'test'))
);
--> statement-breakpoint
ALTER TABLE "cells" ADD COLUMN "f1_macro" double precision;