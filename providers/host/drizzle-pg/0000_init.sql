CREATE TABLE "accounts" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "adapters" (
	"id" text PRIMARY KEY NOT NULL,
	"kid" text NOT NULL,
	"name" text NOT NULL,
	"model" text NOT NULL,
	"revision" text NOT NULL,
	"params" text NOT NULL,
	"file" text NOT NULL,
	"bytes" bigint NOT NULL,
	"digest" text NOT NULL,
	"job_id" text,
	"program_digest" text,
	"training" text,
	"attach" text,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" bigint NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"job_id" text,
	"program_digest" text,
	"model" text,
	"revision" text,
	"edits" text,
	"egress_bytes" bigint,
	"detail" text
);
--> statement-breakpoint
CREATE TABLE "edits" (
	"id" text PRIMARY KEY NOT NULL,
	"model" text NOT NULL,
	"name" text NOT NULL,
	"fragment" "bytea" NOT NULL,
	"digest" text NOT NULL,
	"created_at" bigint NOT NULL,
	"removed_at" bigint
);
--> statement-breakpoint
CREATE TABLE "egress" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kid" text NOT NULL,
	"job_id" text NOT NULL,
	"model" text NOT NULL,
	"bytes" bigint NOT NULL,
	"day" text NOT NULL,
	"at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"kid" text NOT NULL,
	"model" text NOT NULL,
	"revision" text NOT NULL,
	"program_digest" text NOT NULL,
	"request_digest" text NOT NULL,
	"program" "bytea" NOT NULL,
	"state" text NOT NULL,
	"attempts" bigint DEFAULT 0 NOT NULL,
	"error" text,
	"estimated_egress" bigint NOT NULL,
	"max_egress" bigint,
	"timeout_ms" bigint NOT NULL,
	"submitted_at" bigint NOT NULL,
	"started_at" bigint,
	"ended_at" bigint,
	"node" text,
	"lease_until" bigint
);
--> statement-breakpoint
CREATE TABLE "keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"account_id" text NOT NULL,
	"public_key" "bytea" NOT NULL,
	"role" text NOT NULL,
	"label" text,
	"created_at" bigint NOT NULL,
	"revoked_at" bigint,
	"revoked_reason" text
);
--> statement-breakpoint
CREATE TABLE "nonces" (
	"kid" text NOT NULL,
	"nonce" text NOT NULL,
	"expires_at" bigint NOT NULL,
	CONSTRAINT "nonces_kid_nonce_pk" PRIMARY KEY("kid","nonce")
);
--> statement-breakpoint
CREATE TABLE "results" (
	"job_id" text PRIMARY KEY NOT NULL,
	"saves" "bytea" NOT NULL,
	"receipt" "bytea" NOT NULL,
	"egress_bytes" bigint NOT NULL,
	"stats" text,
	"created_at" bigint NOT NULL,
	"expires_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "revisions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"model" text NOT NULL,
	"revision" text NOT NULL,
	"path" text NOT NULL,
	"activated_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" "bytea" NOT NULL
);
--> statement-breakpoint
ALTER TABLE "keys" ADD CONSTRAINT "keys_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "adapters_kid_name_idx" ON "adapters" USING btree ("kid","name");--> statement-breakpoint
CREATE INDEX "audit_at_idx" ON "audit" USING btree ("at");--> statement-breakpoint
CREATE INDEX "egress_day_kid_idx" ON "egress" USING btree ("day","kid");--> statement-breakpoint
CREATE INDEX "jobs_state_idx" ON "jobs" USING btree ("state","submitted_at");--> statement-breakpoint
CREATE INDEX "jobs_kid_state_idx" ON "jobs" USING btree ("kid","state");--> statement-breakpoint
CREATE INDEX "nonces_expiry_idx" ON "nonces" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "results_expiry_idx" ON "results" USING btree ("expires_at");